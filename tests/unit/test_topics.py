"""``topics.py``: routing to the type's topic or the fallback, message attributes, and the size SNS counts."""

from __future__ import annotations

import pytest

from stack_webhook_fanout.event_parser import ParsedEvent, parse_event
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.topics import (
    UNREADABLE_TYPE,
    TopicRouter,
    message_attributes,
    message_size,
)

TOPICS = {t: f"arn:aws:sns:us-east-1:123456789012:topic-{i}" for i, t in enumerate(KNOWN_EVENT_TYPES)}
FALLBACK = "arn:aws:sns:us-east-1:123456789012:fallback"
USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"
EVENT_ID = "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u"
TIMESTAMP = "1800000000"


@pytest.fixture
def router() -> TopicRouter:
    return TopicRouter(TOPICS, FALLBACK)


# --- routing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_router_known_valid_event_goes_to_its_topic(
    router: TopicRouter, example_bodies: dict[str, str], event_type: str
) -> None:
    assert router.topic_for(parse_event(example_bodies[event_type])) == TOPICS[event_type]


def test_router_every_known_type_has_its_own_topic(router: TopicRouter, example_bodies: dict[str, str]) -> None:
    routed = {router.topic_for(parse_event(example_bodies[t])) for t in KNOWN_EVENT_TYPES}
    assert len(routed) == len(KNOWN_EVENT_TYPES)
    assert FALLBACK not in routed


@pytest.mark.parametrize(
    "body",
    [
        '{"type":"session.created","data":{}}',  # unknown type
        '{"type":"user created","data":{}}',  # unsafe type
        '{"data":{}}',  # no type
        "[]",  # not an object
        "not json",
    ],
)
def test_router_anything_else_goes_to_the_fallback(router: TopicRouter, body: str) -> None:
    assert router.topic_for(parse_event(body)) == FALLBACK


@pytest.mark.parametrize(
    ("body", "event_type"),
    [
        ('{"type":"user.created","data":{"id":"x"}}', "user.created"),  # a shape the models reject
        ('{"type":"user.updated","data":{"id":"x","country_code":7,"risk_scores":"high"}}', "user.updated"),
        ('{"type":"team.deleted"}', "team.deleted"),  # no data
        ('{"type":"team_membership.created","data":[1,2]}', "team_membership.created"),
        ('{"type":"stack.test","data":null}', "stack.test"),
    ],
)
def test_router_known_type_goes_to_its_topic_whatever_its_data(router: TopicRouter, body: str, event_type: str) -> None:
    assert router.topic_for(parse_event(body)) == TOPICS[event_type]


def test_router_known_type_without_a_topic_goes_to_the_fallback() -> None:
    router = TopicRouter({"user.created": "arn:user-created"}, FALLBACK)
    assert router.topic_for(ParsedEvent(event_type="team.deleted", known=True)) == FALLBACK
    assert router.topic_for(ParsedEvent(event_type="user.created", known=True)) == "arn:user-created"


def test_router_copies_its_map() -> None:
    topics = dict(TOPICS)
    router = TopicRouter(topics, FALLBACK)
    topics["stack.test"] = "arn:changed"
    assert router.topic_for(ParsedEvent(event_type="stack.test", known=True)) == TOPICS["stack.test"]
    assert router.topic_for(ParsedEvent(event_type="not.a.type", known=False)) == FALLBACK


# --- message attributes ---------------------------------------------------------------------------------------------


def values(attributes: dict[str, dict[str, str]]) -> dict[str, str]:
    assert all(a["DataType"] == "String" for a in attributes.values())
    return {name: a["StringValue"] for name, a in attributes.items()}


def test_attributes_always_carry_type_id_and_timestamp() -> None:
    event = parse_event('{"type":"stack.test","data":{"message":"hi"}}')
    assert values(message_attributes(event, EVENT_ID, TIMESTAMP)) == {
        "event_type": "stack.test",
        "event_id": EVENT_ID,
        "event_timestamp": TIMESTAMP,
    }


def test_attributes_of_a_user_event_carry_the_user_id() -> None:
    event = parse_event('{"type":"user.deleted","data":{"id":"' + USER + '","teams":[{"id":"' + TEAM + '"}]}}')
    assert values(message_attributes(event, EVENT_ID, TIMESTAMP)) == {
        "event_type": "user.deleted",
        "event_id": EVENT_ID,
        "event_timestamp": TIMESTAMP,
        "user_id": USER,
    }


def test_attributes_of_a_membership_carry_both_ids() -> None:
    event = parse_event('{"type":"team_membership.created","data":{"team_id":"' + TEAM + '","user_id":"' + USER + '"}}')
    attributes = values(message_attributes(event, EVENT_ID, TIMESTAMP))
    assert (attributes["user_id"], attributes["team_id"]) == (USER, TEAM)
    assert "invalid_reason" not in attributes
    assert "replay" not in attributes


def test_attributes_of_a_team_event_carry_the_team_id() -> None:
    event = parse_event('{"type":"team.deleted","data":{"id":"' + TEAM + '"}}')
    attributes = values(message_attributes(event, EVENT_ID, TIMESTAMP))
    assert attributes["team_id"] == TEAM
    assert "user_id" not in attributes


@pytest.mark.parametrize(
    ("body", "event_type", "reason"),
    [
        ("not json", UNREADABLE_TYPE, "not_json"),
        ("[1]", UNREADABLE_TYPE, "not_an_object"),
        ('{"data":{}}', UNREADABLE_TYPE, "missing_type"),
        ('{"type":"a b","data":{}}', UNREADABLE_TYPE, "invalid_type"),
    ],
)
def test_attributes_of_an_invalid_body_say_why(body: str, event_type: str, reason: str) -> None:
    attributes = values(message_attributes(parse_event(body), EVENT_ID, TIMESTAMP))
    assert attributes["event_type"] == event_type
    assert attributes["invalid_reason"] == reason
    assert attributes["event_id"] == EVENT_ID


def test_attributes_of_a_known_type_with_data_the_models_reject_carry_no_invalid_reason() -> None:
    attributes = values(
        message_attributes(parse_event('{"type":"user.created","data":{"id":"' + USER + '"}}'), EVENT_ID, TIMESTAMP)
    )
    assert attributes == {
        "event_type": "user.created",
        "event_id": EVENT_ID,
        "event_timestamp": TIMESTAMP,
        "user_id": USER,
    }


def test_attributes_of_an_unknown_type_have_no_invalid_reason() -> None:
    attributes = values(message_attributes(parse_event('{"type":"session.created","data":{}}'), EVENT_ID, TIMESTAMP))
    assert attributes == {"event_type": "session.created", "event_id": EVENT_ID, "event_timestamp": TIMESTAMP}


def test_attributes_of_a_replay_are_marked() -> None:
    event = parse_event('{"type":"stack.test","data":{"message":"hi"}}')
    assert values(message_attributes(event, EVENT_ID, TIMESTAMP, replay=True))["replay"] == "true"


def test_event_created_at_is_a_number_attribute_in_epoch_milliseconds() -> None:
    event = parse_event('{"type":"stack.test","data":{"message":"hi"}}')
    attributes = message_attributes(event, EVENT_ID, TIMESTAMP, event_created_at=1_796_600_000_123)
    assert attributes["event_created_at"] == {"DataType": "Number", "StringValue": "1796600000123"}
    # the other attributes stay text
    assert {a["DataType"] for name, a in attributes.items() if name != "event_created_at"} == {"String"}


def test_event_created_at_is_absent_without_a_time() -> None:
    event = parse_event('{"type":"stack.test","data":{"message":"hi"}}')
    assert "event_created_at" not in message_attributes(event, EVENT_ID, TIMESTAMP)
    assert "event_created_at" not in message_attributes(event, EVENT_ID, TIMESTAMP, event_created_at=None)


def test_event_created_at_counts_towards_the_message_size() -> None:
    event = parse_event('{"type":"stack.test","data":{"message":"hi"}}')
    without = message_size(b"{}", message_attributes(event, EVENT_ID, TIMESTAMP))
    with_time = message_size(b"{}", message_attributes(event, EVENT_ID, TIMESTAMP, event_created_at=1_796_600_000_123))
    assert with_time - without == len("event_created_at") + len("Number") + len("1796600000123")


# --- message size ---------------------------------------------------------------------------------------------------


def test_message_size_counts_body_names_types_and_values() -> None:
    body = '{"type":"team_membership.created","data":{"team_id":"' + TEAM + '","user_id":"' + USER + '"}}'
    attributes = message_attributes(parse_event(body), EVENT_ID, TIMESTAMP)
    # body + for each attribute: its name, "String" and its value
    expected = (
        len(body)
        + len("event_type") + len("String") + len("team_membership.created")
        + len("event_id") + len("String") + len(EVENT_ID)
        + len("event_timestamp") + len("String") + len(TIMESTAMP)
        + len("user_id") + len("String") + len(USER)
        + len("team_id") + len("String") + len(TEAM)
    )  # fmt: skip
    assert message_size(body.encode(), attributes) == expected


def test_message_size_counts_bytes_not_characters() -> None:
    body = '{"type":"stack.test","data":{"message":"東京 🚀"}}'.encode()
    attributes = message_attributes(parse_event(body), EVENT_ID, TIMESTAMP)
    attributes_size = sum(len(n) + len("String") + len(a["StringValue"]) for n, a in attributes.items())
    assert message_size(body, attributes) == len(body) + attributes_size
    assert len(body) > len(body.decode())


def test_message_size_of_no_attributes_is_the_body() -> None:
    assert message_size(b"x" * 1000, {}) == 1000
