"""No message carries more than 10 attributes: SNS discards a raw-delivered message with more for an SQS subscriber.

Counted over every sample type (the devkit's samples and the committed ``events/*.json``), unknown types and bodies
that are not events, in the case with the most attributes: an event time and ``replay=true`` both set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_message_id

from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.event_time import decode_ksuid_ms
from stack_webhook_fanout.topics import MAX_MESSAGE_ATTRIBUTES, message_attributes

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
EVENT_FILES = sorted(p for p in EVENTS_DIR.glob("*.json") if p.name != "env.json")
USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"
OTHER_BODIES = {
    "unknown-type-with-ids": json.dumps({"type": "org.created", "data": {"user_id": USER, "team_id": TEAM}}),
    "unknown-type": '{"type":"session.created","data":{}}',
    "empty": "",
    "not-json": "this is not JSON",
    "not-an-object": '["user.created"]',
    "missing-type": '{"data":{"user_id":"' + USER + '","team_id":"' + TEAM + '"}}',
    "invalid-type": '{"type":"user created","data":{"id":"' + USER + '"}}',
    "membership-with-extra-ids": json.dumps(
        {"type": "team_membership.created", "data": {"team_id": TEAM, "user_id": USER, "id": "x", "project_id": "p"}}
    ),
}


def most_attributes(body: str) -> int:
    """The attributes of ``body``'s message with an event time and marked as a replay: the most it can carry."""
    event_id = new_message_id()
    attributes = message_attributes(
        parse_event(body), event_id, "1796600000", event_created_at=decode_ksuid_ms(event_id), replay=True
    )
    assert "event_created_at" in attributes
    assert attributes["replay"]["StringValue"] == "true"
    return len(attributes)


def test_the_limit_is_snss_for_raw_delivery_to_sqs() -> None:
    assert MAX_MESSAGE_ATTRIBUTES == 10


@pytest.mark.parametrize("event_type", SAMPLE_TYPES)
def test_every_sample_type_stays_within_the_limit(event_type: str) -> None:
    assert most_attributes(sample_body(event_type).decode()) <= MAX_MESSAGE_ATTRIBUTES


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.stem for p in EVENT_FILES])
def test_every_event_file_stays_within_the_limit(path: Path) -> None:
    assert most_attributes(json.loads(path.read_text(encoding="utf-8"))["body"]) <= MAX_MESSAGE_ATTRIBUTES


@pytest.mark.parametrize("body", OTHER_BODIES.values(), ids=OTHER_BODIES)
def test_unknown_types_and_unusable_bodies_stay_within_the_limit(body: str) -> None:
    assert most_attributes(body) <= MAX_MESSAGE_ATTRIBUTES


def test_the_count_is_exact_where_it_is_largest() -> None:
    # a membership names a user and a team: event_type, event_id, event_timestamp, user_id, team_id, event_created_at
    # and replay, seven, the most any message carries today
    assert most_attributes(sample_body("team_membership.created").decode()) == 7
    assert max(most_attributes(sample_body(t).decode()) for t in SAMPLE_TYPES) == 7
    assert len(EVENT_FILES) == len(SAMPLE_TYPES)
