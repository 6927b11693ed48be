"""The deployed tier: ``sam build``, the unchanged ``sam deploy`` onto a moto server extended for it
(``devkit.cfn_extensions``), and the deployed function run by AWS's Runtime Interface Emulator with ``awslambdaric``
on the Lambda runtime's stand-in interpreter (``.venv-lambda``), behind the local HTTP API stand-in.

One deployment serves the tier and the chaos tier (a build and a deploy take about a minute on a shared machine):
the root conftest loads this module as a plugin, so the session fixture is made once. The tests read what it
deployed and send requests through it. Everything started here is stopped by process id at the end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, emulator_session
from stack_webhook_fanout_tools.devkit.lambda_runtime import DeployedFunction, FunctionPool, lambda_python
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer, free_port, process_gone
from stack_webhook_fanout_tools.devkit.sam_deploy import (
    SamCli,
    deployed_stack,
    sam_build,
    sam_deploy,
    stack_outputs,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "stack-webhook-fanout-deployed-tier"
REGION = "us-east-1"


@dataclass
class Deployed:
    """What the tier deployed and serves."""

    endpoint_url: str
    outputs: dict[str, str]
    stack: LocalStack  # its secret_value is the placeholder's absence ("") until a test puts one
    function: DeployedFunction
    pool: FunctionPool
    webhook_url: str
    work_dir: Path
    sam: SamCli
    python: Path

    def client(self, service: str) -> Any:
        return emulator_session(REGION).client(service, endpoint_url=self.endpoint_url)

    def new_pool(
        self,
        log_path: Path,
        *,
        max_environments: int,
        function: DeployedFunction | None = None,
        endpoint_url: str | None = None,
    ) -> FunctionPool:
        """Another pool of execution environments of the deployed function (or of ``function``, its configuration
        changed), on the deployment's emulator unless ``endpoint_url`` says otherwise."""
        return FunctionPool(
            function or self.function,
            rie=self.sam.runtime_interface_emulator,
            python=self.python,
            endpoint_url=endpoint_url or self.endpoint_url,
            log_path=log_path,
            max_environments=max_environments,
        )


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work_dir = tmp_path_factory.mktemp("deployed")
    try:
        sam = SamCli.find(REPO_ROOT)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        python = lambda_python(REPO_ROOT)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    emulator = MotoServer(log_path=work_dir / "moto_server.log", sam_python=sam.python)
    pool: FunctionPool | None = None
    gateway: LocalGateway | None = None
    try:
        endpoint = emulator.start()
        with (work_dir / "sam.log").open("wb") as log:
            try:
                template = sam_build(
                    sam,
                    project_dir=REPO_ROOT,
                    build_dir=work_dir / "build",
                    endpoint_url=endpoint,
                    region=REGION,
                    log=log,
                )
                sam_deploy(
                    sam,
                    project_dir=REPO_ROOT,
                    template=template,
                    stack_name=STACK_NAME,
                    endpoint_url=endpoint,
                    region=REGION,
                    log=log,
                )
            except RuntimeError as exc:
                pytest.fail(f"{exc}:\n{(work_dir / 'sam.log').read_text(errors='replace')[-4000:]}")
        outputs = stack_outputs(endpoint, STACK_NAME, REGION)
        stack = deployed_stack(outputs, endpoint_url=endpoint, region=REGION, secret_value="")
        lambda_client = emulator_session(REGION).client("lambda", endpoint_url=endpoint)
        pool = FunctionPool.deployed(
            lambda_client,
            outputs["IngestFunctionName"],
            work_dir=work_dir,
            rie=sam.runtime_interface_emulator,
            python=python,
            endpoint_url=endpoint,
        )
        function = pool.function
        gateway = LocalGateway(pool, port=free_port(), concurrent=True)
        threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        yield Deployed(endpoint, outputs, stack, function, pool, gateway.url, work_dir, sam, python)
    finally:
        pids = pool.pids() if pool is not None else []
        if gateway is not None:
            gateway.shutdown()
            gateway.server_close()
        if pool is not None:
            pool.close()
        emulator_pid = emulator.pid if emulator.running() else None
        emulator.stop()
        still_running = [pid for pid in [*pids, *([emulator_pid] if emulator_pid else [])] if not process_gone(pid)]
        assert not still_running, f"still running: {still_running}"
