"""``make dev-subscriber``: the example subscriber's real handler, consuming what ``make dev`` publishes.

Run it in a second terminal while ``make dev`` runs. It reads ``make dev``'s outputs file (``DEV_OUTPUTS``, default
``.local/outputs.json``), provisions on that emulator what ``examples/subscriber/template.yaml`` declares (the
entity guard's table, the queue and its dead-letter queue, one filtered raw-delivery subscription per topic), loads
``examples/subscriber/src/app.py`` with the environment that template gives it, and polls the queue the way Lambda's
SQS event source does: batches of up to 10, records not reported as failed are deleted. The handler's own log lines
go to stdout, one JSON line per record with its ``event_id``, ``event_type`` and the guard's ``decision``
(``applied``, ``duplicate``, ``stale``, ``busy``, ``failed`` or ``rejected``). Ctrl-C stops it; the emulator and its
resources belong to ``make dev``.

Environment: ``DEV_OUTPUTS``; ``DEV_SUBSCRIBER_VISIBILITY`` (seconds before a failed record comes back, default 10
instead of the template's 180, so that retries and the dead-letter queue can be watched).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from stack_webhook_fanout_tools.devkit.dev_console import load_handler_file, say
from stack_webhook_fanout_tools.devkit.emulator import LocalStack
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.sqs_event_source import SqsEventSource
from stack_webhook_fanout_tools.devkit.subscriber_stack import provision_subscriber, subscriber_environment

if TYPE_CHECKING:
    from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBER_DIR = REPO_ROOT / "examples" / "subscriber"
TEMPLATE = SUBSCRIBER_DIR / "template.yaml"
NAME = "dev-subscriber"


class ConsumerContext(LocalContext):
    """The Lambda context the consumer's invocations get (Powertools logs its function name)."""

    function_name = f"{NAME}-consumer"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}-consumer"


def use_emulator_only(environment: dict[str, str]) -> None:
    """This process talks to the emulator alone: the consumer's environment, and nothing the user configured
    for real AWS (no profile, no config or credentials file, no instance metadata)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(environment)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def main() -> int:
    outputs_path = Path(os.environ.get("DEV_OUTPUTS", ".local/outputs.json"))
    if not outputs_path.exists():
        say(f"no {outputs_path}: start `make dev` first (in another terminal)")
        return 2
    visibility = int(os.environ.get("DEV_SUBSCRIBER_VISIBILITY", "10"))
    stack = LocalStack.from_outputs(json.loads(outputs_path.read_text()))
    subscriber = provision_subscriber(stack, TEMPLATE, name=NAME, visibility_timeout=visibility)
    use_emulator_only(subscriber_environment(stack, subscriber, TEMPLATE))
    consumer = load_handler_file(SUBSCRIBER_DIR / "src" / "app.py", "subscriber_app")
    source = SqsEventSource(stack.client("sqs"), subscriber.queue_url, region=stack.region, wait_seconds=1)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    say(
        "\nthe example subscriber is consuming (Ctrl-C stops it)\n"
        f"  queue         {subscriber.queue_url}\n"
        f"  dead letters  {subscriber.dead_letter_queue_url}  (after {subscriber.max_receive_count} receives)\n"
        f"  guard table   {subscriber.table_name}\n"
        "  send events   make send-all   (in another terminal)\n"
    )
    try:
        while not stop.is_set():
            try:
                outcome = source.poll_once(consumer.lambda_handler, ConsumerContext())
            except Exception as exc:  # the emulator went away: make dev was stopped
                if not stop.is_set():
                    say(f"the emulator stopped answering ({type(exc).__name__}); stopping")
                    return 1
                break
            if outcome.error is not None:
                say(f"  invocation failed: {type(outcome.error).__name__} (the whole batch comes back)")
            for message_id in outcome.failed:
                say(
                    f"  failed     {message_id}  (back in {visibility} s; "
                    f"dead-letter queue after {subscriber.max_receive_count} receives)"
                )
        return 0
    finally:
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
