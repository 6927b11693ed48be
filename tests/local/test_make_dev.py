"""`make dev`, started the documented way, serves the product locally; `make send` works against it;
Ctrl-C (SIGINT to the process group, as a terminal sends it) leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stack_webhook_fanout.devkit.emulator import LocalStack, drain, subscribe_queue
from stack_webhook_fanout.devkit.moto_server import free_port
from stack_webhook_fanout.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout.devkit.signing import sign_headers
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT_KEYS = {
    "WebhookUrl",
    "AwsEndpointUrl",
    "Region",
    "WebhookSecret",
    "WebhookSecretArn",
    "EventsTableName",
    "TopicArns",
    "FallbackTopicArn",
}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Dev:
    def __init__(self, process: subprocess.Popen[bytes], outputs_path: Path, env: dict[str, str]) -> None:
        self.process = process
        self.outputs_path = outputs_path
        self.env = env

    @property
    def outputs(self) -> dict[str, object]:
        return json.loads(self.outputs_path.read_text())  # type: ignore[no-any-return]

    def stack(self) -> LocalStack:
        return LocalStack.from_outputs(self.outputs)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """`make dev` in its own process group, like a terminal's foreground job; stopped with SIGINT."""
    outputs_path = tmp_path_factory.mktemp("dev") / "outputs.json"
    env = {
        **os.environ,
        "DEV_PORT": str(free_port()),
        "DEV_AWS_PORT": str(free_port()),
        "DEV_OUTPUTS": str(outputs_path),
        # A profile that does not exist: if anything used it instead of the emulator, calls would fail.
        "AWS_PROFILE": "no-such-profile-for-make-dev",
    }
    log_path = outputs_path.with_name("dev.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "dev"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while not outputs_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make dev did not become ready:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    running = Dev(process, outputs_path, env)
    yield running
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)


def test_make_dev_outputs_file_has_exactly_the_documented_keys(dev: Dev) -> None:
    outputs = dev.outputs
    assert set(outputs) == OUTPUT_KEYS
    assert set(outputs["TopicArns"]) == set(KNOWN_EVENT_TYPES)  # type: ignore[arg-type]
    assert str(outputs["WebhookSecret"]).startswith("whsec_")
    assert str(outputs["WebhookUrl"]).startswith("http://127.0.0.1:")
    assert str(outputs["AwsEndpointUrl"]).startswith("http://127.0.0.1:")


def test_make_dev_signed_event_arrives_on_a_queue_subscribed_to_its_topic(dev: Dev) -> None:
    # given a queue of our own on the team.created topic, over the emulator named in the outputs file
    stack = dev.stack()
    queue_url = subscribe_queue(stack, [stack.topic_arns["team.created"]], "test-make-dev-team-created")
    body = sample_body("team.created")
    headers = {**sign_headers(stack.secret_value, body), "content-type": "application/json"}
    # when it is posted to WebhookUrl
    request = urllib.request.Request(str(dev.outputs["WebhookUrl"]), data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        status, answer = response.status, json.loads(response.read())
    # then it is published and arrives verbatim, once
    assert status == 200
    assert answer["status"] == "published"
    messages = drain(queue_url, stack=stack, wait_seconds=5)
    assert [m.body.encode() for m in messages] == [body]
    assert messages[0].attributes["event_id"] == headers["svix-id"]


def test_make_send_all_succeeds_for_every_type(dev: Dev) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "send-all"],
        cwd=REPO_ROOT,
        env=dev.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    delivered = [line for line in result.stdout.splitlines() if line.startswith("delivered")]
    assert len(delivered) == len(SAMPLE_TYPES)
    assert f"{len(SAMPLE_TYPES)} of {len(SAMPLE_TYPES)} answered 2xx, {len(SAMPLE_TYPES)} delivered" in result.stderr
    assert str(dev.outputs["WebhookSecret"]) not in result.stdout + result.stderr


def test_make_send_to_a_deployed_url_with_a_wrong_secret_fails_and_never_prints_it(dev: Dev) -> None:
    wrong = "whsec_" + "A" * 32
    env = {**dev.env, "URL": str(dev.outputs["WebhookUrl"]), "SECRET": wrong, "DEV_OUTPUTS": "/nonexistent"}
    result = subprocess.run(
        ["make", "--no-print-directory", "send", "TYPE=user.created"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert " 401 " in result.stdout
    assert wrong not in result.stdout + result.stderr


def test_make_dev_sigint_stops_everything_it_started(dev: Dev) -> None:
    # Runs last in this module (pytest keeps file order): it ends the shared `make dev`.
    os.killpg(dev.process.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while group_alive(dev.process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    dev.process.wait(timeout=5)
    assert not group_alive(dev.process.pid), "a process started by make dev is still running"
    assert not dev.outputs_path.exists()
