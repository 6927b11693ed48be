"""Publish verbatim bodies to SNS."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from .errors import DependencyError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

# A request that was sent but whose answer never came: SNS may have accepted the message.
_ANSWER_LOST: Final = (ReadTimeoutError, ConnectionClosedError)
# Whether an attempt of the Publish call running on this thread lost its answer. Per thread, not per publisher: the
# local gateway calls the handler from several threads, and one thread runs one call at a time.
_current_call: Final = threading.local()


def _after_attempt(caught_exception: Exception | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` hook, emitted after every attempt of a call (its own retries included): an
    attempt whose answer was lost, followed by a retry that failed otherwise, still leaves the message possibly
    accepted. Returns None, so botocore's retry decision is its own."""
    if isinstance(caught_exception, _ANSWER_LOST):
        _current_call.answer_lost = True


class SnsPublisher:
    """Publish one message per call; the client is injected.

    A failed publication says whether SNS may hold the message all the same (``DependencyError.may_have_succeeded``):
    when any attempt of the call was sent and its answer lost.
    """

    __slots__ = ("_client",)

    def __init__(self, client: SNSClient) -> None:
        self._client = client
        # One registration per client however many publishers share it (unique_id).
        client.meta.events.register(
            "needs-retry.sns.Publish", _after_attempt, unique_id="stack-webhook-fanout-publish-attempts"
        )

    def publish(self, topic_arn: str, body: str, attributes: Mapping[str, MessageAttributeValueTypeDef]) -> str:
        """Publish ``body`` unchanged with ``attributes``; return SNS's message id or raise DependencyError."""
        _current_call.answer_lost = False
        try:
            response = self._client.publish(TopicArn=topic_arn, Message=body, MessageAttributes=attributes)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            raise DependencyError("sns", code, may_have_succeeded=_current_call.answer_lost) from exc
        except BotoCoreError as exc:
            lost = _current_call.answer_lost or isinstance(exc, _ANSWER_LOST)
            raise DependencyError("sns", type(exc).__name__, may_have_succeeded=lost) from exc
        return response["MessageId"]
