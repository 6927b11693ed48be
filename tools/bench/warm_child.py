"""The warm path: the handler's own microseconds per event, no network: ``warm_child.py <job.json>``; prints JSON.

How the AWS calls are "answered at once": a ``before-call`` hook on ``bootstrap.aws_session()``, registered
before ``app.py`` is loaded (botocore copies a session's hooks into every client it creates, so the handler's own three
clients carry it). ``before-call`` is the last event before botocore signs and sends a request; a hook that returns
``(http_response, parsed)`` there makes botocore skip signing, the HTTP round trip and response parsing, and return
``parsed`` as the call's result. Everything on the client side before that point still runs for real: parameter
validation, request serialisation, the event hooks. Why this and not ``botocore.stub.Stubber``: the Stubber answers
through the same ``before-call`` mechanism but also compares every call's parameters with queued expectations, which
would add its own bookkeeping to the handler's time and needs the exact call order queued up front.

Three loops run over the same body, interleaved, several rounds, median per event:

- ``handler``: ``lambda_handler(event)`` of fresh, signed events (a new svix-id each: claim, publish, mark).
- ``calls``: the same three AWS calls with the same parameters on clients with the same hook, nothing else: the
  client-side cost of the calls themselves, which no design can avoid.
- ``bare``: HMAC-SHA256 over ``id.timestamp.body``, a constant-time compare with the signature, ``json.loads``.

The handler's own time is ``handler - calls``. Logs and EMF metrics go to a sink that counts and drops them.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import importlib.util
import io
import json
import statistics
import sys
import time
from typing import Any

import job_json
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import sample_api_event

from stack_webhook_fanout.bootstrap import aws_session
from stack_webhook_fanout.observability import logger


def load_app(app_path: str) -> Any:
    """``functions/ingest/app.py`` loaded as Lambda's init loads it (importlib, under a name of its own)."""
    spec = importlib.util.spec_from_file_location("ingest_app", app_path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def direct_calls(session: Any, job: dict[str, Any]) -> list[tuple[Any, Any]]:
    """The handler's recorded DynamoDB and SNS calls, bound to clients of ``session`` with the handler's config."""
    config = Config(**job["client_config"])
    clients = {name: session.create_client(name, config=config) for name in ("dynamodb", "sns")}
    return [
        (getattr(clients[service], operation), params)
        for service, operation, params in job["calls"]
        if service != "secretsmanager"
    ]


class Sink(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)

    def writable(self) -> bool:
        return True


class Answers:
    """Canned answers for the calls the handler makes, returned from ``before-call``."""

    def __init__(self, secret: str, secret_arn: str) -> None:
        self.secret = secret
        self.secret_arn = secret_arn
        self.count = 0
        self.http = AWSResponse("https://bench.invalid/", 200, {}, None)

    def __call__(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.count += 1
        operation = model.name
        parsed: dict[str, Any]
        if operation == "GetSecretValue":
            parsed = {"ARN": self.secret_arn, "Name": "bench", "SecretString": self.secret, "VersionId": "v1"}
        elif operation == "UpdateItem":
            parsed = {"Attributes": {"attempts": {"N": "1"}}}
        elif operation == "Publish":
            parsed = {"MessageId": "6f0e8a2c-1b7d-4c43-9a6e-2d8f4b1c7e90"}
        else:
            raise RuntimeError(f"the warm benchmark has no answer for {operation}")
        parsed["ResponseMetadata"] = {
            "RequestId": "bench",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
        return self.http, parsed


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = job_json.load(handle)
    secret, n, rounds = job["secret"], int(job["events_per_round"]), int(job["rounds"])
    answers = Answers(secret, job["secret_arn"])
    session = aws_session()  # the session build_service takes its clients from
    session.register("before-call", answers)

    real_stdout = sys.stdout
    sys.stdout = Sink()
    logger.registered_handler.setStream(sys.stdout)  # the log handler kept the stdout it saw at import
    try:
        module = load_app(job["app_path"])
        handler = module.lambda_handler
        context = LocalContext()

        calls = direct_calls(session, job)
        key = base64.b64decode(secret.removeprefix("whsec_"))

        def handler_loop(events: list[dict[str, Any]]) -> float:
            start = time.perf_counter()
            for event in events:
                if handler(event, context)["statusCode"] != 200:
                    raise RuntimeError("the handler did not answer 200")
            return time.perf_counter() - start

        def calls_loop(events: list[dict[str, Any]]) -> float:
            start = time.perf_counter()
            for _ in events:
                for call, params in calls:
                    call(**params)
            return time.perf_counter() - start

        def bare_loop(events: list[dict[str, Any]]) -> float:
            items = [
                (e["headers"]["svix-id"], e["headers"]["svix-timestamp"], e["headers"]["svix-signature"], e["body"])
                for e in events
            ]
            start = time.perf_counter()
            for msg_id, timestamp, signature, body in items:
                raw = body.encode()
                digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
                expected = "v1," + base64.b64encode(digest).decode()
                if not any(hmac.compare_digest(expected, s) for s in signature.split(" ")):
                    raise RuntimeError("bare verification failed")
                json.loads(raw)
            return time.perf_counter() - start

        # Warm up: the first event fetches the secret and builds what is built lazily.
        handler_loop([sample_api_event(job["event_type"], secret) for _ in range(50)])
        calls_loop([{}] * 50)
        loops = {"handler": handler_loop, "calls": calls_loop, "bare": bare_loop}
        per_event: dict[str, list[float]] = {name: [] for name in loops}
        answered_before = answers.count
        for round_index in range(rounds):
            events = [sample_api_event(job["event_type"], secret) for _ in range(n)]
            names = list(loops)
            names = names[round_index % 3 :] + names[: round_index % 3]  # rotate the order every round
            gc.collect()
            for name in names:
                seconds = loops[name](events)
                per_event[name].append(seconds / n * 1e6)
        handler_calls = (answers.count - answered_before - rounds * n * len(calls)) / (rounds * n)
    finally:
        sys.stdout = real_stdout

    medians = {name: statistics.median(values) for name, values in per_event.items()}
    own = [h - c for h, c in zip(per_event["handler"], per_event["calls"], strict=True)]
    print(
        json.dumps(
            {
                "events_per_round": n,
                "rounds": rounds,
                "handler_us": medians["handler"],
                "calls_us": medians["calls"],
                "bare_us": medians["bare"],
                "own_us": statistics.median(own),
                "handler_calls_per_event": handler_calls,
                "rounds_us": per_event,
            }
        )
    )


if __name__ == "__main__":
    main()
