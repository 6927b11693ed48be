"""`make dev-subscriber` beside `make dev`, started the documented way: `make send-all` is delivered to the example
subscriber's queue and its real handler prints one `processed` line per event of its types; Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stack_webhook_fanout.devkit import cfn_template
from stack_webhook_fanout.devkit.moto_server import free_port
from stack_webhook_fanout.devkit.subscriber_stack import resolved_filter_policy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBER_TEMPLATE = REPO_ROOT / "examples" / "subscriber" / "template.yaml"
PERSONAL_DATA = ("jane@example.com", "jane@gmail.com", "Jane Doe", "Jane Q. Doe")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C as a terminal sends it; SIGKILL only if the group outlives 30 s."""
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def wait_for(path: Path, text: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and text in path.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{text!r} never appeared in {path.name}:\n{path.read_text(errors='replace')}")
        time.sleep(0.2)


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make dev` in its own process group; stopped with SIGINT at the end of the module."""
    directory = tmp_path_factory.mktemp("dev-subscriber")
    outputs_path = directory / "outputs.json"
    environment = {
        **os.environ,
        "DEV_PORT": str(free_port()),
        "DEV_AWS_PORT": str(free_port()),
        "DEV_OUTPUTS": str(outputs_path),
        "DEV_SUBSCRIBER_VISIBILITY": "2",
        "AWS_PROFILE": "no-such-profile-for-make-dev",
    }
    with (directory / "dev.log").open("wb") as log:
        dev = subprocess.Popen(
            ["make", "--no-print-directory", "dev"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not outputs_path.exists():
            if dev.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make dev did not become ready:\n{(directory / 'dev.log').read_text(errors='replace')}")
            time.sleep(0.2)
        yield environment
    finally:
        stop_group(dev)


def test_make_dev_subscriber_processes_each_event_of_send_all_once(env: dict[str, str]) -> None:
    # given: the subscriber running beside make dev, its handler's log lines on stdout
    directory = Path(env["DEV_OUTPUTS"]).parent
    out, err = directory / "subscriber.out", directory / "subscriber.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        subscriber = subprocess.Popen(
            ["make", "--no-print-directory", "dev-subscriber"],
            cwd=REPO_ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        wait_for(err, "the example subscriber is consuming", subscriber)

        # when: one sample of every type is sent through the local endpoint
        sent = subprocess.run(
            ["make", "--no-print-directory", "send-all"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        ids = {line.split()[1]: line.split()[2] for line in sent.stdout.splitlines() if line.startswith("sent ")}
        template = cfn_template.load_template(SUBSCRIBER_TEMPLATE)
        types = resolved_filter_policy(template, {"event_type": {"Ref": "EventTypes"}})["event_type"]
        expected = sorted((t, ids[t]) for t in types)

        # then: exactly one processed line per event of the subscriber's types, none for the others
        deadline = time.monotonic() + 60
        processed: list[tuple[str, str]] = []
        while len(processed) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.5)
            processed = sorted(
                (line["event_type"], line["event_id"]) for line in json_lines(out) if line["message"] == "processed"
            )
        time.sleep(2)  # a second copy, if there were one, would have come by now
        processed = sorted(
            (line["event_type"], line["event_id"]) for line in json_lines(out) if line["message"] == "processed"
        )
        assert processed == expected
        assert not any(secret in out.read_text() for secret in PERSONAL_DATA)
    finally:
        stop_group(subscriber)

    # and: Ctrl-C stopped it and everything it started
    assert not group_alive(subscriber.pid)
    assert "stopped" in err.read_text()
