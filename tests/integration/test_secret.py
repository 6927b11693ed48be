"""The webhook secret in Secrets Manager: not configured yet, set later, rotated."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.signing import new_secret

from stack_webhook_fanout.observability import logger

from .support import TEMPLATE_PATH, header, signed_event_file, wait_past

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .support import Deployment

pytestmark = pytest.mark.integration

# Short cache times so that a test can wait them out.
FAST_SECRET_CACHE = {"SECRET_MAX_AGE_SECONDS": "1", "SECRET_REFRESH_INTERVAL_SECONDS": "1"}


class _LogLines(logging.Handler):
    """Collects the function's log lines exactly as its JSON formatter writes them to stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def log_lines() -> Iterator[_LogLines]:
    collector = _LogLines()
    logging.getLogger(logger.name).addHandler(collector)
    try:
        yield collector
    finally:
        logging.getLogger(logger.name).removeHandler(collector)


def _template_placeholder() -> str:
    """The SecretString the template creates the secret with, before the operator sets the real one."""
    template = cfn_template.load_template(TEMPLATE_PATH)
    value = cfn_template.properties(template, "WebhookSecret", "AWS::SecretsManager::Secret")["SecretString"]
    assert isinstance(value, str)
    return value


def test_placeholder_secret_answers_503_with_how_to_set_it_then_works_once_set(
    deploy: Callable[..., Deployment], log_lines: _LogLines
) -> None:
    # given: the stack as deployed, its secret still holding the template's placeholder
    deployment = deploy(secret_value=_template_placeholder(), **FAST_SECRET_CACHE)
    real_secret = new_secret()
    event = signed_event_file("user.created", real_secret)
    handler = deployment.load_handler()

    # when: Stack delivers, signed with the endpoint's real secret
    status, answer = deployment.invoke(handler, event)

    # then: retryable 503, nothing stored or published, and a log line telling the operator what to do
    assert status == 503, answer
    assert answer == {"error": "secret_not_configured"}
    assert deployment.scan() == []
    assert deployment.delivered() == []
    errors = [line for line in log_lines.documents() if line.get("level") == "ERROR"]
    assert len(errors) == 1, errors
    assert "whsec_" in errors[0]["detail"]
    assert "aws secretsmanager put-secret-value" in errors[0]["detail"]

    # when: the operator puts the real value, and Svix retries after the cache's age
    fetched_before = time.time()
    deployment.put_secret(real_secret)
    wait_past(fetched_before + 1)
    retry = signed_event_file("user.created", real_secret)
    status, answer = deployment.invoke(handler, retry)

    # then: the same execution environment accepts it
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["user.created"]
    # and no log line of the whole run holds the secret or the payload's personal data
    logs = log_lines.text()
    assert header(retry, "svix-id") in logs  # the capture does hold the run's log lines
    assert real_secret not in logs
    assert real_secret.removeprefix("whsec_") not in logs
    assert "jane@example.com" not in logs
    assert "Jane Doe" not in logs


def test_missing_secret_answers_503(deploy: Callable[..., Deployment]) -> None:
    # given: the function points at a secret that does not exist (a wrong ExistingWebhookSecretArn)
    deployment = deploy()
    handler = deployment.load_handler(WEBHOOK_SECRET_ARN=f"{deployment.stack.name_prefix}/no-such-secret")

    # when
    status, answer = deployment.invoke(handler, signed_event_file("stack.test", deployment.stack.secret_value))

    # then
    assert status == 503, answer
    assert answer == {"error": "secret_not_configured"}
    assert deployment.scan() == []
    assert deployment.delivered() == []


def test_rotation_both_secrets_verify_then_only_the_new_one(deploy: Callable[..., Deployment]) -> None:
    # given: a rotation in progress: the SecretString holds the old and the new value
    old, new = new_secret(), new_secret()
    deployment = deploy(secret_value=f"{old} {new}", **FAST_SECRET_CACHE)
    handler = deployment.load_handler()

    # when: deliveries signed with either secret arrive
    old_signed = signed_event_file("team.created", old)
    new_signed = signed_event_file("team.updated", new)
    answers = [deployment.invoke(handler, old_signed), deployment.invoke(handler, new_signed)]

    # then: both are accepted and published
    assert [(s, a["status"]) for s, a in answers] == [(200, "published"), (200, "published")]
    assert sorted(name for name, _ in deployment.delivered()) == ["team.created", "team.updated"]

    # when: the rotation ends (only the new value left) and the cached secret has aged out
    rotated_at = time.time()
    deployment.put_secret(new)
    wait_past(rotated_at + 1)
    late_old = signed_event_file("team.deleted", old)
    status_old, answer_old = deployment.invoke(handler, late_old)
    status_new, answer_new = deployment.invoke(handler, signed_event_file("team.deleted", new))

    # then: the old secret is refused, nothing of it stored or published; the new one still works
    assert status_old == 401, answer_old
    assert answer_old["reason"] == "no_matching_signature"
    assert deployment.record(header(late_old, "svix-id")) is None
    assert status_new == 200, answer_new
    assert [name for name, _ in deployment.delivered()] == ["team.deleted"]


def test_rotation_is_picked_up_after_a_failed_verification(deploy: Callable[..., Deployment]) -> None:
    # given: an execution environment that cached the old secret (for the default 300 s)
    old, new = new_secret(), new_secret()
    deployment = deploy(secret_value=old, SECRET_REFRESH_INTERVAL_SECONDS="1")
    handler = deployment.load_handler()
    assert deployment.invoke(handler, signed_event_file("stack.test", old))[0] == 200
    cached_at = time.time()

    # when: the secret is replaced and a delivery signed with the new one arrives after the refresh interval
    deployment.put_secret(new)
    wait_past(cached_at + 1)
    status, answer = deployment.invoke(handler, signed_event_file("stack.test", new))

    # then: the failed verification refetched the secret and the delivery is accepted without waiting 300 s
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["stack.test", "stack.test"]


# --- revocation: what the sender sees once the secret is revoked --------------------------------------------------


def _revoke_by_value(deployment: Deployment) -> None:
    deployment.put_secret("REVOKED")


def _revoke_by_deletion(deployment: Deployment) -> None:
    deployment.stack.client("secretsmanager").delete_secret(
        SecretId=deployment.stack.secret_arn, ForceDeleteWithoutRecovery=True
    )


@pytest.mark.parametrize("revoke", [_revoke_by_value, _revoke_by_deletion], ids=["value-REVOKED", "deleted"])
def test_revoked_secret_stops_verifying_within_its_max_age(
    deploy: Callable[..., Deployment], log_lines: _LogLines, revoke: Callable[[Deployment], None]
) -> None:
    # given: a warm environment that verified and published with the secret, cached for at most 1 s
    deployment = deploy(**FAST_SECRET_CACHE)
    secret = deployment.stack.secret_value
    handler = deployment.load_handler()
    assert deployment.invoke(handler, signed_event_file("user.created", secret))[0] == 200
    read_at = time.time()

    # when: the operator revokes the secret (put-secret-value REVOKED, or deletes it), and deliveries signed with
    # the old secret keep arriving past the cached secret's max age
    revoke(deployment)
    wait_past(read_at + 1)
    late = signed_event_file("user.updated", secret)
    status, answer = deployment.invoke(handler, late)
    again_status, again_answer = deployment.invoke(handler, signed_event_file("team.created", secret))

    # then: retryable 503 secret_not_configured, nothing of them stored or published
    assert (status, answer) == (503, {"error": "secret_not_configured"})
    assert (again_status, again_answer) == (503, {"error": "secret_not_configured"})
    assert deployment.record(header(late, "svix-id")) is None
    assert [name for name, _ in deployment.delivered()] == ["user.created"]
    # and the log line says how to fix it, without the secret's value
    errors = [line for line in log_lines.documents() if line.get("outcome") == "unavailable"]
    assert errors
    assert all("put-secret-value" in line["detail"] for line in errors)
    assert secret not in log_lines.text()
    assert secret.removeprefix("whsec_") not in log_lines.text()


def test_revoked_secret_works_again_once_a_new_value_is_put(deploy: Callable[..., Deployment]) -> None:
    # given: a secret revoked while an environment had it cached
    deployment = deploy(**FAST_SECRET_CACHE)
    handler = deployment.load_handler()
    assert deployment.invoke(handler, signed_event_file("stack.test", deployment.stack.secret_value))[0] == 200
    deployment.put_secret("REVOKED")
    wait_past(time.time() + 1)
    assert deployment.invoke(handler, signed_event_file("stack.test", deployment.stack.secret_value))[0] == 503

    # when: a new secret is put, and Svix retries after the refresh interval
    fresh = new_secret()
    put_at = time.time()
    deployment.put_secret(fresh)
    wait_past(put_at + 1)
    status, answer = deployment.invoke(handler, signed_event_file("stack.test", fresh))

    # then: accepted and published; the revoked secret never verifies again
    assert (status, answer["status"]) == (200, "published")
    assert deployment.invoke(handler, signed_event_file("stack.test", deployment.stack.secret_value))[0] == 401
