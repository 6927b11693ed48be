"""The replay's pure parts: pacing, time parsing, selection, outputs, routing plan, progress and summary."""

from __future__ import annotations

import io
import json
import zlib
from collections import Counter
from datetime import UTC, datetime

import pytest
from stack_webhook_fanout_tools.devkit.samples import sample_body
from stack_webhook_fanout_tools.replay import (
    OutputsError,
    ProgressBar,
    RecordState,
    ReplaySummary,
    ReplayTarget,
    Selection,
    SelectionError,
    StoredEvent,
    TokenBucket,
    describe,
    parse_time,
    plan_message,
)

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
ARN = "arn:aws:sns:us-east-1:123456789012:"


class FakeTime:
    """A monotonic clock that only moves when slept on (or told to): no real waiting, no timed assertion."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- TokenBucket --------------------------------------------------------------------------------------------------
def test_token_bucket_spaces_acquisitions_by_one_over_the_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(5, clock=fake.clock, sleep=fake.sleep)

    waits = [bucket.acquire() for _ in range(4)]

    assert waits == pytest.approx([0.0, 0.2, 0.2, 0.2])
    assert fake.sleeps == pytest.approx([0.2, 0.2, 0.2])


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10, burst=3, clock=fake.clock, sleep=fake.sleep)

    for _ in range(5):
        bucket.acquire()

    assert fake.sleeps == pytest.approx([0.1, 0.1])


def test_token_bucket_refills_during_a_pause_up_to_the_burst_only() -> None:
    # given: an emptied bucket of burst 2 at 1 per second
    fake = FakeTime()
    bucket = TokenBucket(1, burst=2, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    bucket.acquire()

    # when: a long pause (the caller was busy), then three acquisitions
    fake.now += 60
    for _ in range(3):
        bucket.acquire()

    # then: two free (the burst, not 60), the third waits a full second
    assert fake.sleeps == pytest.approx([1.0])


def test_token_bucket_counts_time_already_passed_towards_the_next_token() -> None:
    fake = FakeTime()
    bucket = TokenBucket(2, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    fake.now += 0.3  # the publication itself took 0.3 s

    assert bucket.acquire() == pytest.approx(0.2)


def test_token_bucket_keeps_a_fractional_rate_exact() -> None:
    fake = FakeTime()
    bucket = TokenBucket(2.5, clock=fake.clock, sleep=fake.sleep)

    for _ in range(3):
        bucket.acquire()

    assert fake.sleeps == pytest.approx([0.4, 0.4])


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (0.0001, 1), (1, 0.5), (1, 1.5)])
def test_token_bucket_rejects_impossible_settings(rate: float, burst: float) -> None:
    with pytest.raises(SelectionError):
        TokenBucket(rate, burst)


# --- parse_time ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T12:00:00Z", NOW),
        ("2026-11-27T12:00Z", NOW),
        ("2026-11-27T13:00:00+01:00", NOW),
        ("2026-11-27 12:00:00", NOW),  # no offset: UTC
        ("2026-11-27", NOW - 12 * 3600),
        (str(int(NOW)), NOW),
        ("1764244800.5", 1764244800.5),
        ("90s", NOW - 90),
        ("30m", NOW - 1800),
        ("6h", NOW - 6 * 3600),
        ("2d", NOW - 2 * 86400),
        ("1w", NOW - 7 * 86400),
        ("1.5h", NOW - 5400),
    ],
)
def test_parse_time_reads_iso_epoch_and_durations_ago(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "6 hours", "2026-13-01", "-5m"])
def test_parse_time_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(SelectionError):
        parse_time(text, now=NOW)


# --- Selection ----------------------------------------------------------------------------------------------------
def record(event_type: str = "user.created", received_at: float | None = NOW, status: str = "published") -> StoredEvent:
    return StoredEvent(
        event_id="msg_1",
        event_type=event_type,
        body=sample_body("user.created").decode(),
        status=status,
        event_timestamp=str(int(NOW)),
        received_at=received_at,
    )


def test_selection_time_range_includes_its_start_and_excludes_its_end() -> None:
    selection = Selection(received_from=NOW, received_until=NOW + 10)

    assert selection.matches(record(received_at=NOW))
    assert selection.matches(record(received_at=NOW + 9.999))
    assert not selection.matches(record(received_at=NOW + 10))
    assert not selection.matches(record(received_at=NOW - 0.001))
    assert not selection.matches(record(received_at=None))


def test_selection_criteria_combine_with_and() -> None:
    selection = Selection(event_types=("team.created", "user.created"), received_from=NOW)

    assert selection.matches(record("user.created", NOW + 1))
    assert not selection.matches(record("user.deleted", NOW + 1))
    assert not selection.matches(record("user.created", NOW - 1))


def test_selection_without_criteria_is_everything_and_an_empty_range_is_refused() -> None:
    assert Selection().is_everything
    assert Selection(include_unpublished=True).is_everything
    assert not Selection(received_until=0.0).is_everything
    assert not Selection(event_ids=("msg_1",)).is_everything
    with pytest.raises(SelectionError):
        Selection(received_from=NOW, received_until=NOW)


def test_selection_scan_filter_names_every_criterion() -> None:
    scan = Selection(event_types=("user.created", "team.created"), received_from=1.5, received_until=2.0).scan_filter()

    assert scan["FilterExpression"] == "#type IN (:type0, :type1) AND #received >= :from AND #received < :until"
    assert scan["ExpressionAttributeNames"] == {"#type": "event_type", "#received": "received_at"}
    assert scan["ExpressionAttributeValues"] == {
        ":type0": {"S": "user.created"},
        ":type1": {"S": "team.created"},
        ":from": {"N": "1.500"},
        ":until": {"N": "2.000"},
    }
    assert Selection(event_ids=("msg_1",)).scan_filter() == {}


def test_stored_event_from_item_refuses_a_record_without_a_body() -> None:
    item = {"event_id": {"S": "msg_1"}, "status": {"S": "published"}, "event_timestamp": {"S": "1"}}

    assert StoredEvent.from_item(item) is None
    built = StoredEvent.from_item({**item, "body": {"S": "{}"}, "received_at": {"N": "12.5"}})
    assert built is not None
    assert (built.event_type, built.received_at) == ("unreadable", 12.5)


def test_stored_event_from_item_reads_a_compressed_body_exactly_and_refuses_a_corrupt_one() -> None:
    item = {"event_id": {"S": "msg_1"}, "status": {"S": "published"}, "event_timestamp": {"S": "1"}}
    body = '{"type":"user.created", "data":{"name":"Zo\u00eb é"}}'

    built = StoredEvent.from_item({**item, "body_zlib": {"B": zlib.compress(body.encode())}})
    assert built is not None
    assert built.body.encode() == body.encode()
    assert StoredEvent.from_item({**item, "body_zlib": {"B": b"not zlib"}}) is None


# --- ReplayTarget -------------------------------------------------------------------------------------------------
def stack_outputs() -> dict[str, str]:
    outputs = {f"{lid}Arn": f"{ARN}{lid}" for lid in TOPIC_LOGICAL_IDS.values()}
    outputs.update(EventsTableName="events-table", FallbackTopicArn=f"{ARN}Fallback", WebhookUrl="https://x")
    return outputs


def test_replay_target_reads_a_stacks_outputs_by_topic_logical_id() -> None:
    target = ReplayTarget.from_stack_outputs(stack_outputs())

    assert target.table_name == "events-table"
    assert target.topic_arns["team_membership.created"] == f"{ARN}TeamMembershipCreatedTopic"
    assert set(target.topic_arns) == set(KNOWN_EVENT_TYPES)
    assert target.fallback_topic_arn == f"{ARN}Fallback"
    assert target.endpoint_url is None


def test_replay_target_names_the_outputs_a_stack_lacks() -> None:
    outputs = stack_outputs()
    del outputs["StackTestTopicArn"]
    del outputs["EventsTableName"]

    with pytest.raises(OutputsError, match="EventsTableName, StackTestTopicArn"):
        ReplayTarget.from_stack_outputs(outputs)


def test_replay_target_reads_the_local_outputs_file_and_names_what_it_lacks() -> None:
    local = {
        "WebhookUrl": "http://127.0.0.1:3000/webhooks/stack",
        "AwsEndpointUrl": "http://127.0.0.1:4566",
        "Region": "eu-west-1",
        "WebhookSecret": "whsec_x",
        "EventsTableName": "t",
        "TopicArns": {t: f"{ARN}{t}" for t in KNOWN_EVENT_TYPES},
        "FallbackTopicArn": f"{ARN}fb",
    }
    target = ReplayTarget.from_local_outputs(json.loads(json.dumps(local)))
    assert (target.endpoint_url, target.region, target.table_name) == ("http://127.0.0.1:4566", "eu-west-1", "t")

    del local["TopicArns"]["stack.test"]  # type: ignore[attr-defined]
    with pytest.raises(OutputsError, match=r"lacks: stack\.test"):
        ReplayTarget.from_local_outputs(local)
    with pytest.raises(OutputsError, match="EventsTableName"):
        ReplayTarget.from_local_outputs({**local, "EventsTableName": ""})


# --- plan_message -------------------------------------------------------------------------------------------------
def test_plan_message_routes_and_attributes_as_ingest_does_plus_replay() -> None:
    target = ReplayTarget.from_stack_outputs(stack_outputs())
    router = target.router()

    known = plan_message(record(), router)
    unknown = plan_message(
        StoredEvent("msg_2", "session.created", '{"type":"session.created","data":{}}', "published", "17"), router
    )
    invalid = plan_message(StoredEvent("msg_3", "unreadable", "[1,2,3]", "claimed", "18"), router)
    rejected_by_models = plan_message(
        StoredEvent("msg_4", "user.created", '{"type":"user.created","data":{}}', "published", "19"), router
    )

    assert known.topic_arn == f"{ARN}UserCreatedTopic"
    assert {k: v["StringValue"] for k, v in known.attributes.items()} == {
        "event_type": "user.created",
        "event_id": "msg_1",
        "event_timestamp": str(int(NOW)),
        "user_id": "3241a285-8329-4d69-8f3d-316e08cf140c",
        "replay": "true",
    }
    assert unknown.topic_arn == f"{ARN}Fallback"
    assert unknown.attributes["event_type"]["StringValue"] == "session.created"
    assert invalid.topic_arn == f"{ARN}Fallback"
    assert invalid.attributes["invalid_reason"]["StringValue"] == "not_an_object"
    # a known type goes to its topic whatever its data holds, as in the ingest function
    assert rejected_by_models.topic_arn == f"{ARN}UserCreatedTopic"
    assert "invalid_reason" not in rejected_by_models.attributes
    assert invalid.unpublished
    assert not known.unpublished
    # the dry-run line says where it goes and how big it is, never what is in it
    line = describe(known)
    assert "msg_1" in line
    assert "UserCreatedTopic" in line
    assert f"{known.size} B" in line
    assert "jane" not in line.lower()


# --- ProgressBar and summary --------------------------------------------------------------------------------------
def test_progress_bar_off_a_terminal_draws_little_and_always_the_final_state() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10, interactive=False)

    for done in range(101):
        bar.update(done, 100, f"published={done}")
    bar.close()

    draws = [d.rstrip() for d in stream.getvalue().rstrip("\n").split("\r") if d.strip()]
    # a hundred updates within the log interval: the first draw and the final one, not a hundred lines
    assert len(draws) <= 3
    assert draws[-1] == "[##########] 100/100 published=100"
    assert stream.getvalue().endswith("\n")


def test_progress_bar_keeps_messages_on_lines_of_their_own() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=4, interactive=True)

    bar.update(1, 4, "published=1")
    bar.message("FAILED (sns:Throttled)  msg_2")
    bar.update(4, 4)
    bar.close()

    text = stream.getvalue()
    # the bar is wiped, the message gets its own line, the bar is drawn again after it
    assert "\rFAILED (sns:Throttled)  msg_2\n\r[#...] 1/4 published=1" in text
    assert text.rstrip().endswith("[####] 4/4")


def test_summary_reports_counts_by_reason_and_hints_at_unpublished_records() -> None:
    summary = ReplaySummary(executed=True, found=7, selected=5, published=3)
    summary.failed.update({"sns:Throttled": 1, "too_large": 1})
    summary.skipped.update({"not_published": 2})
    summary.published_by_type.update({"user.created": 3})

    text = "\n".join(summary.lines())

    assert "selected:       5 (of 7 records found)" in text
    assert "published:      3" in text
    assert "failed:         2 (sns:Throttled=1, too_large=1)" in text
    assert "skipped:        2 (not_published=2)" in text
    assert "by type:        user.created=3" in text
    assert "--include-unpublished" in text
    dry = "\n".join(ReplaySummary(executed=False, found=1, selected=1, published=1).lines())
    assert "dry run" in dry
    assert "would publish:  1" in dry
    assert Counter() == ReplaySummary(executed=True).failed


# --- record states -----------------------------------------------------------------------------------------------
def claimed(*, held: bool, lease: float | None) -> StoredEvent:
    return StoredEvent(
        "msg_c", "user.created", '{"type":"user.created","data":{}}', "claimed", "17",
        lease_expires_at=lease, claim_held=held,
    )  # fmt: skip


def test_record_states_tell_live_released_and_unknown_claims_apart() -> None:
    assert record().state(NOW) is RecordState.PUBLISHED
    assert claimed(held=True, lease=NOW + 1).state(NOW) is RecordState.IN_PROGRESS
    # a claim still held past its lease: the invocation stopped or could not mark the record; it may have published
    assert claimed(held=True, lease=NOW - 1).state(NOW) is RecordState.PUBLICATION_UNKNOWN
    # released after a failed publish (no token, lease 0): known unpublished
    assert claimed(held=False, lease=0).state(NOW) is RecordState.UNPUBLISHED


def test_record_state_reads_the_claim_token_of_the_stored_item() -> None:
    item = {
        "event_id": {"S": "msg_c"},
        "event_type": {"S": "user.created"},
        "body": {"S": "{}"},
        "status": {"S": "claimed"},
        "event_timestamp": {"S": "17"},
        "lease_expires_at": {"N": str(NOW - 5)},
    }
    released = StoredEvent.from_item(item)
    held = StoredEvent.from_item({**item, "claim_token": {"S": "abc"}})
    assert released is not None
    assert held is not None
    assert released.state(NOW) is RecordState.UNPUBLISHED
    assert held.state(NOW) is RecordState.PUBLICATION_UNKNOWN


def test_summary_explains_each_kind_of_record_left_out() -> None:
    summary = ReplaySummary(executed=True)
    summary.skipped.update({"not_published": 1, "publication_unknown": 2})
    text = "\n".join(summary.lines())
    assert "--include-unpublished" in text
    assert "--include-publication-unknown" in text
    assert "second copy" in text
