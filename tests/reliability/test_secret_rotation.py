"""The webhook secret: a rotation without downtime, and a bounded number of Secrets Manager reads under a flood."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.signing import new_secret

from .support import CallCounter, client_events, header, invoke, outcome, wait_past

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from .support import Deployment

pytestmark = pytest.mark.integration

FLOOD = 500
COUNTER = "reliability-secret-reads"
#: Cache times short enough to wait out.
FAST_CACHE = {"SECRET_MAX_AGE_SECONDS": "1", "SECRET_REFRESH_INTERVAL_SECONDS": "1"}


def _count_reads(handler: ModuleType) -> CallCounter:
    counter = CallCounter()
    client_events(handler, "secretsmanager").register("before-call.secrets-manager.GetSecretValue", counter, COUNTER)
    return counter


def _status(handler: ModuleType, deployment: Deployment, event_type: str, secret: str | list[str]) -> int:
    return invoke(handler, deployment.signed(event_type, secret=secret))[0]


def test_rotation_both_secrets_verify_during_it_and_only_the_new_one_after(deploy: Callable[..., Deployment]) -> None:
    # given: a stack whose endpoint secret is the old one, and a warm environment
    old, new = new_secret(), new_secret()
    deployment = deploy(secret_value=old, **FAST_CACHE)
    handler = deployment.load_handler()
    assert _status(handler, deployment, "team.created", old) == 200
    assert _status(handler, deployment, "team.created", new) == 401

    # when: the operator starts the rotation (both values, space-separated) and Svix signs with the new secret,
    # the old one, or both (one v1 entry each)
    deployment.put_secret(f"{old} {new}")
    wait_past(time.time() + 1.05)  # the cached value's max age
    during = {
        "new": _status(handler, deployment, "team.updated", new),
        "old": _status(handler, deployment, "team.updated", old),
        "both": _status(handler, deployment, "team.updated", [old, new]),
    }

    # then: every one of them verifies
    assert during == {"new": 200, "old": 200, "both": 200}

    # when: the rotation ends (only the new value left): at once, then once the cached value is past its max age
    deployment.put_secret(new)
    ended_at = time.time()
    old_at_once = _status(handler, deployment, "team.deleted", old)
    assert time.time() < ended_at + 1, "the machine took longer than the cache's max age to send one request"
    wait_past(ended_at + 1.05)
    after = {
        "old": _status(handler, deployment, "team.deleted", old),
        "new": _status(handler, deployment, "team.deleted", new),
    }

    # then: the cached pair verifies the old secret for at most SECRET_MAX_AGE_SECONDS, then only the new one does
    assert old_at_once == 200
    assert after == {"old": 401, "new": 200}
    # and each accepted event was published once
    assert deployment.published_types() == {"team.created": 1, "team.updated": 3, "team.deleted": 2}


def _flood(handler: ModuleType, deployment: Deployment, make: Callable[[int], dict[str, object]]) -> Counter[int]:
    return Counter(invoke(handler, make(i))[0] for i in range(FLOOD))


def _forged(deployment: Deployment, i: int) -> dict[str, object]:
    """A forged request: another secret, or a malformed entry (both are reasons to suspect a rotated secret)."""
    event = deployment.signed("user.created", secret=new_secret())
    if i % 2:
        event["headers"]["svix-signature"] = "v1,abc"
    return event


def test_flood_of_bad_signatures_reads_the_secret_at_most_twice(deployment: Deployment) -> None:
    # given: a new environment whose secret reads are counted, with the default refresh interval (10 s)
    handler = deployment.load_handler(SECRET_REFRESH_INTERVAL_SECONDS="10")
    reads = _count_reads(handler)

    # when: 500 forged requests
    started = time.monotonic()
    statuses = _flood(handler, deployment, lambda i: _forged(deployment, i))
    elapsed = time.monotonic() - started

    # then: all refused, nothing stored, and Secrets Manager read once (twice if the flood outlasted the interval)
    assert statuses == {401: FLOOD}
    assert deployment.scan() == []
    assert 1 <= reads.calls <= 2
    if elapsed < 10:
        assert reads.calls == 1

    # and a real delivery right after is accepted from the cache
    event = deployment.signed("user.created")
    assert outcome(invoke(handler, event)[1]) == "published"
    assert reads.calls <= 2
    assert deployment.record(header(event, "svix-id")) is not None


def test_flood_of_stale_requests_never_refreshes_the_secret(deployment: Deployment) -> None:
    # given: requests whose signature is right but whose timestamp is an hour old (no reason to suspect the secret)
    handler = deployment.load_handler(SECRET_REFRESH_INTERVAL_SECONDS="1")
    reads = _count_reads(handler)
    stale = int(time.time()) - 3600

    # when
    statuses = _flood(handler, deployment, lambda i: deployment.signed("user.created", timestamp=stale))

    # then: refused, and the secret read only for the first request
    assert statuses == {401: FLOOD}
    assert reads.calls == 1
    assert deployment.scan() == []


def test_flood_before_the_secret_is_set_reads_it_at_most_twice(deploy: Callable[..., Deployment]) -> None:
    # given: a fresh deploy whose secret still holds a placeholder (not a whsec_ value)
    deployment = deploy(secret_value="REPLACE_ME")
    handler = deployment.load_handler(SECRET_REFRESH_INTERVAL_SECONDS="10")
    reads = _count_reads(handler)

    # when: 500 requests arrive (forged or real, the function cannot tell yet)
    started = time.monotonic()
    statuses = _flood(handler, deployment, lambda i: _forged(deployment, i))
    elapsed = time.monotonic() - started

    # then: retryable 503s, and the failed read is remembered instead of repeated per request
    assert statuses == {503: FLOOD}
    assert 1 <= reads.calls <= 2
    if elapsed < 10:
        assert reads.calls == 1
    assert deployment.scan() == []
