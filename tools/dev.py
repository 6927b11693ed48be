"""``make dev``: the whole product on this machine.

Starts a moto server on loopback, provisions the table, the secret and every topic from the definitions
``template.yaml`` uses, serves ``POST /webhooks/stack`` through the real ``lambda_handler`` (each request turned into an
API Gateway HTTP API v2 event), subscribes a queue to every topic and prints one line per delivered message.
Ctrl-C stops everything it started.

The console shows one readable line per request and per delivery. What the function itself writes to stdout (its
JSON log lines, which carry its EMF metrics, as in CloudWatch Logs) goes to ``function.log`` next to the outputs
file, unless ``DEV_LOGS=console`` puts it on the console too.

Environment: ``DEV_PORT`` (default 3000), ``DEV_AWS_PORT`` (default 4566), ``DEV_OUTPUTS`` (default
``.local/outputs.json``), ``DEV_LOGS`` (``file``, the default, or ``console``), ``STACK_WEBHOOK_SECRET`` (a ``whsec_``
value to use instead of a fresh one, e.g. the secret of a real Stack endpoint whose deliveries you forward here
through a tunnel).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from stack_webhook_fanout_tools.devkit.dev_console import (
    LocalSettings,
    load_handler_file,
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
from stack_webhook_fanout_tools.devkit.emulator import (
    LocalStack,
    provision,
)
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def use_stack(stack: LocalStack) -> None:
    """Give the handler the function's environment, pointed at the emulator with dummy credentials."""
    os.environ.update(stack.process_env())
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")  # the template's default: one outcome line per request


def route_function_output(log_path: Path | None) -> None:
    """Send everything written to this process's stdout from now on to ``log_path`` (None: leave it on the console).

    The function writes its JSON log lines to stdout, as Lambda expects; the readable lines of ``say`` go to stderr.
    The file descriptor itself is redirected, so the logger's handler, which holds on to ``sys.stdout``, follows.
    """
    if log_path is None:
        return
    sys.stdout.flush()
    with log_path.open("w") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
    sys.stdout.reconfigure(line_buffering=True)  # a line reaches the file as soon as it is written (tail -f)


def main() -> int:
    try:
        settings = LocalSettings.from_env()
    except ValueError as exc:
        say(str(exc))
        return 2
    port, aws_port, outputs_path, secret = settings.port, settings.aws_port, settings.outputs_path, settings.secret
    logs_to = os.environ.get("DEV_LOGS") or "file"
    if logs_to not in ("file", "console"):
        say("DEV_LOGS must be 'file' (the function's JSON logs go to a file) or 'console'")
        return 2
    function_log = outputs_path.parent / "function.log" if logs_to == "file" else None

    stop = stop_on_signals()

    scrub_aws_environment()
    outputs_path.parent.mkdir(parents=True, exist_ok=True)
    route_function_output(function_log)
    emulator = MotoServer(aws_port, log_path=outputs_path.parent / "moto_server.log")
    gateway: LocalGateway | None = None
    watcher: threading.Thread | None = None
    try:
        try:
            endpoint = emulator.start()
        except RuntimeError as exc:
            say(f"{exc} (set DEV_AWS_PORT to use another port)")
            return 1
        stack = provision(endpoint, secret_value=secret, template_path=REPO_ROOT / "template.yaml")
        use_stack(stack)
        app = load_handler_file(REPO_ROOT / "functions" / "ingest" / "app.py", "ingest_app")

        queue_url = subscribe_viewer(stack)
        watcher = threading.Thread(target=watch_deliveries, args=(stack, queue_url, stop), daemon=True)
        watcher.start()

        gateway = LocalGateway(app.lambda_handler, host=HOST, port=port, on_response=print_request)
        threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        stack = stack.with_webhook_url(gateway.url)
        write_outputs(outputs_path, stack.outputs())
        where_logs_go = (
            f"{function_log}  (its JSON log lines and metrics; DEV_LOGS=console shows them here)"
            if function_log is not None
            else "this console (DEV_LOGS=console)"
        )
        say(
            "\nstack-webhook-fanout is running locally (Ctrl-C stops everything)\n"
            f"  webhook URL   {gateway.url}\n"
            f"  AWS emulator  {endpoint}  (region {stack.region}; dummy credentials)\n"
            f"  outputs       {outputs_path}  (topic ARNs, table, and the webhook secret)\n"
            f"  function logs {where_logs_go}\n"
            "  send events   make send TYPE=user.created   |   make send-all\n"
        )
        return serve_until_stopped(stop, emulator)
    finally:
        wind_down(stop, emulator=emulator, outputs_path=outputs_path, gateway=gateway, watcher=watcher)


if __name__ == "__main__":
    sys.exit(main())
