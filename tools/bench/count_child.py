"""Count what the handler asks of AWS, against the moto server: ``count_child.py <job.json>``; prints JSON.

Counting uses botocore's own event system on the handler's own clients: the hooks are registered on the package's
botocore session (``bootstrap.aws_session()``) *before* ``app.py`` is loaded, and botocore copies a session's hooks
into every client it creates, so the three clients ``bootstrap.build_service`` makes carry them. Nothing of ours is
faked; every call goes to the emulator.

- ``before-parameter-build``: one per API call, with the call's parameters (recorded for the first new event: the
  floor and the naive build of ``cold_child.py`` and the direct client of ``e2e_load.py`` replay exactly these).
- ``before-send``: one per HTTP request (a retry would show here and not above).
- urllib3's "Starting new HTTP connection" and "Resetting dropped connection" log records: one per TCP connection
  opened, the second kind when a pooled keep-alive connection was found closed by the server (keep-alive check), and
  the ``Connection`` header of the emulator's answers (``after-call``).
- stdout bytes: the handler's JSON log lines and EMF metric documents, per event.
- CPU time of the warm events (handler, botocore, HTTP to the emulator; sequential, no threads).
- item sizes: each stored item, read back with a separate (unhooked) client, sized by DynamoDB's rules, once
  published (what the mark leaves) and once only claimed (a claim of the same body under another id, by the store
  itself): the claim is billed on the claimed item, the mark on the larger of the two.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import job_json
from stack_webhook_fanout_tools.devkit.emulator import emulator_client
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_api_event
from stack_webhook_fanout_tools.dynamodb_item_size import dynamodb_item_size
from warm_child import load_app

from stack_webhook_fanout.bootstrap import aws_session
from stack_webhook_fanout.event_store import EventStore
from stack_webhook_fanout.observability import logger


class CountingSink(io.TextIOBase):
    """A stdout that counts the UTF-8 bytes written to it and keeps none of them."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)

    def writable(self) -> bool:
        return True


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.params: list[list[Any]] = []
        self.sends = 0
        self.connections = 0
        self.reconnections = 0
        self.connection_headers: Counter[str] = Counter()

    def reset(self) -> None:
        self.calls, self.params, self.sends, self.connections, self.reconnections = [], [], 0, 0, 0

    def on_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name  # the name the client was made with: dynamodb, sns, ...
        self.calls.append((service, model.name))
        self.params.append([service, _snake(model.name), copy.deepcopy(params)])

    def on_send(self, **_: Any) -> None:
        self.sends += 1

    def on_answer(self, http_response: Any, **_: Any) -> None:
        self.connection_headers[str(http_response.headers.get("Connection", "keep-alive")).lower()] += 1


class _ConnectionCounter(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.DEBUG)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Starting new HTTP"):
            self.recorder.connections += 1
        elif message.startswith("Resetting dropped connection"):
            self.recorder.reconnections += 1


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = job_json.load(handle)
    secret = job["secret"]
    recorder = Recorder()
    session = aws_session()  # the session build_service takes its clients from
    session.register("before-parameter-build", recorder.on_params)
    session.register("before-send", recorder.on_send)
    session.register("after-call", recorder.on_answer)
    pool_logger = logging.getLogger("urllib3.connectionpool")
    pool_logger.setLevel(logging.DEBUG)
    pool_logger.addHandler(_ConnectionCounter(recorder))
    pool_logger.propagate = False

    real_stdout, sink = sys.stdout, CountingSink()
    sys.stdout = sink  # bare EMF documents are printed to sys.stdout
    logger.registered_handler.setStream(sys.stdout)  # the log handler kept the stdout it saw at import
    try:
        module = load_app(job["app_path"])
        import_calls = len(recorder.calls)

        def serve(event: dict[str, Any]) -> dict[str, Any]:
            result = module.lambda_handler(event, LocalContext())
            return {"status": int(result["statusCode"]), "body": json.loads(result["body"])}

        # The first event of an execution environment: fetches the secret, opens the connections.
        recorder.reset()
        first = sample_api_event(job["event_type"], secret)
        first_result = serve(first)
        first_calls, first_sends, first_connections = list(recorder.calls), recorder.sends, recorder.connections
        templates = recorder.params
        first_event_id = first["headers"]["svix-id"]

        # Warm new events.
        warm_n = int(job["warm_events"])
        events = [sample_api_event(job["event_type"], secret) for _ in range(warm_n)]
        recorder.reset()
        sink.bytes = 0
        cpu_started = time.process_time()
        warm_statuses = Counter(serve(e)["status"] for e in events)
        cpu_ms_per_event = (time.process_time() - cpu_started) * 1000 / warm_n
        warm = {
            "calls_per_event": len(recorder.calls) / warm_n,
            "sends_per_event": recorder.sends / warm_n,
            "connections_opened": recorder.connections,
            "connections_reopened": recorder.reconnections,
            "emulator_connection_headers": dict(recorder.connection_headers),
            "log_bytes_per_event": sink.bytes / warm_n,
            "cpu_ms_per_event": cpu_ms_per_event,
            "operations": dict(Counter(op for _, op in recorder.calls)),
            "statuses": dict(warm_statuses),
        }

        # Duplicates: the same deliveries again (Svix retries keep the svix-id and re-sign; within 5 minutes the
        # original signature is still valid, so the events are sent as they are).
        recorder.reset()
        sink.bytes = 0
        duplicate_results = [serve(e) for e in events]
        duplicate = {
            "calls_per_event": len(recorder.calls) / warm_n,
            "sends_per_event": recorder.sends / warm_n,
            "log_bytes_per_event": sink.bytes / warm_n,
            "operations": dict(Counter(op for _, op in recorder.calls)),
            "statuses": dict(Counter(r["status"] for r in duplicate_results)),
            "answers": sorted({r["body"].get("status", "?") for r in duplicate_results}),
        }

        # Bytes stored: one event of every sample type, each read back once published.
        reader = emulator_client("dynamodb", job["endpoint_url"], job["region"])
        sizes: dict[str, dict[str, int]] = {}
        for event_type in (job["event_type"], *SAMPLE_TYPES):
            if event_type in sizes:
                continue
            event = sample_api_event(event_type, secret)
            recorder.reset()
            answer = serve(event)
            if answer["status"] != 200:
                raise RuntimeError(f"{event_type}: status {answer['status']}")
            item = reader.get_item(
                TableName=job["table_name"], Key={"event_id": {"S": event["headers"]["svix-id"]}}, ConsistentRead=True
            )["Item"]
            publish = next(p for p in recorder.params if p[1] == "publish")[2]
            claimed_id = "claimed-" + event["headers"]["svix-id"]
            body_text = event["body"]
            EventStore(reader, job["table_name"]).claim(
                claimed_id,
                event_type=event_type,
                body=body_text,
                body_sha256=hashlib.sha256(body_text.encode()).hexdigest(),
                event_timestamp=event["headers"]["svix-timestamp"],
            )
            claimed = reader.get_item(
                TableName=job["table_name"], Key={"event_id": {"S": claimed_id}}, ConsistentRead=True
            )["Item"]
            sizes[event_type] = {
                "item_bytes": dynamodb_item_size(item),
                "claimed_item_bytes": dynamodb_item_size(claimed),
                "body_bytes": len(event["body"].encode()),
                "sns_bytes": len(publish["Message"].encode())
                + sum(
                    len(name.encode()) + len(value["DataType"].encode()) + len(value.get("StringValue", "").encode())
                    for name, value in publish.get("MessageAttributes", {}).items()
                ),
            }
    finally:
        sys.stdout = real_stdout

    print(
        job_json.dumps(
            {
                "import_calls": import_calls,
                "first_event": {
                    "status": first_result["status"],
                    "calls": [f"{s}.{op}" for s, op in first_calls],
                    "sends": first_sends,
                    "connections_opened": first_connections,
                },
                "first_event_id": first_event_id,
                "templates": templates,
                "warm": warm,
                "duplicate": duplicate,
                "sizes": sizes,
            }
        )
    )


if __name__ == "__main__":
    main()
