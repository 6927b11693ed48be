"""What every local command (make dev, make dev-lambda, make dev-subscriber) shares: the readable console, the
safety that keeps it off real AWS accounts, the delivery viewer and the outputs file. Development only."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.webhook_secret import parse_secret_string

from .emulator import DEFAULT_AWS_PORT, drain
from .local_gateway import json_body

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType, ModuleType

    from .emulator import LocalStack
    from .lambda_runtime import FunctionPool
    from .local_gateway import LocalGateway
    from .moto_server import MotoServer

# Anything a user configured that could point boto3 at a real account is removed from this process.
AWS_VARIABLES_TO_DROP = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def say(line: str) -> None:
    # One write per line: print() writes the text and the newline separately, and the request and delivery threads
    # then interleave into one line.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def scrub_aws_environment() -> None:
    """Drop whatever the user configured for real AWS from this process and its children (the emulator too,
    which uses botocore itself): no profile, no config or credentials file, no instance metadata."""
    for name in AWS_VARIABLES_TO_DROP:
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def subscribe_viewer(stack: LocalStack) -> str:
    """A queue subscribed to every topic WITHOUT raw delivery: each message then says which topic it came from."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    queue_url = sqs.create_queue(QueueName="dev-fanout-view")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic_arn in stack.all_topic_arns:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def watch_deliveries(stack: LocalStack, queue_url: str, stop: threading.Event) -> None:
    """Print one line per message delivered to any topic: type, event id, topic."""
    while not stop.is_set():
        try:
            messages = drain(queue_url, stack=stack, wait_seconds=1)
        except Exception as exc:  # the emulator is going away during shutdown
            if not stop.is_set():
                say(f"watcher: {type(exc).__name__}")
            return
        for message in messages:
            envelope = json.loads(message.body)
            attributes = {k: v.get("Value", "") for k, v in envelope.get("MessageAttributes", {}).items()}
            topic = str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1]
            say(f"  delivered  {attributes.get('event_type', '?'):28} {attributes.get('event_id', '?')}  -> {topic}")


def write_outputs(path: Path, outputs: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(outputs, indent=2) + "\n")
    os.chmod(temporary, 0o600)  # it holds the webhook secret
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """What every way of running the product locally reads from its environment."""

    port: int
    aws_port: int
    outputs_path: Path
    secret: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalSettings:
        """``DEV_PORT`` (3000), ``DEV_AWS_PORT`` (4566), ``DEV_OUTPUTS`` (``.local/outputs.json``) and
        ``STACK_WEBHOOK_SECRET`` (a fresh secret when unset); raises ValueError saying what is wrong."""
        env = os.environ if env is None else env
        secret = env.get("STACK_WEBHOOK_SECRET") or None
        if secret is not None and not parse_secret_string(secret)[0]:
            raise ValueError(
                "STACK_WEBHOOK_SECRET must be a whsec_ value (the signing secret of a Stack webhook endpoint)"
            )
        return cls(
            port=int(env.get("DEV_PORT", "3000")),
            aws_port=int(env.get("DEV_AWS_PORT", str(DEFAULT_AWS_PORT))),
            outputs_path=Path(env.get("DEV_OUTPUTS", ".local/outputs.json")),
            secret=secret,
        )


def stop_on_signals() -> threading.Event:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets, for the main loop to wind everything down in order."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def print_request(event: dict[str, Any], result: dict[str, Any]) -> None:
    """The console line of one request: status, what the answer says, the svix-id."""
    answer = json_body(result) or {}
    detail = answer.get("status") or answer.get("reason") or answer.get("error") or answer.get("message") or ""
    event_id = event["headers"].get("svix-id") or event["headers"].get("webhook-id") or "-"
    say(f"POST /webhooks/stack  {result.get('statusCode')} {detail:22} {event_id}")


def serve_until_stopped(stop: threading.Event, emulator: MotoServer) -> int:
    """Wait for Ctrl-C; return 1 if the emulator goes away first."""
    while not stop.wait(0.5):
        if not emulator.running():
            say("the emulator stopped; shutting down")
            return 1
    return 0


def wind_down(
    stop: threading.Event,
    *,
    emulator: MotoServer,
    outputs_path: Path,
    gateway: LocalGateway | None = None,
    pool: FunctionPool | None = None,
    watcher: threading.Thread | None = None,
) -> None:
    """Stop a local session in order: requests first, then the function's environments, then the emulator; then
    the delivery viewer and the outputs file (it holds the webhook secret)."""
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


def load_handler_file(path: Path, name: str) -> ModuleType:
    """Import a function's handler file by its path, as the Lambda runtime does (it is not in a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
