"""Once per change, in order: the example subscriber's handler, run the way Lambda's SQS event source runs it
(``devkit.sqs_event_source``), on queues and the entity guard's table provisioned from its template
(``devkit.subscriber_stack``) on the moto server, fed with messages the real ingest function published.

The side effect counted is each call of the example's ``handle_event`` (where a subscriber's business logic goes);
the decisions are read from the consumer's log lines (one per record).
"""

from __future__ import annotations

import json
import runpy
import threading
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ReadTimeoutError
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.sqs_event_source import BatchOutcome, lambda_sqs_event
from stack_webhook_fanout_tools.replay import ReplaySummary, ReplayTarget, Selection, build_replayer

from .subscriber_support import GUARD_ACTIONS, ShortContext, body, decisions_of, log_lines, make_subscriber, svix_id
from .support import REPO_ROOT, receive_raw

if TYPE_CHECKING:
    from .support import FedStack

pytestmark = pytest.mark.integration

FAULT = "test-subscriber-idempotency-fault"


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
    assert decisions_of(logs, "applied") == [(event_id, False)]
    assert decisions_of(logs, "duplicate") == [(event_id, False)]
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
    assert decisions_of(log_lines(capsys.readouterr().out), "duplicate") == [(delivery.event_id, False)]
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
    assert decisions_of(log_lines(capsys.readouterr().out), "applied") == []
    assert subscriber.waiting(subscriber.local.queue_url) == 0
    assert subscriber.dead_letters() == []


class InvocationKilled(BaseException):
    """The runtime stopping an invocation (timeout, out of memory): no ``except Exception`` sees it, so the guard
    cannot release its lease."""


@pytest.mark.parametrize("timed", [True, False], ids=["entity-lease", "event-id-lease"])
def test_a_copy_of_an_event_whose_first_invocation_died_is_processed_once_its_lease_is_over(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, timed: bool
) -> None:
    # given: an invocation stopped by the runtime in the middle of the business logic (its lease stays), for an
    # event with a time (the lease is on its user) and one without (the lease is on its event_id)
    subscriber = make_subscriber(fed_stack, monkeypatch)
    event_id = svix_id(0) if timed else f"msg_not-a-ksuid-{uuid.uuid4().hex[:10]}"
    delivery = fed_stack.deliver("user.created", event_id=event_id)
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
    rejected = [line for line in log_lines(capsys.readouterr().out) if line.get("decision") == "rejected"]
    assert {line["event_id"] for line in rejected} == {invalid.event_id}
    assert "u_1" not in json.dumps(rejected)  # the body's content is not logged


def test_a_failed_processing_leaves_no_record_so_its_retry_runs_again(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: business logic that fails the first time only
    subscriber = make_subscriber(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.updated")
    consumer = subscriber.consumer()
    calls = subscriber.fail_first_call(consumer)

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
    assert decisions_of(log_lines(capsys.readouterr().out), "duplicate") == [(delivery.event_id, True)]


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
    assert decisions_of(log_lines(capsys.readouterr().out), "applied") == [(delivery.event_id, True)]


# --- what it costs ------------------------------------------------------------------------------------------------


def test_guard_dynamodb_requests_and_units_per_event_as_the_readme_prices_them(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: every DynamoDB request of the consumer counted with its keys and HTTP status, on the emulator
    subscriber = make_subscriber(fed_stack, monkeypatch)
    consumer = subscriber.consumer()
    sqs = fed_stack.stack.client("sqs")
    calls: list[list[Any]] = []

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        keys = sum(len(request["Keys"]) for request in params.get("RequestItems", {}).values())
        calls.append([model.name, keys, None])

    def after(http_response: Any, **_: Any) -> None:
        calls[-1][2] = http_response.status_code

    hooks = consumer.module.dynamodb.meta.events
    hooks.register("before-parameter-build.dynamodb", before, f"{FAULT}-before")
    hooks.register("after-call.dynamodb", after, f"{FAULT}-after")
    n = 5
    users = [str(uuid.uuid4()) for _ in range(n)]

    def consume(deliveries: list[Any], messages: list[dict[str, Any]] | None = None) -> tuple[Any, list[Any]]:
        """Hand these deliveries' messages (or these messages again) to the consumer; the calls it made."""
        if messages is None:
            messages = receive_raw(sqs, subscriber.local.queue_url, expected=len(deliveries))
        assert len(messages) == len(deliveries)
        calls.clear()
        event = lambda_sqs_event(messages, subscriber.local.queue_arn, fed_stack.stack.region)
        assert consumer.module.lambda_handler(event, LocalContext()) == {"batchItemFailures": []}
        per_event = Counter((name, keys, status) for name, keys, status in calls)
        assert all(count % n == 0 for count in per_event.values()), per_event
        return {call: count // n for call, count in per_event.items()}, messages

    def deliver(event_type: str, second: float | None, **data: Any) -> Any:
        event_id = svix_id(second) if second is not None else f"msg_not-a-ksuid-{uuid.uuid4().hex[:10]}"
        delivery = fed_stack.deliver(event_type, body=body(event_type, **data), event_id=event_id)
        assert delivery.status == 200
        return delivery

    read_1, read_3 = ("BatchGetItem", 1, 200), ("BatchGetItem", 3, 200)
    update, put, put_failed = ("UpdateItem", 0, 200), ("PutItem", 0, 200), ("PutItem", 0, 400)

    # when/then: users' updates applied: one read of the entity, the claim and the commit
    applied = [deliver("user.updated", 10 + i, id=user) for i, user in enumerate(users)]
    measured: dict[str, Any] = {}
    measured["applied"], applied_messages = consume(applied)
    assert measured["applied"] == {read_1: 1, update: 2}
    # copies of them (SQS redelivery, replays): the read only
    measured["copy"], _ = consume(applied, applied_messages)
    assert measured["copy"] == {read_1: 1}
    # older updates of the same users (stale): the read only
    measured["stale"], _ = consume([deliver("user.updated", i, id=user) for i, user in enumerate(users)])
    assert measured["stale"] == {read_1: 1}
    # the same changes resent under new, later ids (duplicates): the read and one write (recorded as the latest)
    resent = [deliver("user.updated", 20 + i, id=user) for i, user in enumerate(users)]
    measured["resent"], _ = consume(resent)
    assert measured["resent"] == {read_1: 1, update: 1}
    # memberships applied: the entity and its user and team read together, the claim and the commit
    memberships = [deliver("team_membership.created", 30 + i, user_id=user) for i, user in enumerate(users)]
    measured["membership"], _ = consume(memberships)
    assert measured["membership"] == {read_3: 1, update: 2}
    # events without event time: once per event_id, a put and an update; a copy one put whose condition fails
    untimed = [deliver("user.updated", None, id=user) for user in users]
    measured["untimed"], untimed_messages = consume(untimed)
    assert measured["untimed"] == {put: 1, update: 1}
    measured["untimed copy"], _ = consume(untimed, untimed_messages)
    assert measured["untimed copy"] == {put_failed: 1}

    # and: every call is one the function's policy allows
    template_actions = {f"dynamodb:{name}" for counts in measured.values() for name, _, _ in counts}
    assert template_actions <= set(GUARD_ACTIONS)
    # and: every record is far under 1 KB (its typed JSON, longer than DynamoDB's size, is), so each write is one
    # write unit and each key read (strongly consistent, under 4 KB) one read unit
    items = fed_stack.stack.client("dynamodb").scan(TableName=subscriber.local.table_name)["Items"]
    assert len(items) == 3 * n  # users, memberships, untimed event ids (an absent user or team is read, not written)
    assert max(len(json.dumps(item)) for item in items) < 1024

    # and: the subscriber README's cost table holds these counts at tools/cost.py's prices
    prices = runpy.run_path(str(REPO_ROOT / "tools" / "cost.py"), run_name="cost")["parser"]().parse_args([])
    readme = (REPO_ROOT / "examples" / "subscriber" / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| ")}
    prices_seen: dict[str, float] = {}
    for name, counts in measured.items():
        reads = sum(keys * count for (_, keys, status), count in counts.items() if status == 200 and keys)
        writes = sum(count for (call, _, _), count in counts.items() if call != "BatchGetItem")
        price = reads * prices.dynamodb_per_million_rru + writes * prices.dynamodb_per_million_wru
        row = rows[ROW_OF_MEASURE[name]]
        assert f"{reads} read + {writes} write" in row, (name, row)
        assert f"${price:.3f}" in row, (name, price, row)
        prices_seen[name] = price
    # and: docs/cost.md's line about the guard quotes the same figures
    line = next(part for part in (REPO_ROOT / "docs" / "cost.md").read_text().split("\n- ") if "entity guard" in part)
    line = " ".join(line.split())
    assert f"1 read + 2 write request units (${prices_seen['applied']:.3f} per million" in line
    assert f"3 read + 2 write (${prices_seen['membership']:.3f})" in line
    assert f"its read only (${prices_seen['copy']:.3f})" in line


#: The row of the subscriber README's cost table that prices each measured case.
ROW_OF_MEASURE = {
    "applied": "a user, team or issue event, applied",
    "copy": "a copy of an applied user event",
    "stale": "a stale user event",
    "resent": "the same change resent under a new id",
    "membership": "a membership or permission event, applied",
    "untimed": "an event without event time (or entity), applied",
    "untimed copy": "a copy of it",
}


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
