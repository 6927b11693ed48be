"""Helpers of the ops tier: paths, the emulator process, loading Lambda files, and a local stack fed by the real
ingest function (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, QueueMessage, drain
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import sample_api_event, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_message_id, sign_headers
from stack_webhook_fanout_tools.devkit.sqs_event_source import lambda_sqs_event

from stack_webhook_fanout.event_store import plain_item

if TYPE_CHECKING:
    from types import ModuleType

    import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INGEST_APP = REPO_ROOT / "functions" / "ingest" / "app.py"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SUBSCRIBER_DIR = REPO_ROOT / "examples" / "subscriber"
SUBSCRIBER_APP = SUBSCRIBER_DIR / "src" / "app.py"
REPLAY_TOOL = REPO_ROOT / "tools" / "replay.py"
SCHEMA_TOOL = REPO_ROOT / "tools" / "generate_schemas.py"
SCHEMAS_DIR = REPO_ROOT / "schemas"
VENV_BIN = Path(sys.executable).parent
FALLBACK = "fallback"


def load_module(path: Path) -> ModuleType:
    """Import a Lambda file (not a package) as a new module: its module-level code is the Lambda init phase."""
    spec = importlib.util.spec_from_file_location(f"{path.stem}_{uuid.uuid4().hex}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Delivery:
    """A signed delivery sent through the ingest handler, and its answer."""

    event_id: str
    event_type: str
    body: bytes
    status: int
    answer: dict[str, Any]


@dataclass
class FedStack:
    """A provisioned local stack, a raw-delivery queue per topic, and the real ingest handler running against it."""

    stack: LocalStack
    queues: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    _handler: ModuleType | None = field(default=None, repr=False)

    def handler(self, **env: str) -> ModuleType:
        """The ingest function (loaded once; ``env`` forces a fresh execution environment with extra variables)."""
        if self._handler is None or env:
            self.monkeypatch.delenv("AWS_PROFILE", raising=False)
            for name, value in {**self.stack.process_env(), **env}.items():
                self.monkeypatch.setenv(name, value)
            module = load_module(INGEST_APP)
            for name in env:
                self.monkeypatch.delenv(name)
            if env:
                return module
            self._handler = module
        return self._handler

    def deliver(
        self,
        event_type: str,
        *,
        body: bytes | None = None,
        event_id: str | None = None,
        handler: ModuleType | None = None,
    ) -> Delivery:
        """Sign a delivery (the sample body of ``event_type`` unless ``body``) and pass it to the handler."""
        event_id = event_id or new_message_id()
        if body is None:
            event = sample_api_event(event_type, self.stack.secret_value, msg_id=event_id)
            body = sample_body(event_type)
        else:
            headers = {
                "content-type": "application/json",
                **sign_headers(self.stack.secret_value, body, msg_id=event_id),
            }
            event = http_api_event(body, headers)
        module = handler or self.handler()
        result = module.lambda_handler(event, LocalContext())
        return Delivery(
            event_id=event_id,
            event_type=event_type,
            body=body,
            status=int(result["statusCode"]),
            answer=json.loads(result["body"]),
        )

    def drain_all(self) -> dict[str, list[QueueMessage]]:
        """Every message on every queue (keys: the event types and "fallback"), emptying the queues."""
        return {name: drain(url, stack=self.stack) for name, url in self.queues.items()}

    def delivered(self) -> list[tuple[str, QueueMessage]]:
        return [(name, m) for name, messages in self.drain_all().items() for m in messages]

    def record(self, event_id: str) -> dict[str, Any] | None:
        item = (
            self.stack.client("dynamodb")
            .get_item(TableName=self.stack.table_name, Key={"event_id": {"S": event_id}}, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else plain_item(item)

    def records(self) -> list[dict[str, Any]]:
        return self.stack.records()

    def outputs_file(self, directory: Path) -> Path:
        """Write the outputs file ``make dev`` writes for this stack; return its path."""
        path = directory / "outputs.json"
        path.write_text(json.dumps(self.stack.outputs(), indent=2))
        return path


def receive_raw(sqs: Any, queue_url: str, expected: int, *, max_empty: int = 3) -> list[dict[str, Any]]:
    """Receive (without deleting) up to ``expected`` messages with their attributes, as a Lambda poller does."""
    messages: dict[str, dict[str, Any]] = {}
    empty = 0
    while len(messages) < expected and empty < max_empty:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=300,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        empty = 0 if batch else empty + 1
        messages.update((m["MessageId"], m) for m in batch)
    return list(messages.values())


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to a function for these received messages."""
    return lambda_sqs_event(messages, queue_arn, region)
