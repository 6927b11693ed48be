"""`make dev-lambda`, started the documented way, keeps `make dev`'s contract: the same outputs file, `make send`
against it, the readable console; the Lambda lines go to the function's log file; Ctrl-C (SIGINT to the process
group, as a terminal sends it) leaves nothing running, the execution environments included."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, planned_stack
from stack_webhook_fanout_tools.devkit.lambda_runtime import zombie_children
from stack_webhook_fanout_tools.devkit.make_job import MakeJob, group_alive
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.deployed

REPO_ROOT = Path(__file__).resolve().parents[2]


def processes_working_in(folder: Path) -> list[int]:
    """Ids of the processes whose working directory is inside ``folder`` (the execution environments, RIE and the
    runtime it starts, run in the function's task root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(folder):
                found.append(int(entry.name))
    return found


class DevLambda:
    def __init__(self, job: MakeJob, outputs_path: Path) -> None:
        self.job = job
        self.process = job.process
        self.outputs_path = outputs_path
        self.env = job.env

    @property
    def outputs(self) -> dict[str, object]:
        return json.loads(self.outputs_path.read_text())  # type: ignore[no-any-return]

    def console(self) -> str:
        return self.job.output()

    def make_send_all(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "send-all"],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


@pytest.fixture(scope="module")
def dev_lambda(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevLambda]:
    outputs_path = tmp_path_factory.mktemp("dev-lambda") / "outputs.json"
    env = {
        **os.environ,
        "DEV_PORT": str(free_port()),
        "DEV_AWS_PORT": str(free_port()),
        # relative, as the default .local/outputs.json is (the function's files then have relative paths too)
        "DEV_OUTPUTS": os.path.relpath(outputs_path, REPO_ROOT),
        "DEV_LAMBDA_CONCURRENCY": "2",
        # A profile that does not exist: if anything used it instead of the emulator, calls would fail.
        "AWS_PROFILE": "no-such-profile-for-make-dev-lambda",
    }
    job = MakeJob("dev-lambda", cwd=REPO_ROOT, env=env, stdout_path=outputs_path.with_name("console.log"))
    try:
        job.wait_until(outputs_path, timeout_seconds=300)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield DevLambda(job, outputs_path)
    job.kill()


def test_outputs_file_has_exactly_make_devs_keys(dev_lambda: DevLambda) -> None:
    outputs = dev_lambda.outputs
    assert set(outputs) == set(planned_stack().outputs())
    assert set(outputs["TopicArns"]) == set(KNOWN_EVENT_TYPES)  # type: ignore[arg-type]
    assert str(outputs["WebhookSecret"]).startswith("whsec_")
    assert str(outputs["WebhookUrl"]).startswith("http://127.0.0.1:")
    assert str(outputs["AwsEndpointUrl"]) == f"http://127.0.0.1:{dev_lambda.env['DEV_AWS_PORT']}"
    # the names CloudFormation gave the deployed resources, not make dev's fixed ones
    stack = LocalStack.from_outputs(outputs)
    assert "-EventsTable-" in stack.table_name
    assert ":secret:stack-webhook-fanout-WebhookSecret-" in stack.secret_arn


def test_make_send_all_succeeds_and_the_console_and_function_log_show_it(dev_lambda: DevLambda) -> None:
    result = dev_lambda.make_send_all()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SAMPLE_TYPES)} of {len(SAMPLE_TYPES)} answered 2xx, {len(SAMPLE_TYPES)} delivered" in result.stderr
    deadline = time.monotonic() + 10
    while dev_lambda.console().count("POST /webhooks/stack  200 published") < len(SAMPLE_TYPES):
        assert time.monotonic() < deadline, dev_lambda.console()
        time.sleep(0.2)
    console = dev_lambda.console()
    assert str(dev_lambda.outputs["WebhookSecret"]) not in console
    assert "(up to 2 execution environments)" in console  # DEV_LAMBDA_CONCURRENCY
    [log_line] = [line for line in console.splitlines() if "function log" in line]
    function_log = (REPO_ROOT / log_line.split()[-1]).read_text(errors="replace")
    assert len(re.findall(r"^START RequestId: ", function_log, re.MULTILINE)) == len(SAMPLE_TYPES)
    assert len(re.findall(r"^REPORT RequestId: .*Init Duration", function_log, re.MULTILINE)) >= 1
    assert str(dev_lambda.outputs["WebhookSecret"]) not in function_log


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in children.read_text().split()]
    return found


def test_killed_environments_are_reaped_and_replaced_and_make_send_still_succeeds(dev_lambda: DevLambda) -> None:
    task_root = dev_lambda.outputs_path.parent / "lambda" / "function"
    [dev_lambda_py] = children_of(dev_lambda.process.pid)  # make's child: tools/dev_lambda.py
    for round_ in range(2):
        # given every execution environment, RIE and runtime, killed (SIGKILL) as a crash kills them
        environments = processes_working_in(task_root)
        assert environments, f"round {round_}: no execution environment was running"
        for pid in environments:
            os.kill(pid, signal.SIGKILL)
        # then they are reaped (no zombie is left under make dev-lambda) ...
        deadline = time.monotonic() + 10
        while any(pid in environments for pid in processes_working_in(task_root)) or zombie_children(dev_lambda_py):
            assert time.monotonic() < deadline, f"left behind: {zombie_children(dev_lambda_py)}"
            time.sleep(0.1)
        # ... and the next requests get new environments
        result = dev_lambda.make_send_all()
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(SAMPLE_TYPES)} of {len(SAMPLE_TYPES)} answered 2xx" in result.stderr
        assert not set(processes_working_in(task_root)) & set(environments)


def test_ctrl_c_stops_everything_it_started(dev_lambda: DevLambda) -> None:
    task_root = dev_lambda.outputs_path.parent / "lambda" / "function"
    assert processes_working_in(task_root), "no execution environment was running"
    os.killpg(dev_lambda.process.pid, signal.SIGINT)
    dev_lambda.process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while group_alive(dev_lambda.process.pid) or processes_working_in(task_root):
        assert time.monotonic() < deadline, f"still running: {processes_working_in(task_root)}"
        time.sleep(0.2)
    assert not dev_lambda.outputs_path.exists()
    assert dev_lambda.console().rstrip().endswith("stopped")
