"""Typed Stack events from SQS records, for subscribers: one helper instead of a copy in every consumer.

``stack_message(record)`` takes one record of the event Lambda's SQS event source passes to a function (a plain
dict: ``event["Records"][i]``, or Powertools' ``SQSRecord.raw_event``) and returns a :class:`StackMessage`: the typed
event and the message attributes the ingest function set. It reads both ways SNS delivers to SQS:

- raw message delivery (``RawMessageDelivery: true``, what ``examples/subscriber`` uses): the body is the verbatim
  Stack event and the SNS message attributes are the record's ``messageAttributes``;
- the SNS envelope (raw delivery off): the body is SNS's JSON notification, whose ``Message`` is the Stack event and
  whose ``MessageAttributes`` hold the attributes.

Anything else (not a known valid event, no ``event_id``) raises :class:`InvalidStackMessageError`, whose fields are
safe to log: ids, the type and the validation error locations, never the body. The ingest function never imports
this module (it needs pydantic, through :mod:`stack_webhook_fanout.events`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from .events import StackEvent, parse_stack_event

if TYPE_CHECKING:
    from collections.abc import Mapping

#: How many validation errors :class:`InvalidStackMessageError` keeps (a log line, not a report).
MAX_LOGGED_ERRORS: Final = 5


@dataclass(frozen=True, slots=True)
class StackMessage:
    """One Stack event as a subscriber's queue delivered it."""

    event: StackEvent
    #: The ``svix-id``: the same on every copy of one event (retries, duplicate publications, replays).
    event_id: str
    event_type: str
    #: SQS's id of this delivery: differs between copies; what a batch response reports as a failure.
    message_id: str
    #: The ``svix-timestamp`` of the published delivery attempt (unix seconds), if present.
    event_timestamp: int | None
    user_id: str | None
    team_id: str | None
    #: True on messages re-published by the replay tool.
    replay: bool


class InvalidStackMessageError(ValueError):
    """The record is not a Stack event this package can type; its fields are safe to log (no body, no data)."""

    def __init__(
        self,
        reason: str,
        *,
        message_id: str,
        event_id: str | None,
        event_type: str | None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"message {message_id} is not a valid Stack event: {reason}")
        self.reason = reason
        self.message_id = message_id
        self.event_id = event_id
        self.event_type = event_type
        self.errors = errors or []

    def log_fields(self) -> dict[str, Any]:
        """What a log line may say about this record."""
        return {
            "reason": self.reason,
            "message_id": self.message_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "errors": self.errors,
        }


def stack_message(record: Mapping[str, Any]) -> StackMessage:
    """The typed Stack event and attributes of one SQS record of a Lambda event (raw delivery or SNS envelope)."""
    message_id = str(record.get("messageId", ""))
    body, attributes = _body_and_attributes(record)
    event_id = attributes.get("event_id")
    event_type = attributes.get("event_type")
    if not event_id:
        raise InvalidStackMessageError(
            "no event_id attribute", message_id=message_id, event_id=None, event_type=event_type
        )
    try:
        event = parse_stack_event(body)
    except ValidationError as exc:
        # Locations and types only: pydantic's messages quote the input, which may hold personal data.
        errors = [
            {"loc": ".".join(str(part) for part in error["loc"]), "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False)[:MAX_LOGGED_ERRORS]
        ]
        raise InvalidStackMessageError(
            "not a valid event of a known type",
            message_id=message_id,
            event_id=event_id,
            event_type=event_type,
            errors=errors,
        ) from None
    timestamp = attributes.get("event_timestamp")
    return StackMessage(
        event=event,
        event_id=event_id,
        event_type=event.type,
        message_id=message_id,
        event_timestamp=int(timestamp) if timestamp and timestamp.isdigit() else None,
        user_id=attributes.get("user_id"),
        team_id=attributes.get("team_id"),
        replay=attributes.get("replay") == "true",
    )


def _body_and_attributes(record: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The Stack event's text and its string attributes, from raw delivery or from the SNS envelope."""
    body = str(record.get("body", ""))
    raw_attributes = record.get("messageAttributes") or {}
    if raw_attributes:
        # Raw delivery: SNS copied its message attributes onto the SQS message (an envelope never has any).
        return body, {
            name: str(value["stringValue"])
            for name, value in raw_attributes.items()
            if isinstance(value, dict) and value.get("stringValue") is not None
        }
    envelope = _sns_envelope(body)
    if envelope is None:
        return body, {}
    attributes = envelope.get("MessageAttributes") or {}
    return str(envelope["Message"]), {
        name: str(value["Value"])
        for name, value in attributes.items()
        if isinstance(value, dict) and value.get("Type") == "String" and "Value" in value
    }


def _sns_envelope(body: str) -> dict[str, Any] | None:
    """SNS's notification JSON, if ``body`` is one (a Stack event has ``type``, never ``Type`` and ``TopicArn``)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if (
        isinstance(document, dict)
        and document.get("Type") == "Notification"
        and "TopicArn" in document
        and isinstance(document.get("Message"), str)
    ):
        return document
    return None
