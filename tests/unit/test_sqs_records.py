"""``sqs_records.stack_message``: an SQS record of a Lambda event, from raw delivery or from the SNS envelope,
becomes a typed Stack event with the attributes the ingest function set; anything else is an error that is safe to
log. (The same helper is exercised on the emulator, with messages the ingest function published, in
``tests/ops/test_subscriber_idempotency.py``.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from stack_webhook_fanout_tools.devkit.samples import USER_ID, sample_body

from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.events import TeamMembershipCreatedEvent, UserCreatedEvent
from stack_webhook_fanout.sqs_records import InvalidStackMessageError, StackMessage, stack_message
from stack_webhook_fanout.topics import message_attributes

EVENT_ID = "msg_2a8ZbQ1yYbW0m7jJ0lU1d3Xz9Kp"
PERSONAL = ("jane@example.com", "Jane Doe")


def published_attributes(body: bytes, *, replay: bool = False) -> dict[str, Any]:
    """The SNS message attributes the ingest function sets for this body."""
    return message_attributes(parse_event(body.decode()), EVENT_ID, "1764500000", replay=replay)


def raw_record(body: bytes, *, replay: bool = False, message_id: str = "m-1") -> dict[str, Any]:
    """A Lambda SQS record of a raw-delivered message: SNS attributes become SQS message attributes."""
    return {
        "messageId": message_id,
        "body": body.decode(),
        "messageAttributes": {
            name: {"stringValue": v["StringValue"], "dataType": "String"}
            for name, v in published_attributes(body, replay=replay).items()
        },
        "eventSource": "aws:sqs",
    }


def envelope_record(body: bytes, *, replay: bool = False) -> dict[str, Any]:
    """A Lambda SQS record of a message delivered in SNS's JSON envelope (raw delivery off)."""
    envelope = {
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:stack-webhook-fanout-user-created",
        "Message": body.decode(),
        "MessageAttributes": {
            name: {"Type": "String", "Value": v["StringValue"]}
            for name, v in published_attributes(body, replay=replay).items()
        },
    }
    return {"messageId": "m-2", "body": json.dumps(envelope), "messageAttributes": {}, "eventSource": "aws:sqs"}


@pytest.mark.parametrize("make_record", [raw_record, envelope_record], ids=["raw", "envelope"])
def test_stack_message_types_the_event_and_reads_the_attributes(make_record: Any) -> None:
    # given
    record = make_record(sample_body("user.created"))

    # when
    message = stack_message(record)

    # then
    assert isinstance(message, StackMessage)
    assert isinstance(message.event, UserCreatedEvent)
    assert message.event.data.id == USER_ID
    assert (message.event_id, message.event_type, message.event_timestamp) == (EVENT_ID, "user.created", 1764500000)
    assert (message.user_id, message.team_id, message.replay) == (USER_ID, None, False)
    assert message.message_id == record["messageId"]


@pytest.mark.parametrize("make_record", [raw_record, envelope_record], ids=["raw", "envelope"])
def test_stack_message_sees_the_replay_flag(make_record: Any) -> None:
    message = stack_message(make_record(sample_body("team_membership.created"), replay=True))
    assert isinstance(message.event, TeamMembershipCreatedEvent)
    assert message.replay is True
    assert message.team_id == message.event.data.team_id


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"user.created","data":{"id":"u_1","primary_email":"jane@example.com","display_name":"Jane Doe"}}',
        b'{"type":"session.created","data":{"id":"i_1"}}',
        b"not json at all, Jane Doe",
    ],
    ids=["invalid data", "unknown type", "not json"],
)
def test_stack_message_refuses_what_it_cannot_type_with_an_error_safe_to_log(body: bytes) -> None:
    # given: a record whose body is not a valid known event (its attributes as our function would set them)
    record = raw_record(body)

    # when
    with pytest.raises(InvalidStackMessageError) as caught:
        stack_message(record)

    # then: ids and types to log, never the body
    fields = caught.value.log_fields()
    assert fields["message_id"] == "m-1"
    assert fields["event_id"] == EVENT_ID
    assert fields["reason"] == "not a valid event of a known type"
    assert fields["errors"]
    text = json.dumps(fields) + str(caught.value)
    assert not any(secret in text for secret in PERSONAL)


def test_stack_message_refuses_a_record_without_event_id() -> None:
    # given: a valid body that did not come through our function (no attributes, no envelope)
    record = {"messageId": "m-9", "body": sample_body("user.created").decode(), "messageAttributes": {}}

    # when / then
    with pytest.raises(InvalidStackMessageError, match="no event_id attribute"):
        stack_message(record)


def test_stack_message_ignores_a_stack_body_that_merely_looks_like_an_envelope() -> None:
    # given: raw delivery whose body has "Type" but is no SNS notification
    body = b'{"Type":"Notification","Message":"{}"}'
    record = raw_record(sample_body("user.created"))
    record["body"] = body.decode()

    # when / then: it is read as the (invalid) event it is, not unwrapped
    with pytest.raises(InvalidStackMessageError) as caught:
        stack_message(record)
    assert caught.value.event_id == EVENT_ID
