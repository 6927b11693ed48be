"""Signed deliveries through ``lambda_handler``: each lands once, verbatim, on its own topic and nowhere else."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.samples import (
    OTHER_TEAM_ID,
    TEAM_ID,
    UNKNOWN_SAMPLE_TYPE,
    USER_ID,
    event_body,
    resign_event,
)
from stack_webhook_fanout_tools.devkit.signing import sign_headers

from stack_webhook_fanout.event_store import stored_body
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK, created_at_attribute, header, signed_event_file

if TYPE_CHECKING:
    from .support import Deployment

pytestmark = pytest.mark.integration

# The subject attributes each sample must carry (written out, not computed by the code under test).
EXPECTED_SUBJECT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "user.created": {"user_id": USER_ID},
    "user.updated": {"user_id": USER_ID},
    "user.deleted": {"user_id": USER_ID},
    "team.created": {"team_id": TEAM_ID},
    "team.updated": {"team_id": TEAM_ID},
    "team.deleted": {"team_id": OTHER_TEAM_ID},
    "team_membership.created": {"user_id": USER_ID, "team_id": OTHER_TEAM_ID},
    "team_membership.deleted": {"user_id": USER_ID, "team_id": OTHER_TEAM_ID},
    "team_permission.created": {"user_id": USER_ID, "team_id": OTHER_TEAM_ID},
    "team_permission.deleted": {"user_id": USER_ID, "team_id": OTHER_TEAM_ID},
    "project_permission.created": {"user_id": USER_ID},
    "project_permission.deleted": {"user_id": USER_ID},
    "stack.test": {},
    "issue.created": {},
    "issue.regressed": {},
    "issue.resolved": {},
    "issue.ignored": {},
    "issue.merged": {},
}


def test_expected_subjects_cover_every_known_type() -> None:
    assert set(EXPECTED_SUBJECT_ATTRIBUTES) == set(KNOWN_EVENT_TYPES)


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_lambda_handler_publishes_each_type_once_to_its_topic(deployment: Deployment, event_type: str) -> None:
    # given: the committed sample event of this type, re-signed now with the stack's secret
    event = signed_event_file(event_type, deployment.stack.secret_value)
    body = event_body(event)
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()

    # when
    status, answer = deployment.invoke(handler, event)

    # then: 200 with the event id
    assert status == 200, answer
    assert answer["status"] == "published"
    assert answer["event_id"] == event_id
    # and exactly one message, on this type's queue only, byte for byte the body, with the filterable attributes
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == [event_type]
    message = delivered[0][1]
    assert message.body.encode() == body
    assert dict(message.attributes) == {
        "event_type": event_type,
        "event_id": event_id,
        "event_timestamp": header(event, "svix-timestamp"),
        **EXPECTED_SUBJECT_ATTRIBUTES[event_type],
        **created_at_attribute(event_id),
    }
    # and the record says published, with the body, its hash and where it went
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "published"
    assert record["event_type"] == event_type
    assert stored_body(record) == body
    assert record["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert record["topic_arn"] == deployment.stack.topic_arns[event_type]
    assert record["message_id"] == answer["message_id"]
    assert record["attempts"] == 1
    assert record["event_created_at"] == int(created_at_attribute(event_id)["event_created_at"])
    assert "claim_token" not in record
    assert record["expires_at"] > time.time() + 29 * 86_400
    assert len(deployment.scan()) == 1


def test_lambda_handler_acknowledges_a_redelivery_without_publishing_again(deployment: Deployment) -> None:
    # given: a delivery that was published
    secret = deployment.stack.secret_value
    first = signed_event_file("user.created", secret)
    handler = deployment.load_handler()
    assert deployment.invoke(handler, first)[0] == 200

    # when: Svix redelivers the same message (same svix-id), once verbatim and once signed at a later time,
    # to this execution environment and to another one
    later = resign_event(first, secret, keep_id=True, timestamp=int(time.time()) + 2)
    answers = [
        deployment.invoke(handler, first),
        deployment.invoke(handler, later),
        deployment.invoke(deployment.load_handler(), later),
    ]

    # then: each is a 200 duplicate, and there is still exactly one message
    for status, answer in answers:
        assert status == 200
        assert answer == {"status": "duplicate", "event_id": header(first, "svix-id")}
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == ["user.created"]
    record = deployment.record(header(first, "svix-id"))
    assert record is not None
    assert record["attempts"] == 1


def test_lambda_handler_routes_an_unknown_type_to_the_fallback_topic(deployment: Deployment) -> None:
    # given: a type Stack may add later
    event = signed_event_file(UNKNOWN_SAMPLE_TYPE, deployment.stack.secret_value)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), event)

    # then: accepted, published verbatim to the fallback topic only, with no invalid_reason
    assert status == 200, answer
    assert answer["status"] == "published"
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == [FALLBACK]
    message = delivered[0][1]
    assert message.body.encode() == event_body(event)
    assert dict(message.attributes) == {
        "event_type": UNKNOWN_SAMPLE_TYPE,
        "event_id": header(event, "svix-id"),
        "event_timestamp": header(event, "svix-timestamp"),
        **created_at_attribute(header(event, "svix-id")),
    }
    record = deployment.record(header(event, "svix-id"))
    assert record is not None
    assert record["status"] == "published"
    assert record["event_type"] == UNKNOWN_SAMPLE_TYPE
    assert record["topic_arn"] == deployment.stack.fallback_topic_arn


@pytest.mark.parametrize(
    ("body", "event_type", "invalid_reason", "subject"),
    [
        pytest.param(b"this is not JSON", "unreadable", "not_json", {}, id="not-json"),
        pytest.param(b'["user.created"]', "unreadable", "not_an_object", {}, id="not-an-object"),
        pytest.param(b'{"data":{"id":"x"}}', "unreadable", "missing_type", {}, id="missing-type"),
        pytest.param(b'{"type":"user created","data":{}}', "unreadable", "invalid_type", {}, id="invalid-type"),
    ],
)
def test_lambda_handler_routes_a_verified_invalid_body_to_the_fallback_topic(
    deployment: Deployment, body: bytes, event_type: str, invalid_reason: str, subject: dict[str, str]
) -> None:
    # given: a correctly signed body that is not a valid event
    headers = {"content-type": "application/json", **sign_headers(deployment.stack.secret_value, body)}
    event = http_api_event(body, headers)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), event)

    # then: never dropped: published verbatim to the fallback topic, saying why it is invalid
    assert status == 200, answer
    assert answer["status"] == "published"
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == [FALLBACK]
    message = delivered[0][1]
    assert message.body.encode() == body
    assert dict(message.attributes) == {
        "event_type": event_type,
        "event_id": headers["svix-id"],
        "event_timestamp": headers["svix-timestamp"],
        "invalid_reason": invalid_reason,
        **subject,
        **created_at_attribute(headers["svix-id"]),
    }
    record = deployment.record(headers["svix-id"])
    assert record is not None
    assert record["status"] == "published"
    assert stored_body(record) == body


@pytest.mark.parametrize(
    ("body", "event_type", "subject"),
    [
        pytest.param(
            b'{"type":"user.created","data":{"id":"' + USER_ID.encode() + b'","signed_up_at_millis":"soon"}}',
            "user.created",
            {"user_id": USER_ID},
            id="user-data-the-models-reject",
        ),
        pytest.param(
            b'{"type":"team_membership.created","data":{"team_id":"' + TEAM_ID.encode() + b'"}}',
            "team_membership.created",
            {"team_id": TEAM_ID},
            id="membership-without-user",
        ),
    ],
)
def test_lambda_handler_routes_a_known_type_on_its_verified_type_whatever_its_data(
    deployment: Deployment, body: bytes, event_type: str, subject: dict[str, str]
) -> None:
    # given: a correctly signed body of a known type whose data the typed models reject
    headers = {"content-type": "application/json", **sign_headers(deployment.stack.secret_value, body)}

    # when
    status, answer = deployment.invoke(deployment.load_handler(), http_api_event(body, headers))

    # then: the signature proves Stack sent it: published verbatim to its type's topic, no invalid_reason
    assert status == 200, answer
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == [event_type]
    message = delivered[0][1]
    assert message.body.encode() == body
    assert dict(message.attributes) == {
        "event_type": event_type,
        "event_id": headers["svix-id"],
        "event_timestamp": headers["svix-timestamp"],
        **subject,
        **created_at_attribute(headers["svix-id"]),
    }


def test_lambda_handler_decodes_a_base64_body_before_verifying(deployment: Deployment) -> None:
    # given: API Gateway passed the body base64-encoded (a content type it does not treat as text)
    event = signed_event_file("team.created", deployment.stack.secret_value)
    body = event_body(event)
    headers = {**event["headers"], "content-type": "application/octet-stream"}
    encoded = http_api_event(body, headers)
    assert encoded["isBase64Encoded"] is True

    # when
    status, answer = deployment.invoke(deployment.load_handler(), encoded)

    # then
    assert status == 200, answer
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == ["team.created"]
    assert delivered[0][1].body.encode() == body
