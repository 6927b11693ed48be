"""Issue 10's scenario through `make dev`'s endpoint: `SECRET_MAX_AGE_SECONDS` small, the secret's value replaced by
`REVOKED` with put-secret-value, then deliveries signed with the old secret get a retryable 503, not a 200."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, drain, subscribe_queue
from stack_webhook_fanout_tools.devkit.make_job import MakeJob
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import sample_body
from stack_webhook_fanout_tools.devkit.signing import sign_headers

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_AGE_SECONDS = 2


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """`make dev` with a 2 s secret max age, in its own process group; stopped by its process group id."""
    outputs_path = tmp_path_factory.mktemp("dev-secret") / "outputs.json"
    env = {
        **os.environ,
        "DEV_PORT": str(free_port()),
        "DEV_AWS_PORT": str(free_port()),
        "DEV_OUTPUTS": str(outputs_path),
        "SECRET_MAX_AGE_SECONDS": str(MAX_AGE_SECONDS),
        "SECRET_REFRESH_INTERVAL_SECONDS": "1",
    }
    job = MakeJob("dev", cwd=REPO_ROOT, env=env, stdout_path=outputs_path.with_name("dev.log"))
    try:
        job.wait_until(outputs_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield json.loads(outputs_path.read_text())
    finally:
        job.stop()


def post(url: str, secret: str, event_type: str) -> tuple[int, dict[str, object]]:
    body = sample_body(event_type)
    headers = {**sign_headers(secret, body), "content-type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_make_dev_secret_replaced_by_revoked_stops_verifying_the_old_secret(outputs: dict[str, object]) -> None:
    # given: make dev serving with the old secret, a queue on the team.created topic
    stack = LocalStack.from_outputs(outputs)
    url, old = str(outputs["WebhookUrl"]), stack.secret_value
    queue_url = subscribe_queue(stack, [stack.topic_arns["team.created"]], "test-make-dev-revoked")
    assert post(url, old, "team.created")[0] == 200
    read_at = time.time()

    # when: the operator replaces the value by REVOKED, and deliveries signed with the old secret go on
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString="REVOKED")
    answers = []
    while time.time() < read_at + MAX_AGE_SECONDS + 3:
        answers.append((time.time() - read_at, *post(url, old, "team.created")))
        time.sleep(0.25)

    # then: from the max age on every answer is 503 secret_not_configured (Svix retries), and nothing more published
    late = [(status, answer) for age, status, answer in answers if age >= MAX_AGE_SECONDS]
    assert late
    assert {status for status, _ in late} == {503}
    assert all(answer == {"error": "secret_not_configured"} for _, answer in late)
    published = [a for _, status, a in answers if status == 200]
    assert len(drain(queue_url, stack=stack, wait_seconds=2)) == 1 + len(published)
