"""Which topic an event goes to and the message attributes it carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

    from .event_parser import ParsedEvent

#: The ``event_type`` attribute of a body whose type could not be read.
UNREADABLE_TYPE: Final = "unreadable"
#: SNS counts the body and every attribute's name, type and value against this limit.
SNS_MAX_MESSAGE_BYTES: Final = 262_144
#: SNS discards a message with more attributes than this when it delivers it raw to an SQS subscriber (SQS's own
#: limit), so no message may carry more: ``tests/unit/test_message_attribute_count.py`` holds every sample to it.
MAX_MESSAGE_ATTRIBUTES: Final = 10


class TopicRouter:
    """Map event types to topic ARNs, with a fallback for everything else."""

    __slots__ = ("_fallback", "_topics")

    def __init__(self, topic_arns: Mapping[str, str], fallback_topic_arn: str) -> None:
        self._topics = dict(topic_arns)
        self._fallback = fallback_topic_arn

    def topic_for(self, event: ParsedEvent) -> str:
        """Topic of a valid known event; the fallback for unknown types and invalid bodies."""
        if event.known and event.event_type is not None:
            return self._topics.get(event.event_type, self._fallback)
        return self._fallback


def message_attributes(
    event: ParsedEvent,
    event_id: str,
    event_timestamp: str,
    *,
    event_created_at: int | None = None,
    replay: bool = False,
) -> dict[str, MessageAttributeValueTypeDef]:
    """Attributes subscribers can filter on: ``event_type``, ``event_id``, ``event_timestamp`` always;
    ``user_id`` / ``team_id`` when the data has them; ``invalid_reason`` for bodies that are not valid events;
    ``event_created_at`` (a ``Number``, epoch milliseconds) when the svix-id told the event's creation time
    (``event_time.event_created_at_ms``); ``replay`` on messages re-published by the replay tool. At most seven
    of them, within :data:`MAX_MESSAGE_ATTRIBUTES`.
    """
    values = {
        "event_type": event.event_type or UNREADABLE_TYPE,
        "event_id": event_id,
        "event_timestamp": event_timestamp,
    }
    if event.user_id:
        values["user_id"] = event.user_id
    if event.team_id:
        values["team_id"] = event.team_id
    if event.invalid_reason:
        values["invalid_reason"] = event.invalid_reason
    if replay:
        values["replay"] = "true"
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        name: {"DataType": "String", "StringValue": value} for name, value in values.items()
    }
    if event_created_at is not None:
        attributes["event_created_at"] = {"DataType": "Number", "StringValue": str(event_created_at)}
    return attributes


def message_size(body: bytes, attributes: Mapping[str, MessageAttributeValueTypeDef]) -> int:
    """Bytes SNS counts for a message: the body plus each attribute's name, data type and value."""
    size = len(body)
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute.get("StringValue", "").encode())
    return size
