"""`make dev-subscriber` beside `make dev`, started the documented way: `make send-all` is delivered to the example
subscriber's queue and its real handler prints one `processed` line per event of its types; Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.make_job import MakeJob, group_alive
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.subscriber_stack import resolved_filter_policy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBER_TEMPLATE = REPO_ROOT / "examples" / "subscriber" / "template.yaml"
PERSONAL_DATA = ("jane@example.com", "jane@gmail.com", "Jane Doe", "Jane Q. Doe")


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
    dev = MakeJob("dev", cwd=REPO_ROOT, env=environment, stdout_path=directory / "dev.log")
    try:
        dev.wait_until(outputs_path)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield environment
    finally:
        dev.stop()


def test_make_dev_subscriber_processes_each_event_of_send_all_once(env: dict[str, str]) -> None:
    # given: the subscriber running beside make dev, its handler's log lines on stdout
    directory = Path(env["DEV_OUTPUTS"]).parent
    out, err = directory / "subscriber.out", directory / "subscriber.err"
    subscriber = MakeJob("dev-subscriber", cwd=REPO_ROOT, env=env, stdout_path=out, stderr_path=err)
    try:
        subscriber.wait_until("the example subscriber is consuming")

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
        stopped_by_ctrl_c = subscriber.interrupt()
        if not stopped_by_ctrl_c:
            subscriber.kill()

    # and: Ctrl-C stopped it and everything it started
    assert stopped_by_ctrl_c
    assert not group_alive(subscriber.pid)
    assert "stopped" in err.read_text()
