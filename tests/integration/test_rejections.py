"""Requests that must be refused: nothing stored, nothing published."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.samples import event_body, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from stack_webhook_fanout.topics import SNS_MAX_MESSAGE_BYTES

from .support import created_at_attribute, signed_event_file

if TYPE_CHECKING:
    from .support import Deployment

pytestmark = pytest.mark.integration


def _assert_nothing_stored_or_published(deployment: Deployment) -> None:
    assert deployment.scan() == []
    assert deployment.delivered() == []


def _without(event: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**event, "headers": {k: v for k, v in event["headers"].items() if k not in names}}


def _tampered(event: dict[str, Any]) -> dict[str, Any]:
    body = event_body(event).replace(b"jane@example.com", b"mallory@example.com")
    assert body != event_body(event)
    return {**event, "body": body.decode()}


@pytest.mark.parametrize(
    ("make_event", "reason"),
    [
        pytest.param(
            lambda secret: signed_event_file("user.created", new_secret()), "no_matching_signature", id="wrong-secret"
        ),
        pytest.param(
            lambda secret: signed_event_file("user.created", secret, timestamp=int(time.time()) - 600),
            "timestamp_too_old",
            id="stale-timestamp",
        ),
        pytest.param(
            lambda secret: signed_event_file("user.created", secret, timestamp=int(time.time()) + 600),
            "timestamp_too_new",
            id="future-timestamp",
        ),
        pytest.param(
            lambda secret: _tampered(signed_event_file("user.created", secret)),
            "no_matching_signature",
            id="tampered-body",
        ),
        pytest.param(
            lambda secret: _without(signed_event_file("user.created", secret), "svix-signature"),
            "missing_headers",
            id="no-signature",
        ),
        pytest.param(
            lambda secret: _without(signed_event_file("user.created", secret), "svix-id"),
            "missing_headers",
            id="no-id",
        ),
        pytest.param(
            lambda secret: _without(
                signed_event_file("user.created", secret), "svix-id", "svix-timestamp", "svix-signature"
            ),
            "missing_headers",
            id="no-svix-headers",
        ),
        pytest.param(
            lambda secret: {
                **signed_event_file("user.created", secret),
                "headers": {
                    **signed_event_file("user.created", secret)["headers"],
                    "svix-signature": "v1,not*base64",
                },
            },
            "malformed_signature",
            id="malformed-signature",
        ),
    ],
)
def test_lambda_handler_rejects_an_unverifiable_request_with_401(
    deployment: Deployment, make_event: Any, reason: str
) -> None:
    # given
    event = make_event(deployment.stack.secret_value)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), event)

    # then
    assert status == 401, answer
    assert answer == {"error": "invalid_signature", "reason": reason}
    _assert_nothing_stored_or_published(deployment)


def _signed_event_of_size(secret: str, size: int) -> dict[str, Any]:
    """A valid-looking event padded with an unknown field to exactly ``size`` bytes, correctly signed."""
    base = sample_body("stack.test")
    padding = size - len(base) - len(b',"padding":""')
    assert padding >= 0
    body = base[:-1] + b',"padding":"' + b"x" * padding + b'"}'
    assert len(body) == size
    headers = {"content-type": "application/json", **sign_headers(secret, body)}
    return http_api_event(body, headers)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(SNS_MAX_MESSAGE_BYTES + 1, id="body-over-sns-limit"),
        pytest.param(1_000_000, id="one-megabyte"),
        # The body alone fits, but not with its message attributes.
        pytest.param(SNS_MAX_MESSAGE_BYTES - 20, id="body-plus-attributes-over-limit"),
    ],
)
def test_lambda_handler_rejects_an_oversized_body_with_413(deployment: Deployment, size: int) -> None:
    # given: a correctly signed body too large for one SNS message
    event = _signed_event_of_size(deployment.stack.secret_value, size)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), event)

    # then
    assert status == 413, answer
    assert answer["error"] == "payload_too_large"
    _assert_nothing_stored_or_published(deployment)


def test_lambda_handler_accepts_the_largest_body_that_fits(deployment: Deployment) -> None:
    # given: the largest body whose message (body + attributes) still fits, so the limit above is the real one
    probe = _signed_event_of_size(deployment.stack.secret_value, 1000)
    attributes_bytes = sum(
        len(name) + len("String") + len(value)
        for name, value in {
            "event_type": "stack.test",
            "event_id": probe["headers"]["svix-id"],
            "event_timestamp": probe["headers"]["svix-timestamp"],
        }.items()
    )
    # and the event time the id tells, a Number (13 digits of epoch ms, the same length for every id made now)
    attributes_bytes += sum(
        len(name) + len("Number") + len(value)
        for name, value in created_at_attribute(probe["headers"]["svix-id"]).items()
    )
    event = _signed_event_of_size(deployment.stack.secret_value, SNS_MAX_MESSAGE_BYTES - attributes_bytes)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), event)

    # then
    assert status == 200, answer
    delivered = deployment.delivered()
    assert [name for name, _ in delivered] == ["stack.test"]
    assert delivered[0][1].body.encode() == event_body(event)
