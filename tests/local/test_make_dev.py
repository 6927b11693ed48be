"""`make dev`, started the documented way, serves the product locally; `make send` works against it;
Ctrl-C (SIGINT to the process group, as a terminal sends it) leaves nothing running."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, drain, subscribe_queue
from stack_webhook_fanout_tools.devkit.make_job import MakeJob, group_alive
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.devkit.signing import sign_headers

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


class Dev:
    """A running `make dev` and what it wrote: its outputs file, its console and the function's log file."""

    def __init__(self, job: MakeJob, outputs_path: Path) -> None:
        self.job = job
        self.process = job.process
        self.outputs_path = outputs_path
        self.env = job.env
        self.console = job.stdout_path  # what the terminal would show (stdout and stderr)
        self.function_log = outputs_path.with_name("function.log")

    @property
    def outputs(self) -> dict[str, object]:
        return json.loads(self.outputs_path.read_text())  # type: ignore[no-any-return]

    def stack(self) -> LocalStack:
        return LocalStack.from_outputs(self.outputs)

    def post(self, event_type: str) -> tuple[int, str]:
        """Sign and post the sample of ``event_type``; return the status and the svix-id."""
        stack = self.stack()
        body = sample_body(event_type)
        headers = {**sign_headers(stack.secret_value, body), "content-type": "application/json"}
        request = urllib.request.Request(str(self.outputs["WebhookUrl"]), data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, headers["svix-id"]

    def stop(self) -> None:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group; wait until every process has gone."""
        self.job.interrupt()


def start_make_dev(directory: Path, *make_variables: str) -> Dev:
    """`make dev` in its own process group, like a terminal's foreground job, on free ports; wait until ready."""
    outputs_path = directory / "outputs.json"
    env = {
        **os.environ,
        "DEV_PORT": str(free_port()),
        "DEV_AWS_PORT": str(free_port()),
        "DEV_OUTPUTS": str(outputs_path),
        # A profile that does not exist: if anything used it instead of the emulator, calls would fail.
        "AWS_PROFILE": "no-such-profile-for-make-dev",
    }
    env.pop("DEV_LOGS", None)
    job = MakeJob(
        "dev", cwd=REPO_ROOT, env=env, stdout_path=outputs_path.with_name("dev.log"), make_variables=make_variables
    )
    try:
        job.wait_until(outputs_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return Dev(job, outputs_path)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """One `make dev` shared by this module's tests; the last test stops it with SIGINT."""
    running = start_make_dev(tmp_path_factory.mktemp("dev"))
    yield running
    running.job.kill()


def wait_for_line(path: Path, text: str, timeout_seconds: float = 15) -> str:
    """The first line of ``path`` that contains ``text``, once it has been written."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if text in line:
                    return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {text!r} in {path}")


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


BURST_CONNECTIONS = 100
BURST_REPEATS_OF_ONE_ID = 30


def post_at_once(url: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> list[tuple[int, str] | BaseException]:
    """Open one connection per delivery, all at the same moment, and post them; return each answer or error."""
    parts = urlsplit(url)
    barrier = threading.Barrier(len(deliveries))
    results: list[tuple[int, str] | BaseException] = [RuntimeError("no answer")] * len(deliveries)

    def deliver(index: int, body: bytes, headers: dict[str, str]) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        try:
            barrier.wait(timeout=30)
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            results[index] = (response.status, json.loads(response.read()).get("status", ""))
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=deliver, args=(index, body, headers))
        for index, (body, headers) in enumerate(deliveries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_make_dev_answers_a_burst_of_100_simultaneous_connections(dev: Dev) -> None:
    # given a queue on every topic, 70 distinct signed deliveries and 30 copies of one more (one svix-id)
    stack = dev.stack()
    queue_url = subscribe_queue(stack, stack.all_topic_arns, "test-make-dev-burst")
    distinct = BURST_CONNECTIONS - BURST_REPEATS_OF_ONE_ID
    deliveries: list[tuple[bytes, dict[str, str]]] = []
    for index in range(distinct):
        body = sample_body(SAMPLE_TYPES[index % len(SAMPLE_TYPES)])
        deliveries.append((body, {**sign_headers(stack.secret_value, body), "content-type": "application/json"}))
    repeated_body = sample_body("user.updated")
    repeated = {**sign_headers(stack.secret_value, repeated_body), "content-type": "application/json"}
    deliveries += [(repeated_body, repeated)] * BURST_REPEATS_OF_ONE_ID
    # when all 100 connect and post at the same moment
    results = post_at_once(str(dev.outputs["WebhookUrl"]), deliveries)
    # then none is reset or refused, every distinct one is published and the repeated id exactly once
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    assert errors == [], errors
    assert results[:distinct] == [(200, "published")] * distinct
    assert Counter(results[distinct:]) == {(200, "published"): 1, (200, "duplicate"): BURST_REPEATS_OF_ONE_ID - 1}
    messages = drain(queue_url, stack=stack, wait_seconds=5)
    deadline = time.monotonic() + 30
    while len(messages) < distinct + 1 and time.monotonic() < deadline:
        messages += drain(queue_url, stack=stack, wait_seconds=2)
    published_ids = Counter(m.attributes["event_id"] for m in messages)
    assert published_ids == Counter([headers["svix-id"] for _, headers in deliveries[: distinct + 1]])


def test_make_dev_console_shows_the_readable_lines_and_no_json(dev: Dev) -> None:
    # given a delivery through make dev
    status, event_id = dev.post("team.updated")
    assert status == 200
    # then the console shows its request and delivery lines, where the function's logs are, and no JSON document
    wait_for_line(dev.console, f"{event_id}  -> ")
    console = dev.console.read_text()
    assert f"POST /webhooks/stack  200 {'published':22} {event_id}" in console
    assert f"  function logs {dev.function_log}  " in console
    assert [line for line in console.splitlines() if line.lstrip().startswith("{")] == []


def test_make_dev_writes_the_functions_json_log_lines_to_the_file_it_printed(dev: Dev) -> None:
    # given a delivery through make dev
    status, event_id = dev.post("user.deleted")
    assert status == 200
    # then its outcome line, keyed by the svix-id and carrying the metrics, is in the function's log file
    outcome = json.loads(wait_for_line(dev.function_log, event_id))
    assert outcome["correlation_id"] == event_id
    assert outcome["level"] == "INFO"
    assert outcome["Published"] == 1
    assert outcome["_aws"]["CloudWatchMetrics"]
    # every line of it is a JSON document, and none holds the webhook secret
    text = dev.function_log.read_text()
    assert all(json.loads(line) for line in text.splitlines())
    assert str(dev.outputs["WebhookSecret"]) not in text


def test_make_dev_sigint_stops_everything_it_started(dev: Dev) -> None:
    # Runs last in this module (pytest keeps file order): it ends the shared `make dev`.
    dev.stop()
    assert not group_alive(dev.process.pid), "a process started by make dev is still running"
    assert not dev.outputs_path.exists()


def test_make_dev_with_dev_logs_console_shows_the_functions_json_lines_there(tmp_path: Path) -> None:
    # given make dev started with the flag, as a make variable
    dev = start_make_dev(tmp_path, "DEV_LOGS=console")
    try:
        # when an event is delivered
        status, event_id = dev.post("team.created")
        assert status == 200
        # then the function's outcome line is on the console, beside the readable lines, and no log file is written
        outcome = json.loads(wait_for_line(dev.console, f'"correlation_id":"{event_id}"'))
        assert outcome["Published"] == 1
        assert "  function logs this console (DEV_LOGS=console)" in dev.console.read_text()
        assert not dev.function_log.exists()
    finally:
        dev.stop()
    assert not group_alive(dev.process.pid)
