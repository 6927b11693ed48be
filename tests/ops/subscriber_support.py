"""The example subscriber (examples/subscriber) on the emulator, for the ops tests: its real handler run the way
Lambda's SQS event source runs it (``devkit.sqs_event_source``), on the queues and the guard table provisioned from
its template (``devkit.subscriber_stack``), fed with messages the real ingest function published."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ksuid import KsuidMs
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import sample_data
from stack_webhook_fanout_tools.devkit.sqs_event_source import BatchOutcome, SqsEventSource
from stack_webhook_fanout_tools.devkit.subscriber_stack import (
    LocalSubscriber,
    provision_subscriber,
    subscriber_environment,
)

from .support import SUBSCRIBER_APP, SUBSCRIBER_DIR, load_module

if TYPE_CHECKING:
    import threading
    from types import ModuleType

    import pytest

    from .support import Delivery, FedStack

SUBSCRIBER_TEMPLATE = SUBSCRIBER_DIR / "template.yaml"
#: The DynamoDB calls the entity guard makes, which the function's policy allows and nothing else.
GUARD_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
#: Event times are chosen relative to this: an hour ago (plausible for the decoder, well in the past).
T0 = datetime.now(UTC) - timedelta(hours=1)


def svix_id(second: float) -> str:
    """A Svix message id created ``second`` seconds after T0, made by Svix's own ``ksuid`` package."""
    return "msg_" + str(KsuidMs(T0 + timedelta(seconds=second)))


def body(event_type: str, **data: Any) -> bytes:
    """The sample body of ``event_type`` with these ``data`` fields changed."""
    document = {"type": event_type, "data": {**sample_data(event_type), **data}}
    return json.dumps(document, separators=(",", ":")).encode()


class ShortContext(LocalContext):
    """An invocation with one second left: the guard's lease of each of its records ends one second after it."""

    def get_remaining_time_in_millis(self) -> int:
        return 1_000


@dataclass
class Consumer:
    """One execution environment of the example consumer and the calls of its business logic (its side effects)."""

    module: ModuleType
    effects: list[tuple[str, bool]] = field(default_factory=list)

    def invoke(self, source: SqsEventSource, messages: list[dict[str, Any]] | None = None) -> BatchOutcome:
        if messages is None:
            return source.poll_once(self.module.lambda_handler, LocalContext())
        return source.invoke(self.module.lambda_handler, messages, LocalContext())


@dataclass
class Subscriber:
    fed: FedStack
    local: LocalSubscriber
    source: SqsEventSource
    environment: dict[str, str]
    monkeypatch: pytest.MonkeyPatch

    def consumer(self, *, block: threading.Event | None = None, started: threading.Event | None = None) -> Consumer:
        """A fresh execution environment of the example's ``app.py`` (module init included)."""
        for name, value in self.environment.items():
            self.monkeypatch.setenv(name, value)
        module = load_module(SUBSCRIBER_APP)
        consumer = Consumer(module)
        business_logic = module.handle_event

        def counted(event: Any, *, event_id: str, replay: bool) -> str:
            consumer.effects.append((event_id, replay))
            if started is not None:
                started.set()
            if block is not None:
                assert block.wait(30), "the test never released the first processing"
            return str(business_logic(event, event_id=event_id, replay=replay))

        self.monkeypatch.setattr(module, "handle_event", counted)
        return consumer

    def fail_first_call(self, consumer: Consumer) -> list[str]:
        """Make the consumer's business logic fail the first time only ("downstream unavailable"); the event_ids
        of every call, failed or not."""
        counted = consumer.module.handle_event
        calls: list[str] = []

        def flaky(event: Any, *, event_id: str, replay: bool) -> str:
            calls.append(event_id)
            if len(calls) == 1:
                raise RuntimeError("downstream unavailable")
            return str(counted(event, event_id=event_id, replay=replay))

        self.monkeypatch.setattr(consumer.module, "handle_event", flaky)
        return calls

    def drain(self, consumer: Consumer, *, rounds: int = 8) -> list[BatchOutcome]:
        """Poll until the queue stays empty for a visibility timeout (failed records come back after it)."""
        outcomes: list[BatchOutcome] = []
        idle = 0
        while idle < 2 and len(outcomes) < rounds:
            outcome = consumer.invoke(self.source)
            if outcome.received:
                outcomes.append(outcome)
                idle = 0
            else:
                idle += 1
                time.sleep(self.local.visibility_timeout)
        return outcomes

    def deliver_and_consume(self, consumer: Consumer, event_type: str, second: float, **data: Any) -> Delivery:
        """Deliver one event created at T0 + ``second`` through the ingest function; the consumer handles it."""
        delivery = self.fed.deliver(event_type, body=body(event_type, **data), event_id=svix_id(second))
        assert delivery.status == 200, delivery.answer
        for _ in range(10):
            if consumer.invoke(self.source).received:
                return delivery
        raise AssertionError(f"{delivery.event_id} never reached the subscriber's queue")

    def waiting(self, queue_url: str) -> int:
        attributes = self.fed.stack.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self) -> list[dict[str, Any]]:
        response = self.fed.stack.client("sqs").receive_message(
            QueueUrl=self.local.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return list(response.get("Messages", []))


def make_subscriber(
    fed: FedStack,
    monkeypatch: pytest.MonkeyPatch,
    *,
    visibility_timeout: int = 1,
    max_receive_count: int = 2,
) -> Subscriber:
    """The example subscriber provisioned on ``fed``'s emulator, as its template declares it."""
    local = provision_subscriber(
        fed.stack,
        SUBSCRIBER_TEMPLATE,
        name=f"sub-{uuid.uuid4().hex[:8]}",
        visibility_timeout=visibility_timeout,
        max_receive_count=max_receive_count,
    )
    environment = {
        **subscriber_environment(fed.stack, local, SUBSCRIBER_TEMPLATE),
        # Powertools keeps one logger per service name, bound to the stream it was created with.
        "POWERTOOLS_SERVICE_NAME": f"stack-subscriber-{uuid.uuid4().hex[:8]}",
    }
    source = SqsEventSource(fed.stack.client("sqs"), local.queue_url, region=fed.stack.region, wait_seconds=1)
    return Subscriber(fed, local, source, environment, monkeypatch)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def decisions_of(lines: list[dict[str, Any]], decision: str) -> list[tuple[str, bool]]:
    """``(event_id, replay)`` of the consumer's log lines with this decision."""
    return [(line["event_id"], line["replay"]) for line in lines if line.get("decision") == decision]


def decisions(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(event_id, decision)`` of every log line that carries a decision, in order."""
    return [(line["event_id"], line["decision"]) for line in lines if "decision" in line]
