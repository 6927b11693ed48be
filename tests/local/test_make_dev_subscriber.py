"""`make dev-subscriber` beside `make dev`, started the documented way: `make send-all` is delivered to the example
subscriber's queue and its real handler prints one `applied` line per event of its types; deliveries signed with Svix
ids of chosen times show the entity guard's `stale` and `duplicate` live; Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ksuid import KsuidMs
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.emulator import LocalStack
from stack_webhook_fanout_tools.devkit.make_job import MakeJob, group_alive
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import sample_data
from stack_webhook_fanout_tools.devkit.signing import sign_headers
from stack_webhook_fanout_tools.devkit.subscriber_stack import resolved_filter_policy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBER_TEMPLATE = REPO_ROOT / "examples" / "subscriber" / "template.yaml"
PERSONAL_DATA = ("jane@example.com", "jane@gmail.com", "Jane Doe", "Jane Q. Doe")


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def decided(path: Path, decision: str) -> list[tuple[str, str]]:
    return sorted(
        (line["event_type"], line["event_id"]) for line in json_lines(path) if line.get("decision") == decision
    )


def send_at(stack: LocalStack, event_type: str, created: datetime, **data: Any) -> str:
    """Sign a delivery whose Svix id Svix's ``ksuid`` package made at ``created`` and post it to make dev's endpoint."""
    event_id = "msg_" + str(KsuidMs(created))
    body = json.dumps({"type": event_type, "data": {**sample_data(event_type), **data}}).encode()
    headers = {**sign_headers(stack.secret_value, body, msg_id=event_id), "content-type": "application/json"}
    request = urllib.request.Request(stack.webhook_url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200
    return event_id


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

        # then: exactly one applied line per event of the subscriber's types, none for the others
        deadline = time.monotonic() + 60
        while len(decided(out, "applied")) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # a second copy, if there were one, would have come by now
        assert decided(out, "applied") == expected

        # when: a user's update made an hour ago, then an older one, then the first change resent under a new id
        stack = LocalStack.from_outputs(json.loads(Path(env["DEV_OUTPUTS"]).read_text()))
        user_id, hour_ago = str(uuid.uuid4()), datetime.now(UTC) - timedelta(hours=1)
        ordered = []
        for seconds, name in ((10, "Newer"), (0, "Older"), (20, "Newer")):
            ordered.append(
                send_at(stack, "user.updated", hour_ago + timedelta(seconds=seconds), id=user_id, display_name=name)
            )
            # one at a time, so that they arrive in this order
            deadline = time.monotonic() + 30
            while ordered[-1] not in {line.get("event_id") for line in json_lines(out)} and time.monotonic() < deadline:
                time.sleep(0.3)

        # then: the subscriber's lines show the guard's decisions, ordered by the time in the ids
        lines = {line["event_id"]: line for line in json_lines(out) if "decision" in line}
        assert [(lines[i]["decision"], lines[i]["ordered"]) for i in ordered] == [
            ("applied", True),
            ("stale", True),
            ("duplicate", True),
        ]
        assert not any(secret in out.read_text() for secret in PERSONAL_DATA)
    finally:
        stopped_by_ctrl_c = subscriber.interrupt()
        if not stopped_by_ctrl_c:
            subscriber.kill()

    # and: Ctrl-C stopped it and everything it started
    assert stopped_by_ctrl_c
    assert not group_alive(subscriber.pid)
    assert "stopped" in err.read_text()
