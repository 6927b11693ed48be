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
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.devkit.dev_console import (
    say,
    scrub_aws_environment,
    subscribe_viewer,
    watch_deliveries,
    write_outputs,
)
from stack_webhook_fanout.devkit.emulator import DEFAULT_AWS_PORT, emulator_session
from stack_webhook_fanout.devkit.lambda_runtime import FunctionPool, download_function, lambda_python
from stack_webhook_fanout.devkit.local_gateway import LocalGateway, json_body
from stack_webhook_fanout.devkit.moto_server import MotoServer
from stack_webhook_fanout.devkit.sam_deploy import (
    DEFAULT_STACK_NAME,
    DeployError,
    SamCli,
    deployed_stack,
    put_webhook_secret,
    sam_build,
    sam_deploy,
    stack_outputs,
)
from stack_webhook_fanout.devkit.signing import new_secret
from stack_webhook_fanout.webhook_secret import parse_secret_string

if TYPE_CHECKING:
    from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "us-east-1"


def main() -> int:
    started = time.monotonic()
    port = int(os.environ.get("DEV_PORT", "3000"))
    aws_port = int(os.environ.get("DEV_AWS_PORT", str(DEFAULT_AWS_PORT)))
    outputs_path = Path(os.environ.get("DEV_OUTPUTS", ".local/outputs.json"))
    concurrency_setting = os.environ.get("DEV_LAMBDA_CONCURRENCY", "4")
    if not concurrency_setting.isdigit() or int(concurrency_setting) < 1:
        say(f"DEV_LAMBDA_CONCURRENCY must be a whole number, 1 or more (not {concurrency_setting!r})")
        return 2
    concurrency = int(concurrency_setting)
    secret = os.environ.get("STACK_WEBHOOK_SECRET") or None
    if secret is not None and not parse_secret_string(secret)[0]:
        say("STACK_WEBHOOK_SECRET must be a whsec_ value (the signing secret of a Stack webhook endpoint)")
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

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
        function = download_function(lambda_client, outputs["IngestFunctionName"], work_dir / "function")
        pool = FunctionPool(
            function,
            rie=sam.runtime_interface_emulator,
            python=python,
            endpoint_url=endpoint,
            log_path=work_dir / f"{function.name}.log",
            max_environments=concurrency,
        )

        queue_url = subscribe_viewer(stack)
        watcher = threading.Thread(target=watch_deliveries, args=(stack, queue_url, stop), daemon=True)
        watcher.start()

        def on_response(event: dict[str, Any], result: dict[str, Any]) -> None:
            answer = json_body(result) or {}
            detail = answer.get("status") or answer.get("reason") or answer.get("error") or answer.get("message") or ""
            event_id = event["headers"].get("svix-id") or event["headers"].get("webhook-id") or "-"
            say(f"POST /webhooks/stack  {result.get('statusCode')} {detail:22} {event_id}")

        gateway = LocalGateway(pool, host=HOST, port=port, concurrent=True, on_response=on_response)
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
        while not stop.wait(0.5):
            if not emulator.running():
                say("the emulator stopped; shutting down")
                return 1
        return 0
    except DeployError as exc:
        say(str(exc))
        return 130 if stop.is_set() else 1
    finally:
        stop.set()
        if gateway is not None:
            gateway.shutdown()
            gateway.server_close()
        if pool is not None:
            pool.close()
        emulator.stop()
        if watcher is not None:
            watcher.join(timeout=5)
        outputs_path.unlink(missing_ok=True)
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
