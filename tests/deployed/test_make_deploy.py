"""`make deploy`, typed into a terminal as a new user would, against the emulator (AWS_ENDPOINT_URL, dummy
credentials), the way `make dev-lambda` deploys: the first run is guided and saves its answers into samconfig.toml,
prints the WebhookUrl, takes the signing secret at a hidden prompt and puts it into the stack's secret, then waits
for Stack's test event, which this test sends as Stack's *Test* button would: `stack.test`, signed with the secret
it typed, through the deployed function run by AWS's runtime emulator. The second run is not guided, rebuilds and
redeploys, refuses a malformed secret and keeps the stored one on Enter."""

from __future__ import annotations

import json
import re
import shutil
import threading
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.emulator import drain, emulator_session, subscribe_queue
from stack_webhook_fanout_tools.devkit.lambda_runtime import FunctionPool, lambda_python
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer, free_port
from stack_webhook_fanout_tools.devkit.sam_deploy import SamCli, deployed_stack, sam_environment, stack_outputs
from stack_webhook_fanout_tools.devkit.samples import sample_data
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from .terminal import Terminal

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.deployed

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK_NAME = "swf-make-deploy"  # typed at the guided prompt: not samconfig.toml's default
#: Any SAM CLI prompt: "Stack Name [x]: ", "Confirm changes before deploy [Y/n]: ", ...; and ours.
PROMPT = (
    r"(?m)(\]: ?$|\[y/N\]: ?$|\[Y/n\]: ?$|hidden as you type[^:\n]*: ?$"
    r"|^== waiting up to|^done \(not waiting|^make deploy: )"
)
BUILD_AND_DEPLOY_SECONDS = 420


@dataclass
class Emulator:
    endpoint_url: str
    sam: SamCli
    work_dir: Path
    config_file: Path

    def client(self, service: str) -> Any:
        return emulator_session(REGION).client(service, endpoint_url=self.endpoint_url)

    def make_deploy(self, *extra: str) -> Terminal:
        arguments = " ".join(
            ["--config-file", str(self.config_file), "--build-dir", str(self.work_dir / "build"), *extra]
        )
        return Terminal(
            ["make", "--no-print-directory", "deploy", f"DEPLOY_ARGS={arguments}"],
            cwd=REPO_ROOT,
            env=sam_environment(self.endpoint_url, REGION),
        )


@dataclass
class Run:
    terminal: Terminal
    prompts: list[str]
    returncode: int


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    work_dir = tmp_path_factory.mktemp("make-deploy")
    sam = SamCli.find(REPO_ROOT)
    # the user's checkout holds the repository's samconfig.toml: the guided run starts from it and saves into it
    config_file = work_dir / "samconfig.toml"
    shutil.copy(REPO_ROOT / "samconfig.toml", config_file)
    server = MotoServer(log_path=work_dir / "moto_server.log", sam_python=sam.python)
    try:
        yield Emulator(server.start(), sam, work_dir, config_file)
    finally:
        server.stop()


def answer_prompts(terminal: Terminal, answers: dict[str, list[str]], *, until: str) -> list[str]:
    """Answer each prompt with the next answer of the first key it contains (Enter, the default, otherwise) until
    a line containing ``until``; return the prompts seen."""
    seen = []
    while True:
        match = terminal.expect(PROMPT, timeout_seconds=BUILD_AND_DEPLOY_SECONDS)
        line = terminal.text[: match.end()].rsplit("\n", 1)[-1]
        seen.append(line.strip())
        if until in line or line.startswith("make deploy: "):
            return seen
        key = next((k for k in answers if k in line), None)
        terminal.type(answers[key].pop(0) if key is not None else "")


def press_stacks_test_button(emulator: Emulator, secret: str, webhook_url: str) -> tuple[int, list[Any]]:
    """What Stack's *Test* button does: a signed ``stack.test`` to the endpoint, here the deployed function under
    AWS's runtime emulator behind the local HTTP API; return the answer and what StackTestTopic delivered."""
    outputs = stack_outputs(emulator.endpoint_url, STACK_NAME, REGION)
    stack = deployed_stack(outputs, endpoint_url=emulator.endpoint_url, region=REGION, secret_value=secret)
    queue_url = subscribe_queue(stack, [stack.topic_arns["stack.test"]], "make-deploy-stack-test")
    pool = FunctionPool.deployed(
        emulator.client("lambda"),
        outputs["IngestFunctionName"],
        work_dir=emulator.work_dir,
        rie=emulator.sam.runtime_interface_emulator,
        python=lambda_python(REPO_ROOT),
        endpoint_url=emulator.endpoint_url,
    )
    gateway = LocalGateway(pool, port=free_port(), concurrent=True)
    threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        body = json.dumps({"type": "stack.test", "data": {**sample_data("stack.test"), "endpointUrl": webhook_url}})
        headers = {**sign_headers(secret, body), "content-type": "application/json"}
        request = urllib.request.Request(gateway.url, data=body.encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
        return status, drain(queue_url, stack=stack, wait_seconds=5)
    finally:
        gateway.shutdown()
        gateway.server_close()
        pool.close()


@pytest.fixture(scope="module")
def first_run(emulator: Emulator) -> Iterator[tuple[Run, str, tuple[int, list[Any]]]]:
    secret = new_secret()
    terminal = emulator.make_deploy("--poll-seconds", "1", "--wait-seconds", "120")
    try:
        prompts = answer_prompts(
            terminal,
            {
                "Stack Name": [STACK_NAME],
                "Deploy this changeset": ["y"],
                "Is this okay": ["y"],
                "hidden as you type": [secret],
            },
            until="== waiting up to",
        )
        printed = re.search(r"WebhookUrl +(\S+)", terminal.text)
        assert printed, terminal.text[-4000:]
        webhook_url = printed.group(1)
        button = press_stacks_test_button(emulator, secret, webhook_url)
        returncode = terminal.wait(timeout_seconds=150)
        (emulator.work_dir / "first-run-transcript.txt").write_text(terminal.text, encoding="utf-8")
        yield Run(terminal, prompts, returncode), secret, button
    finally:
        terminal.close()


def test_first_run_is_guided_and_saves_the_answers_into_samconfig(
    emulator: Emulator, first_run: tuple[Run, str, Any]
) -> None:
    run, _, _ = first_run
    assert run.returncode == 0, run.terminal.text[-4000:]
    text = run.terminal.text
    assert "== first deploy (account 123456789012, region us-east-1)" in text
    assert text.index("== sam build") < text.index("Build Succeeded") < text.index("== sam deploy --guided")
    assert any(p.startswith("Stack Name [stack-webhook-fanout]") for p in run.prompts), run.prompts
    assert any(p.startswith("Parameter RetentionDays [30]") for p in run.prompts), run.prompts
    saved = tomllib.loads(emulator.config_file.read_text(encoding="utf-8"))["default"]["deploy"]["parameters"]
    assert saved["stack_name"] == STACK_NAME
    assert "RetentionDays=" in saved["parameter_overrides"]
    status = emulator.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"


def test_first_run_prints_the_webhook_url_and_stores_the_typed_secret_unseen(
    emulator: Emulator, first_run: tuple[Run, str, Any]
) -> None:
    run, secret, _ = first_run
    outputs = stack_outputs(emulator.endpoint_url, STACK_NAME, REGION)
    assert f"WebhookUrl  {outputs['WebhookUrl']}" in run.terminal.text
    stored = emulator.client("secretsmanager").get_secret_value(SecretId=outputs["WebhookSecretArn"])
    assert stored["SecretString"] == secret
    # hidden as it was typed, and never printed: not in anything the terminal showed
    assert secret not in run.terminal.text
    assert secret.removeprefix("whsec_")[:12] not in run.terminal.text
    assert f"signing secret stored in {outputs['WebhookSecretArn']} (not shown)" in run.terminal.text


def test_first_run_waits_for_stacks_test_event_and_says_it_arrived(first_run: tuple[Run, str, Any]) -> None:
    run, _, (status, delivered) = first_run
    assert status == 200
    [message] = delivered
    assert json.loads(message.body)["type"] == "stack.test"
    assert "stack.test received and published (msg_" in run.terminal.text
    assert f"Stack's events reach {STACK_NAME}" in run.terminal.text


def test_second_run_rebuilds_redeploys_refuses_a_bad_secret_and_keeps_the_stored_one(
    emulator: Emulator, first_run: tuple[Run, str, Any]
) -> None:
    _, secret, _ = first_run
    terminal = emulator.make_deploy("--no-wait")
    try:
        prompts = answer_prompts(
            terminal,
            {"Deploy this changeset": ["y"], "hidden as you type": ["whsec_%%%not-base64%%%", ""]},
            until="done (not waiting",
        )
        returncode = terminal.wait(timeout_seconds=60)
    finally:
        terminal.close()
    text = terminal.text
    assert returncode == 0, text[-4000:]
    assert f"== updating {STACK_NAME} (account 123456789012, region us-east-1, CREATE_COMPLETE)" in text
    assert "== sam build" in text
    assert "== sam deploy\n" in text
    assert "== sam deploy --guided" not in text
    assert not any(p.startswith("Stack Name") for p in prompts), prompts
    hidden = [p for p in prompts if "hidden as you type" in p]
    assert len(hidden) == 2
    assert all("(Enter keeps the one the stack holds)" in p for p in hidden)
    assert "that is not a signing secret: it is not whsec_ followed by base64" in text
    assert "%%%not-base64%%%" not in text
    assert "kept the signing secret the stack holds" in text
    outputs = stack_outputs(emulator.endpoint_url, STACK_NAME, REGION)
    stored = emulator.client("secretsmanager").get_secret_value(SecretId=outputs["WebhookSecretArn"])
    assert stored["SecretString"] == secret
