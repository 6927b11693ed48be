"""The event's creation time over the emulator: the ``event_created_at`` attribute from the svix-id, on the message
(a ``Number`` on a raw-delivery SQS subscriber) and on the record, carried unchanged by a replay, at no extra call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.samples import sample_api_event
from stack_webhook_fanout_tools.devkit.signing import new_message_id
from stack_webhook_fanout_tools.replay import ReplaySummary, ReplayTarget, Selection, build_replayer

from stack_webhook_fanout.event_time import EARLIEST_PLAUSIBLE_MS, MAX_CLOCK_SKEW_MS, decode_ksuid_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from .support import Deployment

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return int(time.time() * 1000)


def deliver(deployment: Deployment, event_type: str, event_id: str, handler: Any = None) -> None:
    event = sample_api_event(event_type, deployment.stack.secret_value, msg_id=event_id)
    status, answer = deployment.invoke(handler or deployment.load_handler(), event)
    assert status == 200, answer
    assert answer["status"] == "published"


def receive_typed(deployment: Deployment, queue: str) -> list[dict[str, Any]]:
    """Every message on one queue, with its attributes as SQS gives them (``DataType`` and value)."""
    sqs = deployment.stack.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=deployment.queues[queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(message)
            sqs.delete_message(QueueUrl=deployment.queues[queue], ReceiptHandle=message["ReceiptHandle"])


def test_event_created_at_arrives_on_a_raw_sqs_subscriber_as_a_number(deployment: Deployment) -> None:
    # given: a delivery of a message Svix created 90 s ago (a retry), its id a KSUID as the Svix server makes them
    created_ms = now_ms() - 90_000
    event_id = new_message_id(created_ms)

    # when
    deliver(deployment, "team.updated", event_id)

    # then: the subscriber's queue (raw delivery) has it as a Number attribute, in epoch ms, to Svix's 1/256 s
    [message] = receive_typed(deployment, "team.updated")
    attribute = message["MessageAttributes"]["event_created_at"]
    assert attribute["DataType"] == "Number"
    assert abs(int(attribute["StringValue"]) - created_ms) <= 2
    assert int(attribute["StringValue"]) == decode_ksuid_ms(event_id)
    # and the record holds the same value
    record = deployment.record(event_id)
    assert record is not None
    assert record["event_created_at"] == int(attribute["StringValue"])


# Ids made when the test runs, not when pytest collects it: a tier can run minutes after collection, and an id two
# minutes "in the future" at collection is not by then.
@pytest.mark.parametrize(
    "make_event_id",
    [
        pytest.param(lambda: "msg_Gp5xGMK93cfx-K4wJtn0NuKOokM", id="not-a-ksuid"),
        pytest.param(lambda: new_message_id(now_ms() + MAX_CLOCK_SKEW_MS + 120_000), id="in-the-future"),
        pytest.param(lambda: new_message_id(EARLIEST_PLAUSIBLE_MS - 86_400_000), id="before-2020"),
    ],
)
def test_an_id_without_a_plausible_time_publishes_without_event_created_at(
    deployment: Deployment, make_event_id: Callable[[], str]
) -> None:
    # when: an id that tells no plausible time
    event_id = make_event_id()
    deliver(deployment, "user.deleted", event_id)

    # then: published all the same, without the attribute, and the record has no value either
    [message] = receive_typed(deployment, "user.deleted")
    assert message["MessageAttributes"]["event_id"]["StringValue"] == event_id
    assert "event_created_at" not in message["MessageAttributes"]
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "published"
    assert "event_created_at" not in record


def test_a_new_event_still_costs_three_calls(deployment: Deployment) -> None:
    # given: a warm execution environment (its secret fetched by a first delivery)
    handler = deployment.load_handler()
    deliver(deployment, "user.created", new_message_id(), handler)
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.removeprefix("before-call."))

    clients = {id(c): c for c in (handler.SERVICE._store._client, handler.SERVICE._publisher._client)}
    for client in clients.values():
        client.meta.events.register("before-call", count, unique_id="count-calls")
    try:
        # when: a new event that has an event time
        deliver(deployment, "user.updated", new_message_id(), handler)
    finally:
        for client in clients.values():
            client.meta.events.unregister("before-call", unique_id="count-calls")

    # then: claim (which stores event_created_at), publish, mark: nothing more
    assert calls == ["dynamodb.UpdateItem", "sns.Publish", "dynamodb.UpdateItem"]
    [message] = receive_typed(deployment, "user.updated")
    assert message["MessageAttributes"]["event_created_at"]["DataType"] == "Number"


def replay(deployment: Deployment, *event_ids: str) -> ReplaySummary:
    stack = deployment.stack
    target = ReplayTarget(
        table_name=stack.table_name, topic_arns=stack.topic_arns, fallback_topic_arn=stack.fallback_topic_arn
    )
    replayer = build_replayer(target, stack.client("dynamodb"), stack.client("sns"), consistent_read=True)
    summary = ReplaySummary(executed=True)
    replayer.run(replayer.select(Selection(event_ids=event_ids), summary), summary)
    return summary


def test_a_replay_carries_the_original_event_created_at(deployment: Deployment) -> None:
    # given: two published events, one whose id told its time and one whose id did not
    timed, untimed = new_message_id(now_ms() - 5_000), "msg_Gp5xGMK93cfx-K4wJtn0NuKOokM"
    deliver(deployment, "team.created", timed)
    deliver(deployment, "team.created", untimed)
    assert len(receive_typed(deployment, "team.created")) == 2
    # and the stored time of the first differs from what its id reads now: a replay that read the id again would
    # send the id's value, one that carries the stored original sends this one
    stored = int(decode_ksuid_ms(timed) or 0) - 1_234
    deployment.stack.client("dynamodb").update_item(
        TableName=deployment.stack.table_name,
        Key={"event_id": {"S": timed}},
        UpdateExpression="SET event_created_at = :stored",
        ExpressionAttributeValues={":stored": {"N": str(stored)}},
    )

    # when
    summary = replay(deployment, timed, untimed)

    # then: each replayed message carries what its record holds, and nothing where it holds nothing
    assert summary.published == 2
    replayed = {m["MessageAttributes"]["event_id"]["StringValue"]: m for m in receive_typed(deployment, "team.created")}
    assert set(replayed) == {timed, untimed}
    attributes = replayed[timed]["MessageAttributes"]
    assert attributes["replay"]["StringValue"] == "true"
    assert attributes["event_created_at"] == {"DataType": "Number", "StringValue": str(stored)}
    assert "event_created_at" not in replayed[untimed]["MessageAttributes"]
