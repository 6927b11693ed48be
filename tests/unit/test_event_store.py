"""``event_store.py`` against in-process moto DynamoDB: the claim, lease, mark and release logic, the item layout,
and DynamoDB failures (a ``before-call`` hook on the real client) turned into DependencyError."""

from __future__ import annotations

import hashlib
import zlib
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.dynamodb_item_size import dynamodb_item_size, write_units

from stack_webhook_fanout.errors import ClaimInProgressError, DependencyError
from stack_webhook_fanout.event_store import (
    STATUS_CLAIMED,
    STATUS_PUBLISHED,
    AlreadyPublished,
    Claim,
    EventStore,
    RecordState,
    plain_item,
    plain_record_state,
    stored_body,
)
from stack_webhook_fanout.event_types import TOPIC_LOGICAL_IDS

if TYPE_CHECKING:
    from collections.abc import Callable

EVENT_ID = "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u"
BODY = '{"type":"team.deleted","data":{"id":"ad962777-8244-496a-b6a2-e0c6a449c79e"}}'
SHA = hashlib.sha256(BODY.encode()).hexdigest()
LEASE = 15
RETENTION_DAYS = 30


@pytest.fixture
def store(dynamodb: Any, events_table: str, clock: Any) -> EventStore:
    return EventStore(dynamodb, events_table, retention_days=RETENTION_DAYS, lease_seconds=LEASE, clock=clock)


def claim(store: EventStore, event_id: str = EVENT_ID, body: str = BODY) -> Claim | AlreadyPublished:
    return store.claim(
        event_id,
        event_type="team.deleted",
        body=body,
        body_sha256=hashlib.sha256(body.encode()).hexdigest(),
        event_timestamp="1800000000",
    )


def new_claim(store: EventStore, event_id: str = EVENT_ID) -> Claim:
    result = claim(store, event_id)
    assert isinstance(result, Claim)
    return result


def raw_item(dynamodb: Any, table: str, event_id: str = EVENT_ID) -> dict[str, Any]:
    return dict(dynamodb.get_item(TableName=table, Key={"event_id": {"S": event_id}}, ConsistentRead=True)["Item"])


# --- claims ---------------------------------------------------------------------------------------------------------


def test_claim_new_event(store: EventStore) -> None:
    result = claim(store)
    assert isinstance(result, Claim)
    assert result.event_id == EVENT_ID
    assert result.attempt == 1
    assert len(result.token) == 32


def test_claim_item_fields(store: EventStore, dynamodb: Any, events_table: str, clock: Any) -> None:
    # given a fixed, fractional clock
    clock.now = 1_800_000_000.25
    token = new_claim(store).token
    item = raw_item(dynamodb, events_table)
    # then the item holds what the docstring lists, with these DynamoDB types
    assert {name: next(iter(value)) for name, value in item.items()} == {
        "event_id": "S",
        "event_type": "S",
        "body_zlib": "B",
        "body_sha256": "S",
        "event_timestamp": "S",
        "status": "S",
        "claim_token": "S",
        "lease_expires_at": "N",
        "received_at": "N",
        "attempts": "N",
        "expires_at": "N",
    }
    record = plain_item(item)
    assert record["event_id"] == EVENT_ID
    assert record["event_type"] == "team.deleted"
    assert zlib.decompress(record["body_zlib"]) == BODY.encode()
    assert stored_body(record) == BODY.encode()
    assert record["body_sha256"] == SHA
    assert record["event_timestamp"] == "1800000000"
    assert record["status"] == STATUS_CLAIMED
    assert record["claim_token"] == token
    assert record["lease_expires_at"] == clock.now + LEASE
    assert record["received_at"] == clock.now
    assert record["attempts"] == 1


def test_claim_expires_at_is_now_plus_retention(dynamodb: Any, events_table: str, clock: Any) -> None:
    clock.now = 1_800_000_000.9
    store = EventStore(dynamodb, events_table, retention_days=7, lease_seconds=LEASE, clock=clock)
    new_claim(store)
    # whole epoch seconds, as the TTL attribute must be
    assert raw_item(dynamodb, events_table)["expires_at"] == {"N": str(1_800_000_000 + 7 * 86_400)}


def test_claim_again_while_leased_is_in_progress(store: EventStore, clock: Any) -> None:
    new_claim(store)
    clock.advance(LEASE - 1)
    with pytest.raises(ClaimInProgressError) as raised:
        claim(store)
    assert raised.value.event_id == EVENT_ID
    # the live lease is what blocked it, and the refused claim left it as it was
    record = store.get(EVENT_ID)
    assert record is not None
    assert record["lease_expires_at"] == clock.now - (LEASE - 1) + LEASE


def test_claim_in_progress_does_not_change_the_record(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    new_claim(store)
    before = raw_item(dynamodb, events_table)
    with pytest.raises(ClaimInProgressError):
        claim(store, body='{"other":"body"}')
    assert raw_item(dynamodb, events_table) == before


def test_claim_after_publication_is_already_published(store: EventStore, clock: Any) -> None:
    held = new_claim(store)
    clock.advance(2)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="mid-1") is True
    clock.advance(LEASE * 10)
    result = claim(store)
    assert result == AlreadyPublished(event_id=EVENT_ID, published_at=clock.now - LEASE * 10, body_sha256=SHA)


def test_claim_after_publication_reports_the_first_body_hash(store: EventStore) -> None:
    store.mark_published(new_claim(store), topic_arn="arn:topic", message_id="mid-1")
    # a sender reusing the id for another body gets the first body's hash back, to compare
    result = claim(store, body='{"type":"other"}')
    assert isinstance(result, AlreadyPublished)
    assert result.body_sha256 == SHA


def test_claim_after_lease_expired_is_reclaimed(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    # given a claim left behind by a crashed attempt
    first = new_claim(store)
    received_at = clock.now
    # when its lease has expired
    clock.advance(LEASE + 1)
    second = claim(store)
    # then the next delivery takes it over: attempt 2, a new token
    assert isinstance(second, Claim)
    assert second.attempt == 2
    assert second.token != first.token
    record = plain_item(raw_item(dynamodb, events_table))
    assert record["claim_token"] == second.token
    assert record["lease_expires_at"] == clock.now + LEASE
    assert record["received_at"] == received_at
    assert record["attempts"] == 2


def test_claim_at_exactly_the_lease_end_is_still_in_progress(store: EventStore, clock: Any) -> None:
    new_claim(store)
    clock.advance(LEASE)
    with pytest.raises(ClaimInProgressError):
        claim(store)


def test_mark_published_with_stale_token_returns_false(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    first = new_claim(store)
    clock.advance(LEASE + 1)
    second = new_claim(store)
    # the overtaken attempt cannot mark the record; the one holding the claim can
    assert store.mark_published(first, topic_arn="arn:first", message_id="m1") is False
    assert plain_item(raw_item(dynamodb, events_table))["status"] == STATUS_CLAIMED
    assert store.mark_published(second, topic_arn="arn:second", message_id="m2") is True


def test_mark_published_item_fields(store: EventStore, dynamodb: Any, events_table: str, clock: Any) -> None:
    held = new_claim(store)
    clock.advance(3)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="mid-1")
    record = plain_item(raw_item(dynamodb, events_table))
    assert record["status"] == STATUS_PUBLISHED
    assert record["published_at"] == clock.now
    assert record["topic_arn"] == "arn:topic"
    assert record["message_id"] == "mid-1"
    assert "claim_token" not in record
    assert "lease_expires_at" not in record
    assert stored_body(record) == BODY.encode()


def test_mark_published_records_unconfirmed_publish_attempts_only_when_there_were_some(
    store: EventStore, dynamodb: Any, events_table: str
) -> None:
    # a publish that succeeded at its first attempt: no attribute
    held = new_claim(store)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="m")
    assert "unconfirmed_publish_attempts" not in plain_item(raw_item(dynamodb, events_table))

    # a publish botocore retried after two attempts SNS may have taken: the record says two more copies may exist
    other = new_claim(store, "msg_other")
    assert store.mark_published(other, topic_arn="arn:topic", message_id="m2", unconfirmed_attempts=2)
    record = plain_item(raw_item(dynamodb, events_table, "msg_other"))
    assert (record["status"], record["unconfirmed_publish_attempts"]) == (STATUS_PUBLISHED, 2)


def test_mark_published_repeated_after_a_lost_response_is_done(store: EventStore) -> None:
    # botocore retries a write whose response was lost: the repeat of the same publication must not read as a
    # claim lost to another delivery
    held = new_claim(store)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="m") is True
    assert store.mark_published(held, topic_arn="arn:topic", message_id="m") is True


def test_mark_published_of_another_publication_after_marking_returns_false(store: EventStore) -> None:
    held = new_claim(store)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="m") is True
    assert store.mark_published(held, topic_arn="arn:topic", message_id="other") is False


def test_claim_repeated_with_its_own_token_after_a_lost_response_is_ours(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a claim whose response was lost, and botocore repeating the same write (same token)
    monkeypatch.setattr("stack_webhook_fanout.event_store.secrets.token_hex", lambda _n: "f" * 32)
    first = new_claim(store)
    # when the repeat meets its own live claim
    again = claim(store)
    # then it is the same claim, not someone else's in progress
    assert again == first


def test_release_lets_an_immediate_reclaim_succeed(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    held = new_claim(store)
    assert store.release(held) is True
    record = plain_item(raw_item(dynamodb, events_table))
    assert record["lease_expires_at"] == 0
    assert "claim_token" not in record
    # no waiting for the lease: the sender's next retry claims it at once
    clock.advance(0.001)
    again = claim(store)
    assert isinstance(again, Claim)
    assert again.attempt == 2


def test_release_with_stale_token_returns_false(store: EventStore, clock: Any) -> None:
    first = new_claim(store)
    clock.advance(LEASE + 1)
    second = new_claim(store)
    assert store.release(first) is False
    # the live claim is untouched
    with pytest.raises(ClaimInProgressError):
        claim(store)
    assert store.mark_published(second, topic_arn="arn:t", message_id="m") is True


def test_release_after_publication_returns_false(store: EventStore) -> None:
    held = new_claim(store)
    store.mark_published(held, topic_arn="arn:t", message_id="m")
    assert store.release(held) is False
    assert isinstance(claim(store), AlreadyPublished)


def test_claim_past_retention_is_claimed_again(store: EventStore, dynamodb: Any, events_table: str, clock: Any) -> None:
    # given a published record whose expires_at has passed but that TTL has not deleted yet
    store.mark_published(new_claim(store), topic_arn="arn:t", message_id="m")
    clock.advance(RETENTION_DAYS * 86_400 + 1)
    # then the id is new again
    result = claim(store)
    assert isinstance(result, Claim)
    record = plain_item(raw_item(dynamodb, events_table))
    assert record["status"] == STATUS_CLAIMED
    assert record["claim_token"] == result.token
    assert record["expires_at"] == int(clock.now) + RETENTION_DAYS * 86_400
    # and nothing of the old publication remains on the new claim
    assert {"published_at", "topic_arn", "message_id"}.isdisjoint(record)


def test_claim_just_before_retention_ends_is_a_duplicate(store: EventStore, clock: Any) -> None:
    store.mark_published(new_claim(store), topic_arn="arn:t", message_id="m")
    clock.advance(RETENTION_DAYS * 86_400 - 1)
    assert isinstance(claim(store), AlreadyPublished)


def test_claims_of_different_ids_are_independent(store: EventStore) -> None:
    a = new_claim(store, "msg_a")
    b = new_claim(store, "msg_b")
    assert a.token != b.token
    assert store.mark_published(a, topic_arn="arn:t", message_id="m")
    with pytest.raises(ClaimInProgressError):
        claim(store, "msg_b")


def test_get_returns_none_for_unknown_id(store: EventStore) -> None:
    assert store.get("msg_unknown") is None


def test_get_returns_the_record(store: EventStore) -> None:
    held = new_claim(store)
    record = store.get(EVENT_ID)
    assert record is not None
    assert record["claim_token"] == held.token


# --- DynamoDB failures ----------------------------------------------------------------------------------------------

FAILURES = [
    pytest.param("ProvisionedThroughputExceededException", "ProvisionedThroughputExceededException", id="throttled"),
    pytest.param("InternalServerError", "InternalServerError", id="internal"),
    pytest.param("ResourceNotFoundException", "ResourceNotFoundException", id="no-table"),
    pytest.param(EndpointConnectionError(endpoint_url="https://dynamodb"), "EndpointConnectionError", id="unreachable"),
    pytest.param(ReadTimeoutError(endpoint_url="https://dynamodb"), "ReadTimeoutError", id="timeout"),
]


def failure(error: Exception | str, operation: str, make_client_error: Callable[..., Exception]) -> Exception:
    return make_client_error(error, operation) if isinstance(error, str) else error


@pytest.mark.parametrize(("error", "detail"), FAILURES)
def test_claim_dynamodb_failure_is_dependency_error(
    store: EventStore,
    dynamodb: Any,
    events_table: str,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    error: Exception | str,
    detail: str,
) -> None:
    fault = inject_fault(dynamodb, "dynamodb", "UpdateItem", failure(error, "UpdateItem", make_client_error))
    with pytest.raises(DependencyError) as raised:
        claim(store)
    assert (raised.value.service, raised.value.detail) == ("dynamodb", detail)
    assert fault.raised == 1
    # nothing was written, and once DynamoDB is back the claim works
    fault.active = False
    assert dynamodb.scan(TableName=events_table)["Count"] == 0
    assert isinstance(claim(store), Claim)


@pytest.mark.parametrize(("error", "detail"), FAILURES)
def test_mark_published_dynamodb_failure_is_dependency_error(
    store: EventStore,
    dynamodb: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    error: Exception | str,
    detail: str,
) -> None:
    held = new_claim(store)
    inject_fault(dynamodb, "dynamodb", "UpdateItem", failure(error, "UpdateItem", make_client_error))
    with pytest.raises(DependencyError) as raised:
        store.mark_published(held, topic_arn="arn:t", message_id="m")
    assert (raised.value.service, raised.value.detail) == ("dynamodb", detail)


@pytest.mark.parametrize(("error", "detail"), FAILURES)
def test_release_dynamodb_failure_returns_false(
    store: EventStore,
    dynamodb: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    error: Exception | str,
    detail: str,
) -> None:
    held = new_claim(store)
    fault = inject_fault(dynamodb, "dynamodb", "UpdateItem", failure(error, "UpdateItem", make_client_error))
    assert store.release(held) is False
    assert fault.raised == 1


@pytest.mark.parametrize(("error", "detail"), FAILURES)
def test_get_dynamodb_failure_is_dependency_error(
    store: EventStore,
    dynamodb: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    error: Exception | str,
    detail: str,
) -> None:
    inject_fault(dynamodb, "dynamodb", "GetItem", failure(error, "GetItem", make_client_error))
    with pytest.raises(DependencyError) as raised:
        store.get(EVENT_ID)
    assert raised.value.detail == detail


def test_claim_conflict_without_old_item_reads_the_record(
    store: EventStore, dynamodb: Any, clock: Any, count_calls: Callable[..., Any], hook: Callable[..., None]
) -> None:
    # given DynamoDB answers a failed condition without the old item (ALL_OLD not honoured): the store reads it
    new_claim(store)

    def strip_old_item(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("Item", None)

    hook(dynamodb, "after-call.dynamodb.UpdateItem", strip_old_item)
    reads = count_calls(dynamodb, "dynamodb", "GetItem")
    with pytest.raises(ClaimInProgressError) as raised:
        claim(store)
    assert raised.value.event_id == EVENT_ID
    assert reads.count == 1


def test_plain_item_reads_strings_and_numbers() -> None:
    assert plain_item({"a": {"S": "x"}, "b": {"N": "1.500"}, "c": {"BOOL": True}}) == {"a": "x", "b": 1.5}


def test_plain_item_reads_binary_values() -> None:
    assert plain_item({"a": {"B": b"\x78\x9c"}}) == {"a": b"\x78\x9c"}


# --- the four record states, as the store's own writes leave them ------------------------------------------------
def test_each_write_leaves_the_state_it_is_named_for(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    def state() -> RecordState:
        return plain_record_state(plain_item(raw_item(dynamodb, events_table)), clock.now)

    held = new_claim(store)
    assert state() is RecordState.IN_PROGRESS
    clock.advance(LEASE + 1)
    assert state() is RecordState.PUBLICATION_UNKNOWN  # the invocation stopped holding its claim
    held = new_claim(store)
    assert store.release(held)
    assert state() is RecordState.UNPUBLISHED
    held = new_claim(store)
    assert store.mark_published(held, topic_arn="arn:topic", message_id="mid-1")
    assert state() is RecordState.PUBLISHED


# --- the body: stored compressed, read back exactly; records of before compression still read -------------------
def test_a_body_reads_back_byte_for_byte(store: EventStore, dynamodb: Any, events_table: str) -> None:
    # given a body whose bytes a re-serialisation would change (spacing, escapes, key order, non-ASCII)
    body = '{ "type":"user.created" ,"data":{"b":1,"a":"Zo\\u00eb \u00e9\u6f22","x":[1.50, 2e3]} }\n'
    result = claim(store, body=body)
    assert isinstance(result, Claim)
    assert stored_body(plain_item(raw_item(dynamodb, events_table))) == body.encode()


def test_a_record_of_before_compression_is_read_and_reclaimed_into_one_copy(
    store: EventStore, dynamodb: Any, events_table: str, clock: Any
) -> None:
    # given a record written by an earlier release: the body as text, a claim abandoned long ago
    dynamodb.put_item(
        TableName=events_table,
        Item={
            "event_id": {"S": EVENT_ID},
            "event_type": {"S": "team.deleted"},
            "body": {"S": BODY},
            "body_sha256": {"S": SHA},
            "event_timestamp": {"S": "1800000000"},
            "status": {"S": STATUS_CLAIMED},
            "claim_token": {"S": "0" * 32},
            "lease_expires_at": {"N": str(clock.now - 60)},
            "received_at": {"N": str(clock.now - 75)},
            "attempts": {"N": "1"},
            "expires_at": {"N": str(int(clock.now) + 86_400)},
        },
    )
    assert stored_body(plain_item(raw_item(dynamodb, events_table))) == BODY.encode()
    # when it is claimed again (a redelivery after the lease)
    held = new_claim(store)
    # then the body is kept once, compressed
    record = plain_item(raw_item(dynamodb, events_table))
    assert "body" not in record
    assert stored_body(record) == BODY.encode()
    assert held.attempt == 2


def test_stored_body_of_a_record_without_one_is_none() -> None:
    assert stored_body({"event_id": EVENT_ID}) is None


# --- one write unit per write ----------------------------------------------------------------------------------
# A topic ARN as CloudFormation names the topics of a stack with a 32-character name (the longest logical id):
# "<stack>-<LogicalId>-<13 random characters>". A longer stack name lengthens the published item by as much.
_STACK_NAME = "stack-webhook-fanout-production"[:32].ljust(32, "x")


@pytest.mark.parametrize("event_type", SAMPLE_TYPES)
def test_every_write_of_a_sample_event_is_one_write_unit(
    store: EventStore, dynamodb: Any, events_table: str, event_type: str
) -> None:
    # given the sample body of the type (user.created with its metadata) and the longest topic ARN of the stack
    body = sample_body(event_type).decode()
    logical_id = max(TOPIC_LOGICAL_IDS.values(), key=len)
    topic_arn = f"arn:aws:sns:ap-southeast-2:123456789012:{_STACK_NAME}-{logical_id}-ABCDEFGHIJKLM"
    held = claim(store, event_id="msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u", body=body)
    assert isinstance(held, Claim)
    claimed = dynamodb_item_size(raw_item(dynamodb, events_table))
    # when it is marked published (SNS message ids are UUIDs)
    assert store.mark_published(held, topic_arn=topic_arn, message_id="0b3f1f2e-5c1a-5d9e-9a55-1c2b3d4e5f60")
    published = dynamodb_item_size(raw_item(dynamodb, events_table))
    # then the claim (billed on the claimed item) and the mark (billed on the larger of before and after) each take
    # one write unit
    assert write_units(claimed) == 1, claimed
    assert write_units(max(claimed, published)) == 1, (claimed, published)
