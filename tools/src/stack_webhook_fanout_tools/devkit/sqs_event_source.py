"""A local stand-in for Lambda's SQS event source mapping: receive a batch, pass it to a handler, delete what it did
not report as failed.

Lambda polls the queue, invokes the function with up to ``BatchSize`` records, and, with
``FunctionResponseTypes: [ReportBatchItemFailures]``, deletes every record not named in ``batchItemFailures``. Failed
records stay on the queue, come back after the visibility timeout, and after ``maxReceiveCount`` receives SQS moves
them to the dead-letter queue. An invocation that raises deletes nothing. :class:`SqsEventSource` does the same
against the emulator, so ``make dev-subscriber`` and the tests run a subscriber's real handler the way Lambda would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mypy_boto3_sqs import SQSClient

#: A Lambda handler of SQS events: ``(event, context) -> {"batchItemFailures": [...]}``.
type SqsHandler = Callable[[dict[str, Any], Any], Mapping[str, Any] | None]


def lambda_sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes to a function for these messages (as ``ReceiveMessage`` returned them, with
    ``AttributeNames=["All"]`` and ``MessageAttributeNames=["All"]``)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One invocation: the SQS message ids it received, those it reported failed (left on the queue), and the
    exception it raised, if any (then every record is left on the queue)."""

    received: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    error: BaseException | None = field(default=None, repr=False)

    @property
    def deleted(self) -> tuple[str, ...]:
        return tuple(m for m in self.received if m not in self.failed)


class SqsEventSource:
    """Poll one queue and invoke ``handler`` per batch, as Lambda's event source mapping does."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        region: str,
        batch_size: int = 10,
        wait_seconds: int = 1,
        visibility_timeout: int | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._region = region
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
        self._visibility_timeout = visibility_timeout

    def receive(self) -> list[dict[str, Any]]:
        """One receive of up to ``batch_size`` messages, with every attribute (the queue's visibility timeout
        unless one was given)."""
        kwargs: dict[str, Any] = {}
        if self._visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = self._visibility_timeout
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            **kwargs,
        )
        return [dict(m) for m in response.get("Messages", [])]

    def invoke(self, handler: SqsHandler, messages: Sequence[Mapping[str, Any]], context: Any) -> BatchOutcome:
        """Invoke ``handler`` with these received messages and delete the ones it did not report as failed."""
        received = tuple(str(m["MessageId"]) for m in messages)
        if not messages:
            return BatchOutcome()
        try:
            response = handler(lambda_sqs_event(messages, self.queue_arn, self._region), context) or {}
        except Exception as exc:  # an invocation error: Lambda deletes nothing and the batch comes back
            return BatchOutcome(received=received, failed=received, error=exc)
        failed = tuple(str(f["itemIdentifier"]) for f in response.get("batchItemFailures", []))
        done = [m for m in messages if str(m["MessageId"]) not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": str(m["ReceiptHandle"])}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        return BatchOutcome(received=received, failed=failed)

    def poll_once(self, handler: SqsHandler, context: Any) -> BatchOutcome:
        """Receive one batch (waiting up to ``wait_seconds``) and invoke ``handler`` with it, if any came."""
        return self.invoke(handler, self.receive(), context)
