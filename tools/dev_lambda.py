"""``make dev-lambda``: the product as Lambda runs it, on this machine.

``make dev``'s contract (the same outputs file and keys, ``DEV_PORT``, ``DEV_AWS_PORT``, ``DEV_OUTPUTS``,
``STACK_WEBHOOK_SECRET``, the same console, ``make send`` against it, Ctrl-C stops everything, dummy credentials
only), but nothing is provisioned or imported by hand: ``sam build``, then the unchanged ``sam deploy`` creates the
stack on the emulator through CloudFormation; the deployed function's code and layer are downloaded from the
emulator and laid out as Lambda lays them out; each request becomes the HTTP API v2 event and is invoked through
AWS's Runtime Interface Emulator with ``awslambdaric``, with the handler and environment the emulator's Lambda
holds. Overlapping requests get more execution environments, up to ``DEV_LAMBDA_CONCURRENCY`` (default 4).

Files under the outputs file's folder (``.local/`` by default): ``lambda/sam.log`` (build and deploy),
``lambda/<function name>.log`` (START/END/REPORT lines and the function's own logs), ``moto_server.log``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from stack_webhook_fanout_tools.devkit.dev_console import (
    LocalSettings,
    print_request,
    say,
    scrub_aws_environment,
    serve_until_stopped,
    stop_on_signals,
    subscribe_viewer,
    watch_deliveries,
    wind_down,
    write_outputs,
)
from stack_webhook_fanout_tools.devkit.emulator import emulator_session
from stack_webhook_fanout_tools.devkit.lambda_runtime import FunctionPool, lambda_python
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer
from stack_webhook_fanout_tools.devkit.sam_deploy import (
    DEFAULT_STACK_NAME,
    DeployError,
    SamCli,
    deployed_stack,
    put_webhook_secret,
    sam_build,
    sam_deploy,
    stack_outputs,
)
from stack_webhook_fanout_tools.devkit.signing import new_secret

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "us-east-1"


def main() -> int:
    started = time.monotonic()
    try:
        settings = LocalSettings.from_env()
    except ValueError as exc:
        say(str(exc))
        return 2
    port, aws_port, outputs_path, secret = settings.port, settings.aws_port, settings.outputs_path, settings.secret
    concurrency_setting = os.environ.get("DEV_LAMBDA_CONCURRENCY", "4")
    if not concurrency_setting.isdigit() or int(concurrency_setting) < 1:
        say(f"DEV_LAMBDA_CONCURRENCY must be a whole number, 1 or more (not {concurrency_setting!r})")
        return 2
    concurrency = int(concurrency_setting)

    stop = stop_on_signals()

    scrub_aws_environment()
    work_dir = outputs_path.parent / "lambda"
    work_dir.mkdir(parents=True, exist_ok=True)
    pool: FunctionPool | None = None
    gateway: LocalGateway | None = None
    watcher: threading.Thread | None = None
    try:
        sam = SamCli.find(REPO_ROOT)
        python = lambda_python(REPO_ROOT)
        emulator = MotoServer(aws_port, log_path=outputs_path.parent / "moto_server.log", sam_python=sam.python)
    except (DeployError, FileNotFoundError) as exc:
        say(str(exc))
        return 1
    try:
        try:
            endpoint = emulator.start()
        except RuntimeError as exc:
            say(f"{exc} (set DEV_AWS_PORT to use another port)")
            return 1
        with (work_dir / "sam.log").open("wb") as sam_log:
            say(f"emulator up after {time.monotonic() - started:.0f} s; sam build ...  (log: {sam_log.name})")
            template = sam_build(
                sam,
                project_dir=REPO_ROOT,
                build_dir=work_dir / "build",
                endpoint_url=endpoint,
                region=REGION,
                log=sam_log,
            )
            if stop.is_set():
                return 130
            say(f"built after {time.monotonic() - started:.0f} s; sam deploy onto the emulator ...")
            sam_deploy(
                sam,
                project_dir=REPO_ROOT,
                template=template,
                stack_name=DEFAULT_STACK_NAME,
                endpoint_url=endpoint,
                region=REGION,
                log=sam_log,
            )
        if stop.is_set():
            return 130
        say(f"deployed after {time.monotonic() - started:.0f} s")
        outputs = stack_outputs(endpoint, DEFAULT_STACK_NAME, REGION)
        stack = deployed_stack(outputs, endpoint_url=endpoint, region=REGION, secret_value=secret or new_secret())
        put_webhook_secret(stack, stack.secret_value)

        lambda_client = emulator_session(REGION).client("lambda", endpoint_url=endpoint)
        pool = FunctionPool.deployed(
            lambda_client,
            outputs["IngestFunctionName"],
            work_dir=work_dir,
            rie=sam.runtime_interface_emulator,
            python=python,
            endpoint_url=endpoint,
            max_environments=concurrency,
        )
        function = pool.function

        queue_url = subscribe_viewer(stack)
        watcher = threading.Thread(target=watch_deliveries, args=(stack, queue_url, stop), daemon=True)
        watcher.start()

        gateway = LocalGateway(pool, host=HOST, port=port, concurrent=True, on_response=print_request)
        threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        stack = stack.with_webhook_url(gateway.url)
        write_outputs(outputs_path, stack.outputs())
        say(
            f"\nstack-webhook-fanout is running as Lambda runs it (ready in {time.monotonic() - started:.0f} s; "
            "Ctrl-C stops everything)\n"
            f"  webhook URL   {gateway.url}\n"
            f"  AWS emulator  {endpoint}  (region {stack.region}; dummy credentials; stack {DEFAULT_STACK_NAME})\n"
            f"  function      {function.name}  (up to {concurrency} execution environments)\n"
            f"  function log  {pool.log_path}\n"
            f"  outputs       {outputs_path}  (topic ARNs, table, and the webhook secret)\n"
            "  send events   make send TYPE=user.created   |   make send-all\n"
        )
        return serve_until_stopped(stop, emulator)
    except DeployError as exc:
        say(str(exc))
        return 130 if stop.is_set() else 1
    finally:
        wind_down(stop, emulator=emulator, outputs_path=outputs_path, gateway=gateway, pool=pool, watcher=watcher)


if __name__ == "__main__":
    sys.exit(main())
