"""One effect per event: the example subscriber's handler, run the way Lambda's SQS event source runs it
(``devkit.sqs_event_source``), on queues and an idempotency table provisioned from its template
(``devkit.subscriber_stack``) on the moto server, fed with messages the real ingest function published.

The side effect counted is each call of the example's ``handle_event`` (where a subscriber's business logic goes).
"""

from __future__ import annotations

import json
import runpy
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ReadTimeoutError
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.sqs_event_source import BatchOutcome, SqsEventSource, lambda_sqs_event
from stack_webhook_fanout_tools.devkit.subscriber_stack import (
    LocalSubscriber,
    provision_subscriber,
    subscriber_environment,
)
from stack_webhook_fanout_tools.replay import ReplaySummary, ReplayTarget, Selection, build_replayer

from .support import REPO_ROOT, SUBSCRIBER_APP, SUBSCRIBER_DIR, load_module, receive_raw

if TYPE_CHECKING:
    from types import ModuleType

    from .support import FedStack

pytestmark = pytest.mark.integration

SUBSCRIBER_TEMPLATE = SUBSCRIBER_DIR / "template.yaml"
FAULT = "test-subscriber-idempotency-fault"


@dataclass
class Consumer:
    """One execution environment of the example consumer, its side effects and its log lines."""

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
    fed: FedStack, monkeypatch: pytest.MonkeyPatch, *, visibility_timeout: int = 1, max_receive_count: int = 2
) -> Subscriber:
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


def messages_of(lines: list[dict[str, Any]], message: str) -> list[tuple[str, bool]]:
    return [(line["event_id"], line["replay"]) for line in lines if line["message"] == message]


def publish_twice(fed: FedStack, event_type: str) -> str:
    """Deliver one event whose SNS answer is lost, then Svix's retries: two publications, one event_id (the first
    duplicate of the README's Guarantees). The lost answer keeps the claim, so the retry is answered 409 until the
    claim's lease (one second here) is over, and the next retry publishes again."""
    handler = fed.handler(CLAIM_LEASE_SECONDS="1")
    events = handler.SERVICE._publisher._client.meta.events

    def answer_lost(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9/slow")

    events.register("after-call.sns.Publish", answer_lost, FAULT)
    try:
        first = fed.deliver(event_type, handler=handler)
    finally:
        events.unregister("after-call.sns.Publish", unique_id=FAULT)
    assert first.status == 503
    early = fed.deliver(event_type, event_id=first.event_id, handler=handler)
    assert (early.status, early.answer["error"]) == (409, "in_progress")
    time.sleep(1.2)
    retry = fed.deliver(event_type, event_id=first.event_id, handler=handler)
    assert (retry.status, retry.answer["status"]) == (200, "published")
    return first.event_id


# --- duplicates -------------------------------------------------------------------------------------------------


def test_the_same_event_published_twice_has_one_effect(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the subscriber, and one event our function published twice (its first answer from SNS was lost)
    subscriber = make_subscriber(fed_stack, monkeypatch)
    event_id = publish_twice(fed_stack, "user.created")
    consumer = subscriber.consumer()
    capsys.readouterr()

    # when: the subscriber consumes its queue
    outcomes = subscriber.drain(consumer)

    # then: both copies arrived and were deleted; the business logic ran once
    assert sorted(m for o in outcomes for m in o.deleted) == sorted(m for o in outcomes for m in o.received)
    assert len([m for o in outcomes for m in o.received]) == 2
    assert consumer.effects == [(event_id, False)]
    logs = log_lines(capsys.readouterr().out)
    assert messages_of(logs, "processed") == [(event_id, False)]
    assert messages_of(logs, "duplicate skipped") == [(event_id, False)]
    assert subscriber.waiting(subscriber.local.queue_url) == 0


def test_an_sqs_redelivery_after_the_visibility_timeout_has_one_effect(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: one published event, processed by an invocation whose records were never deleted (the poller lost its
    # answer, or the function timed out after the work was done)
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("team_membership.created")
    consumer = subscriber.consumer()
    first = subscriber.source.receive()
    assert len(first) == 1
    response = consumer.module.lambda_handler(
        lambda_sqs_event(first, subscriber.source.queue_arn, fed_stack.stack.region), LocalContext()
    )
    assert response == {"batchItemFailures": []}
    capsys.readouterr()

    # when: SQS hands the same message out again after the visibility timeout
    time.sleep(subscriber.local.visibility_timeout + 0.5)
    outcomes = subscriber.drain(consumer)

    # then: it is the same SQS message, received again; skipped and deleted
    (again,) = outcomes
    assert again.received == (first[0]["MessageId"],)
    assert again.deleted == again.received
    assert consumer.effects == [(delivery.event_id, False)]
    assert messages_of(log_lines(capsys.readouterr().out), "duplicate skipped") == [(delivery.event_id, False)]
    assert subscriber.waiting(subscriber.local.queue_url) == 0


def test_a_copy_arriving_while_the_first_is_in_flight_is_retried_later_not_processed_twice(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: environment A processing an event slowly (its business logic blocks until released)
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.deleted")
    release, started = threading.Event(), threading.Event()
    slow = subscriber.consumer(block=release, started=started)
    fast = subscriber.consumer()
    first = subscriber.source.receive()
    assert len(first) == 1
    outcomes: list[BatchOutcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(slow.invoke(subscriber.source, first)))
    worker.start()
    try:
        assert started.wait(30)

        # when: after the visibility timeout, environment B receives the same message while A is still at work
        time.sleep(subscriber.local.visibility_timeout + 0.5)
        during = fast.invoke(subscriber.source)

        # then: B reports it as failed (left on the queue) without running the business logic
        assert during.received == (first[0]["MessageId"],)
        assert during.failed == during.received
        assert fast.effects == []
    finally:
        release.set()
        worker.join(30)

    # and: A completes; the copy B left comes back later and is skipped as a duplicate
    assert outcomes[0].failed == ()
    capsys.readouterr()
    subscriber.drain(fast)
    assert slow.effects == [(delivery.event_id, False)]
    assert fast.effects == []
    assert messages_of(log_lines(capsys.readouterr().out), "processed") == []
    assert subscriber.waiting(subscriber.local.queue_url) == 0
    assert subscriber.dead_letters() == []


class InvocationKilled(BaseException):
    """The runtime stopping an invocation (timeout, out of memory): no ``except Exception`` sees it, so Powertools
    cannot remove the in-progress record."""


class ShortContext(LocalContext):
    """An invocation with one second left: its in-progress lease ends one second after it starts."""

    def get_remaining_time_in_millis(self) -> int:
        return 1_000


def test_a_copy_of_an_event_whose_first_invocation_died_is_processed_once_its_lease_is_over(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an invocation stopped by the runtime in the middle of the business logic (its record stays INPROGRESS)
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.created")
    dying = subscriber.consumer()

    def killed(event: Any, *, event_id: str, replay: bool) -> str:
        raise InvocationKilled

    monkeypatch.setattr(dying.module, "handle_event", killed)
    with pytest.raises(InvocationKilled):
        subscriber.source.invoke(dying.module.lambda_handler, subscriber.source.receive(), ShortContext())

    # when: the message comes back after the visibility timeout, past the lease, to a new environment
    time.sleep(max(subscriber.local.visibility_timeout, 1) + 0.5)
    fresh = subscriber.consumer()
    subscriber.drain(fresh)

    # then: processed there, once
    assert fresh.effects == [(delivery.event_id, False)]
    assert subscriber.waiting(subscriber.local.queue_url) == 0


# --- failures ---------------------------------------------------------------------------------------------------


def test_an_invalid_record_goes_to_the_dead_letter_queue_while_the_rest_of_its_batch_is_processed(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the subscriber's queue also subscribed to the fallback topic (to see what Stack sends that this
    # release cannot type), filtered on the same event types
    subscriber = make_subscriber(fed_stack, monkeypatch, max_receive_count=2)
    fed_stack.stack.client("sns").subscribe(
        TopicArn=fed_stack.stack.fallback_topic_arn,
        Protocol="sqs",
        Endpoint=subscriber.local.queue_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicyScope": "MessageAttributes",
            "FilterPolicy": json.dumps({"event_type": ["user.created", "user.updated"]}),
        },
    )
    # and: two valid events and one our function published to the fallback topic (a user.created it cannot type)
    good = [fed_stack.deliver("user.created"), fed_stack.deliver("user.updated")]
    invalid = fed_stack.deliver("user.created", body=b'{"type":"user.created","data":{"id":"u_1"}}')
    assert all(d.status == 200 for d in [*good, invalid])
    consumer = subscriber.consumer()
    capsys.readouterr()

    # when: the subscriber consumes its queue (the invalid record comes back after each visibility timeout)
    outcomes = subscriber.drain(consumer)

    # then: the first batch held all three; the valid two were processed and deleted in it
    assert len(outcomes[0].received) == 3
    assert len(outcomes[0].failed) == 1
    assert sorted(consumer.effects) == sorted((d.event_id, False) for d in good)
    # and: the invalid one failed alone on each receive, then SQS moved it to the dead-letter queue
    assert all(len(o.failed) == 1 and o.failed == o.received for o in outcomes[1:])
    assert len(outcomes) == subscriber.local.max_receive_count
    (dead,) = subscriber.dead_letters()
    assert dead["MessageAttributes"]["event_id"]["StringValue"] == invalid.event_id
    assert subscriber.waiting(subscriber.local.queue_url) == 0
    rejected = [line for line in log_lines(capsys.readouterr().out) if line["message"] == "not a valid Stack event"]
    assert {line["event_id"] for line in rejected} == {invalid.event_id}
    assert "u_1" not in json.dumps(rejected)  # the body's content is not logged


def test_a_failed_processing_leaves_no_record_so_its_retry_runs_again(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: business logic that fails the first time only
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.updated")
    consumer = subscriber.consumer()
    counted = consumer.module.handle_event
    calls: list[str] = []

    def flaky(event: Any, *, event_id: str, replay: bool) -> str:
        calls.append(event_id)
        if len(calls) == 1:
            raise RuntimeError("downstream unavailable")
        return str(counted(event, event_id=event_id, replay=replay))

    monkeypatch.setattr(consumer.module, "handle_event", flaky)

    # when
    outcomes = subscriber.drain(consumer)

    # then: failed once, retried after the visibility timeout, processed once
    assert [len(o.failed) for o in outcomes] == [1, 0]
    assert calls == [delivery.event_id, delivery.event_id]
    assert consumer.effects == [(delivery.event_id, False)]
    assert subscriber.dead_letters() == []


# --- replays ----------------------------------------------------------------------------------------------------


def replay(fed: FedStack, event_id: str) -> None:
    target = ReplayTarget.from_local_outputs(fed.stack.outputs())
    replayer = build_replayer(target, fed.stack.client("dynamodb"), fed.stack.client("sns"))
    summary = ReplaySummary(executed=True)
    replayer.run(replayer.select(Selection(event_ids=(event_id,)), summary), summary)
    assert summary.published == 1


def test_a_replay_of_an_event_already_processed_is_skipped(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: an event the subscriber processed
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.updated")
    consumer = subscriber.consumer()
    subscriber.drain(consumer)
    assert consumer.effects == [(delivery.event_id, False)]
    capsys.readouterr()

    # when: it is replayed (replay=true) and consumed
    replay(fed_stack, delivery.event_id)
    (outcome,) = subscriber.drain(consumer)

    # then: as the subscriber's README says: a copy of a processed event, skipped and deleted
    assert outcome.deleted == outcome.received
    assert consumer.effects == [(delivery.event_id, False)]
    assert messages_of(log_lines(capsys.readouterr().out), "duplicate skipped") == [(delivery.event_id, True)]


def test_a_replay_of_an_event_the_subscriber_never_processed_is_processed_as_a_replay(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: an event published before this subscriber existed
    delivery = fed_stack.deliver("team_membership.deleted")
    subscriber = make_subscriber(fed_stack, monkeypatch)
    consumer = subscriber.consumer()
    capsys.readouterr()

    # when: it is replayed to backfill the new subscriber
    replay(fed_stack, delivery.event_id)
    subscriber.drain(consumer)

    # then: processed once, and the business logic knows it is a replay
    assert consumer.effects == [(delivery.event_id, True)]
    assert messages_of(log_lines(capsys.readouterr().out), "processed") == [(delivery.event_id, True)]


# --- what it costs ------------------------------------------------------------------------------------------------


def test_idempotency_dynamodb_requests_per_event_as_the_readme_prices_them(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: every DynamoDB request of the idempotency layer counted with its HTTP status, on the emulator
    subscriber = make_subscriber(fed_stack, monkeypatch)
    consumer = subscriber.consumer()
    requests: list[tuple[str, int]] = []

    def count(model: Any, http_response: Any, **_: Any) -> None:
        requests.append((model.name, http_response.status_code))

    consumer.module.persistence.client.meta.events.register("after-call.dynamodb", count, f"{FAULT}-count")
    events = 10
    event_ids = [publish_twice(fed_stack, "user.created") for _ in range(events)]

    # when: 10 events, each published twice, are consumed
    subscriber.drain(consumer, rounds=20)

    # then: a new event costs one conditional put (INPROGRESS) and one update (COMPLETED); a copy one put whose
    # condition fails (it returns the old item: no read)
    assert sorted(e for e, _ in consumer.effects) == sorted(event_ids)
    writes_per_new_event = (requests.count(("PutItem", 200)) + requests.count(("UpdateItem", 200))) / events
    writes_per_copy = requests.count(("PutItem", 400)) / events
    assert (writes_per_new_event, writes_per_copy) == (2, 1)
    assert len(requests) == 3 * events  # no reads, no deletes
    # and: each record is far under 1 KB, so each of those writes is one write request unit
    items = fed_stack.stack.client("dynamodb").scan(TableName=subscriber.local.table_name)["Items"]
    assert len(items) == events
    item_bytes = max(
        sum(len(name) + len(str(next(iter(value.values())))) for name, value in item.items()) for item in items
    )
    assert item_bytes < 1024

    # and: the README's prices per million are these counts at tools/cost.py's prices
    prices = runpy.run_path(str(REPO_ROOT / "tools" / "cost.py"), run_name="cost")["parser"]().parse_args([])
    per_million_events = writes_per_new_event * prices.dynamodb_per_million_wru
    per_million_copies = writes_per_copy * prices.dynamodb_per_million_wru
    readme = (REPO_ROOT / "README.md").read_text()
    section = " ".join(readme.split("## Subscribe a service", 1)[1].split("\n## ", 1)[0].split())
    assert f"${per_million_events:.2f} per million events" in section, per_million_events
    assert f"${per_million_copies:.3f} per million copies" in section, per_million_copies
    assert f"{int(writes_per_new_event)} write request units" in section


# --- the record helper on both delivery modes ------------------------------------------------------------------


def test_stack_message_reads_raw_delivery_and_the_sns_envelope_alike(fed_stack: FedStack) -> None:
    # given: two queues on the team_membership.created topic, one with raw delivery, one receiving SNS's envelope
    from stack_webhook_fanout.sqs_records import stack_message

    stack = fed_stack.stack
    sqs, sns = stack.client("sqs"), stack.client("sns")
    topic = stack.topic_arns["team_membership.created"]
    queues = {}
    for raw in (True, False):
        url = sqs.create_queue(QueueName=f"helper-{raw}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": str(raw).lower()})
        queues[raw] = (url, arn)
    delivery = fed_stack.deliver("team_membership.created")

    # when: each queue's message, as Lambda would pass it, goes through the helper
    messages = {}
    for raw, (url, arn) in queues.items():
        (received,) = receive_raw(sqs, url, expected=1)
        (record,) = lambda_sqs_event([received], arn, stack.region)["Records"]
        messages[raw] = stack_message(record)

    # then: the same typed event and attributes either way (only SQS's message id differs)
    assert messages[False].message_id != messages[True].message_id
    for message in messages.values():
        assert (message.event_id, message.event_type, message.replay) == (
            delivery.event_id,
            "team_membership.created",
            False,
        )
    assert messages[True].event == messages[False].event
    assert (messages[True].user_id, messages[True].team_id, messages[True].event_timestamp) == (
        messages[False].user_id,
        messages[False].team_id,
        messages[False].event_timestamp,
    )
    assert messages[True].team_id is not None
    assert messages[True].event_timestamp is not None
