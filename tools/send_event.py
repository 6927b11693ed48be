"""``make send`` / ``make send-all``: sign sample events and post them to the webhook endpoint.

Local (``make dev`` running): the URL and the secret come from its outputs file (``DEV_OUTPUTS``, default
``.local/outputs.json``), and the command also shows each delivery: it subscribes a temporary queue to every topic on
the emulator, filtered on the ids it sends, and prints where each event arrived.

Deployed stack (a smoke test right after ``sam deploy``): ``make send-all URL=https://.../webhooks/stack
SECRET=whsec_...``. The secret is read from the environment, never from the command line of this process, and is
never printed. Exit status 0 only if every event was answered 2xx (and, locally, delivered).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from stack_webhook_fanout_tools.devkit.emulator import LocalStack, drain
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_message_id, sign_headers

from stack_webhook_fanout.webhook_secret import parse_secret_string


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 15) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def watch_queue(stack: LocalStack, event_ids: list[str]) -> tuple[str, list[str]]:
    """A temporary queue on every topic that only receives the ids about to be sent (not raw: keeps the topic)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    queue_url = sqs.create_queue(QueueName=f"send-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscriptions = [
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"FilterPolicy": json.dumps({"event_id": event_ids})},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        for topic_arn in stack.all_topic_arns
    ]
    return queue_url, subscriptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--type", choices=SAMPLE_TYPES, help="the sample event type to send")
    which.add_argument("--all", action="store_true", help="send one sample of every type")
    parser.add_argument("--outputs", default=os.environ.get("DEV_OUTPUTS", ".local/outputs.json"))
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for local deliveries")
    args = parser.parse_args(argv)

    url = os.environ.get("URL") or None
    secret = os.environ.get("SECRET") or None
    stack: LocalStack | None = None
    if url is None:
        path = Path(args.outputs)
        if not path.exists():
            print(
                f"no {path}: start `make dev` first, or pass URL=... SECRET=... for a deployed stack", file=sys.stderr
            )
            return 2
        stack = LocalStack.from_outputs(json.loads(path.read_text()))
        url, secret = stack.webhook_url, secret or stack.secret_value
    if not url or not secret or not parse_secret_string(secret)[0]:
        print("need a webhook URL and a whsec_ SECRET", file=sys.stderr)
        return 2

    types = list(SAMPLE_TYPES) if args.all else [args.type]
    ids = {event_type: new_message_id() for event_type in types}
    watched = watch_queue(stack, list(ids.values())) if stack is not None else None

    rejected = 0
    for event_type, event_id in ids.items():
        body = sample_body(event_type)
        headers = {**sign_headers(secret, body, msg_id=event_id), "content-type": "application/json"}
        status, answer = post(url, body, headers)
        rejected += not 200 <= status < 300
        print(f"sent       {event_type:28} {event_id}  {status} {answer}")

    if stack is not None and watched is not None:
        queue_url, subscriptions = watched
        pending = set(ids.values())
        deadline = time.monotonic() + args.wait
        try:
            while pending and time.monotonic() < deadline:
                for message in drain(queue_url, stack=stack, wait_seconds=1):
                    envelope = json.loads(message.body)
                    attributes = {k: v.get("Value", "") for k, v in envelope.get("MessageAttributes", {}).items()}
                    pending.discard(attributes.get("event_id", ""))
                    topic = str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1]
                    print(f"delivered  {attributes.get('event_type', '?'):28} {attributes.get('event_id')}  -> {topic}")
        finally:
            sns, sqs = stack.client("sns"), stack.client("sqs")
            for subscription in subscriptions:
                sns.unsubscribe(SubscriptionArn=subscription)
            sqs.delete_queue(QueueUrl=queue_url)
        for event_type, event_id in ids.items():
            if event_id in pending:
                print(f"MISSING    {event_type:28} {event_id}  not delivered within {args.wait:g} s")
        print(f"{len(ids) - rejected} of {len(ids)} answered 2xx, {len(ids) - len(pending)} delivered", file=sys.stderr)
        return 1 if rejected or pending else 0
    print(f"{len(ids) - rejected} of {len(ids)} answered 2xx", file=sys.stderr)
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
