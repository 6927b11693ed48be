"""Replay end to end on the emulator: events ingested by the real handler are re-published from the table.

Every test ingests signed deliveries through ``functions/ingest/app.py``, empties the queues (one per topic, raw
delivery), replays a selection, and checks what arrived where: the verbatim body with the attributes the ingest
function set plus ``replay=true``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.replay import (
    ReplaySummary,
    ReplayTarget,
    Selection,
    TokenBucket,
    build_replayer,
    describe,
)

from stack_webhook_fanout import bootstrap
from stack_webhook_fanout.event_store import EventStore

from .support import FALLBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack_webhook_fanout_tools.devkit.emulator import QueueMessage
    from stack_webhook_fanout_tools.replay import ItemResult

    from .support import Delivery, FedStack

pytestmark = pytest.mark.integration


def replay(
    fed: FedStack,
    selection: Selection,
    *,
    execute: bool,
    sns: Any = None,
    limiter: TokenBucket | None = None,
) -> tuple[ReplaySummary, list[ItemResult]]:
    """Select and replay with the library, as ``tools/replay.py`` does."""
    target = ReplayTarget.from_local_outputs(fed.stack.outputs())
    replayer = build_replayer(
        target,
        fed.stack.client("dynamodb"),
        sns or fed.stack.client("sns"),
        consistent_read=True,
        limiter=limiter,
    )
    summary = ReplaySummary(executed=execute)
    results: list[ItemResult] = []
    replayer.run(replayer.select(selection, summary), summary, on_result=results.append)
    return summary, results


def ingest(fed: FedStack, *event_types: str) -> list[Delivery]:
    deliveries = [fed.deliver(t) for t in event_types]
    for delivery in deliveries:
        assert delivery.status == 200, delivery.answer
        assert delivery.answer["status"] == "published"
    return deliveries


def originals(fed: FedStack) -> dict[str, tuple[str, QueueMessage]]:
    """Empty the queues; return what the ingest function published, by event id: (queue, message)."""
    return {m.attributes["event_id"]: (queue, m) for queue, m in fed.delivered()}


def assert_replayed(
    fed: FedStack,
    expected_ids: list[str],
    published: dict[str, tuple[str, QueueMessage]],
) -> None:
    """Exactly the expected ids arrived, once each, on the queue the ingest function used, with the same body and
    the same attributes plus replay=true."""
    arrived = fed.delivered()
    assert sorted(m.attributes["event_id"] for _, m in arrived) == sorted(expected_ids)
    for queue, message in arrived:
        original_queue, original = published[message.attributes["event_id"]]
        assert queue == original_queue
        assert message.body == original.body
        assert dict(message.attributes) == {**original.attributes, "replay": "true"}
        assert "replay" not in original.attributes


def test_replay_by_id_republishes_exactly_those_events_with_the_replay_attribute(fed_stack: FedStack) -> None:
    # given: four events ingested (one of a type Stack may add later, routed to the fallback topic)
    user, _team, unknown, _test = ingest(fed_stack, "user.created", "team.created", "session.created", "stack.test")
    published = originals(fed_stack)
    assert published[unknown.event_id][0] == FALLBACK

    # when: two of them are replayed by id, plus an id that was never received
    summary, _ = replay(
        fed_stack, Selection(event_ids=(user.event_id, unknown.event_id, "msg_neverreceived")), execute=True
    )

    # then: those two, and only those, are published again, each to the topic it went to the first time
    assert (summary.found, summary.selected, summary.published, summary.failed_total) == (2, 2, 2, 0)
    assert dict(summary.skipped) == {"not_found": 1}
    assert_replayed(fed_stack, [user.event_id, unknown.event_id], published)


def test_replay_dry_run_publishes_and_changes_nothing(fed_stack: FedStack) -> None:
    # given
    deliveries = ingest(fed_stack, "user.created", "user.updated", "team.deleted")
    originals(fed_stack)
    records_before = fed_stack.records()

    # when: a dry run by type (a Scan) and one by id (GetItems)
    by_type, results = replay(fed_stack, Selection(event_types=("user.created", "user.updated")), execute=False)
    by_id, _ = replay(fed_stack, Selection(event_ids=(deliveries[2].event_id,)), execute=False)

    # then: it says what would be sent, sends nothing and writes nothing
    assert (by_type.selected, by_type.published, by_type.executed) == (2, 2, False)
    assert sorted(r.message.record.event_id for r in results) == sorted(d.event_id for d in deliveries[:2])
    assert all(r.message_id is None for r in results)
    assert (by_id.selected, by_id.published) == (1, 1)
    assert fed_stack.delivered() == []
    assert fed_stack.records() == records_before


def test_replay_by_type_selects_every_stored_event_of_those_types(fed_stack: FedStack) -> None:
    # given: two user.created, one user.deleted, one team.created, one team.updated
    deliveries = ingest(fed_stack, "user.created", "user.deleted", "user.created", "team.created", "team.updated")
    published = originals(fed_stack)

    # when
    summary, _ = replay(fed_stack, Selection(event_types=("user.created", "team.created")), execute=True)

    # then
    expected = [d.event_id for d in deliveries if d.event_type in ("user.created", "team.created")]
    assert len(expected) == 3
    assert (summary.selected, summary.published) == (3, 3)
    assert dict(summary.published_by_type) == {"user.created": 2, "team.created": 1}
    assert_replayed(fed_stack, expected, published)


def test_replay_by_time_range_selects_by_time_of_receipt(fed_stack: FedStack) -> None:
    # given: a first batch, then a second batch received later
    first = ingest(fed_stack, "user.created", "team.created")
    second = ingest(fed_stack, "user.created", "team.deleted")
    published = originals(fed_stack)
    received = {r["event_id"]: r["received_at"] for r in fed_stack.records()}
    last_of_first = max(received[d.event_id] for d in first)
    first_of_second = min(received[d.event_id] for d in second)
    assert last_of_first < first_of_second
    boundary = (last_of_first + first_of_second) / 2

    # when / then: from the boundary on, only the second batch
    summary, _ = replay(fed_stack, Selection(received_from=boundary), execute=True)
    assert summary.published == 2
    assert_replayed(fed_stack, [d.event_id for d in second], published)

    # when / then: before the boundary, only the first batch
    summary, _ = replay(fed_stack, Selection(received_until=boundary), execute=True)
    assert summary.published == 2
    assert_replayed(fed_stack, [d.event_id for d in first], published)

    # when / then: a range that holds every event, narrowed by type
    summary, _ = replay(
        fed_stack,
        Selection(event_types=("user.created",), received_from=min(received.values()), received_until=boundary),
        execute=True,
    )
    assert summary.published == 1
    assert_replayed(fed_stack, [first[0].event_id], published)


def test_replay_time_range_includes_its_start_and_excludes_its_end(fed_stack: FedStack) -> None:
    # given: one event, and its exact time of receipt as stored
    (delivery,) = ingest(fed_stack, "project_permission.created")
    published = originals(fed_stack)
    record = fed_stack.record(delivery.event_id)
    assert record is not None
    received_at = record["received_at"]

    # when / then: a range ending at that instant does not hold it (the Scan's filter already leaves it out)
    summary, _ = replay(fed_stack, Selection(received_until=received_at), execute=True)
    assert (summary.found, summary.published, dict(summary.skipped)) == (0, 0, {})

    # when / then: a range starting at that instant holds it
    summary, _ = replay(fed_stack, Selection(received_from=received_at), execute=True)
    assert (summary.found, summary.published) == (1, 1)
    assert_replayed(fed_stack, [delivery.event_id], published)


def test_replay_routes_bodies_that_are_not_valid_events_like_the_ingest_function(fed_stack: FedStack) -> None:
    # given: verified bodies that are not valid events (no type; not an object)
    missing_type = fed_stack.deliver("unreadable", body=b'{"data":{"id":"u_1"}}')
    not_an_object = fed_stack.deliver("unreadable", body=b"[1,2,3]")
    assert (missing_type.status, not_an_object.status) == (200, 200)
    published = originals(fed_stack)
    assert published[missing_type.event_id][1].attributes["invalid_reason"] == "missing_type"
    assert published[not_an_object.event_id][1].attributes["invalid_reason"] == "not_an_object"

    # when
    summary, _ = replay(fed_stack, Selection(event_ids=(missing_type.event_id, not_an_object.event_id)), execute=True)

    # then: both to the fallback topic again, with the same invalid_reason
    assert summary.published == 2
    assert_replayed(fed_stack, [missing_type.event_id, not_an_object.event_id], published)


def test_replay_pushes_unpublished_records_only_when_asked_and_marks_them(fed_stack: FedStack) -> None:
    # given: a delivery whose publication failed (SNS unreachable: a closed port), so the record stays "claimed"
    broken = fed_stack.handler(AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{free_port()}")
    failed = fed_stack.deliver("user.updated", handler=broken)
    assert failed.status == 503, failed.answer
    record = fed_stack.record(failed.event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert fed_stack.delivered() == []

    # when: replayed without --include-unpublished
    summary, _ = replay(fed_stack, Selection(event_types=("user.updated",)), execute=True)

    # then: left out, and the summary says why
    assert (summary.found, summary.selected, summary.published) == (1, 0, 0)
    assert dict(summary.skipped) == {"not_published": 1}
    assert any("--include-unpublished" in line for line in summary.lines())
    assert fed_stack.delivered() == []

    # when: replayed with it
    summary, results = replay(
        fed_stack, Selection(event_types=("user.updated",), include_unpublished=True), execute=True
    )

    # then: published once to its topic, with the attributes the ingest function would have set, and marked
    assert (summary.selected, summary.published, summary.failed_total) == (1, 1, 0)
    arrived = fed_stack.delivered()
    assert [queue for queue, _ in arrived] == ["user.updated"]
    message = arrived[0][1]
    assert message.body.encode() == failed.body
    assert message.attributes["event_id"] == failed.event_id
    assert message.attributes["replay"] == "true"
    assert message.attributes["event_type"] == "user.updated"
    record = fed_stack.record(failed.event_id)
    assert record is not None
    assert record["status"] == "published"
    assert record["topic_arn"] == fed_stack.stack.topic_arns["user.updated"]
    assert record["message_id"] == results[0].message_id

    # and: Svix's next retry of that delivery is a duplicate, not a second publication
    retry = fed_stack.deliver("user.updated", event_id=failed.event_id)
    assert (retry.status, retry.answer["status"]) == (200, "duplicate")
    assert fed_stack.delivered() == []


def test_replay_pushes_a_publication_unknown_record_only_with_its_own_flag(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a delivery SNS accepted but whose record could not be marked (the mark update fails), lease 1 s
    session = botocore.session.get_session()  # a fresh one for this execution environment, with the fault on it
    monkeypatch.setattr(bootstrap, "aws_session", lambda: session)

    def refuse_mark(params: dict[str, Any], **_: Any) -> None:
        if b":published" in params["body"]:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "UpdateItem")

    session.register("before-call.dynamodb.UpdateItem", refuse_mark)
    unrecorded = fed_stack.deliver("team.created", handler=fed_stack.handler(CLAIM_LEASE_SECONDS="1"))
    assert (unrecorded.status, unrecorded.answer["status"]) == (200, "published")
    first_copy = fed_stack.delivered()
    assert [queue for queue, _ in first_copy] == ["team.created"]
    record = fed_stack.record(unrecorded.event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert record["claim_token"]
    while time.time() <= record["lease_expires_at"]:  # the lease, 1 s: not a timing assertion
        time.sleep(0.1)

    # when: replayed without a flag, and with --include-unpublished (which is for records known unpublished)
    plain, _ = replay(fed_stack, Selection(event_types=("team.created",)), execute=True)
    unpublished_only, _ = replay(
        fed_stack, Selection(event_types=("team.created",), include_unpublished=True), execute=True
    )

    # then: left out both times, named for what it is
    assert dict(plain.skipped) == {"publication_unknown": 1}
    assert dict(unpublished_only.skipped) == {"publication_unknown": 1}
    assert any("--include-publication-unknown" in line for line in plain.lines())
    assert fed_stack.delivered() == []

    # when: a dry run, then the replay asked for it
    dry, dry_results = replay(
        fed_stack, Selection(event_types=("team.created",), include_publication_unknown=True), execute=False
    )
    summary, results = replay(
        fed_stack, Selection(event_types=("team.created",), include_publication_unknown=True), execute=True
    )

    # then: the dry run marks it [publication_unknown]; the replay publishes it, marked replay=true: the
    # subscriber now holds a second copy with the same event_id, as the README's duplicates list says
    assert (dry.selected, dry.published) == (1, 1)
    assert "[publication_unknown]" in describe(dry_results[0].message)
    assert (summary.selected, summary.published) == (1, 1)
    second_copy = fed_stack.delivered()
    assert [queue for queue, _ in second_copy] == ["team.created"]
    assert second_copy[0][1].attributes["replay"] == "true"
    assert second_copy[0][1].attributes["event_id"] == first_copy[0][1].attributes["event_id"]
    assert "replay" not in first_copy[0][1].attributes
    after = fed_stack.record(unrecorded.event_id)
    assert after is not None
    assert after["status"] == "published"
    assert after["message_id"] == results[0].message_id


def test_replay_leaves_a_live_claim_alone(fed_stack: FedStack) -> None:
    # given: a record claimed right now by an invocation that is still running (its lease is live)
    store = EventStore(fed_stack.stack.client("dynamodb"), fed_stack.stack.table_name, lease_seconds=300)
    claim = store.claim(
        "msg_inflight", event_type="user.created", body='{"type":"user.created","data":{}}', body_sha256="0",
        event_timestamp="1764201600",
    )  # fmt: skip
    before = fed_stack.record("msg_inflight")

    # when: a dry run
    dry, _ = replay(fed_stack, Selection(event_ids=("msg_inflight",), include_unpublished=True), execute=False)

    # then: it already says the record would be left alone
    assert (dry.selected, dry.published, dict(dry.skipped)) == (0, 0, {"claim_in_progress": 1})

    # when
    summary, _ = replay(fed_stack, Selection(event_ids=("msg_inflight",), include_unpublished=True), execute=True)

    # then: not published, the claim untouched
    assert (summary.selected, summary.published) == (0, 0)
    assert dict(summary.skipped) == {"claim_in_progress": 1}
    assert fed_stack.delivered() == []
    after = fed_stack.record("msg_inflight")
    assert after == before
    assert after is not None
    assert after["claim_token"] == claim.token


def test_replay_counts_publish_failures_by_reason_and_goes_on(fed_stack: FedStack) -> None:
    # given: three events; SNS refuses publications to the team.created topic (a fault around the real call)
    deliveries = ingest(fed_stack, "user.created", "team.created", "team.deleted")
    published = originals(fed_stack)
    sns = fed_stack.stack.client("sns")
    refused_topic = fed_stack.stack.topic_arns["team.created"]

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("TopicArn") == refused_topic:
            raise ClientError({"Error": {"Code": "KMSThrottling", "Message": "injected"}}, "Publish")

    sns.meta.events.register("provide-client-params.sns.Publish", refuse)

    # when
    summary, results = replay(fed_stack, Selection(event_ids=tuple(d.event_id for d in deliveries)), execute=True)

    # then: one failure, counted by its reason; the others published
    assert (summary.selected, summary.published) == (3, 2)
    assert dict(summary.failed) == {"sns:KMSThrottling": 1}
    assert [r.message.record.event_id for r in results if r.failure] == [deliveries[1].event_id]
    assert_replayed(fed_stack, [deliveries[0].event_id, deliveries[2].event_id], published)


def test_replay_paces_publications_with_the_token_bucket(fed_stack: FedStack) -> None:
    # given: five events, and a limiter of 4 messages per second with a burst of 2, on a fake clock
    deliveries = ingest(fed_stack, *(["team_membership.created"] * 5))
    originals(fed_stack)
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    limiter = TokenBucket(4, burst=2, clock=clock, sleep=sleep)

    # when
    summary, _ = replay(fed_stack, Selection(event_types=("team_membership.created",)), execute=True, limiter=limiter)

    # then: two at once, then one every quarter of a second
    assert summary.published == 5
    assert sleeps == pytest.approx([0.25, 0.25, 0.25])
    assert len(fed_stack.delivered()) == len(deliveries)
