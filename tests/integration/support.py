"""Shared helpers of the integration tier (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout_tools.devkit.emulator import LocalStack, QueueMessage, drain
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import resign_event

from stack_webhook_fanout.event_store import plain_item
from stack_webhook_fanout.event_time import decode_ksuid_ms

if TYPE_CHECKING:
    from types import ModuleType

    import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "functions" / "ingest" / "app.py"
EVENTS_DIR = REPO_ROOT / "events"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
FALLBACK = "fallback"


@dataclass
class Deployment:
    """One provisioned local stack, a queue per topic, and the means to run the handler against it."""

    stack: LocalStack
    queues: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    base_env: dict[str, str] = field(default_factory=dict)

    # --- the function -------------------------------------------------------------------------------------------
    def load_handler(self, **env: str) -> ModuleType:
        """A fresh execution environment: set the function's environment (plus ``env``) and import app.py anew."""
        self.monkeypatch.delenv("AWS_PROFILE", raising=False)
        self.monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)
        for name, value in {**self.stack.process_env(), **self.base_env, **env}.items():
            self.monkeypatch.setenv(name, value)
        return load_app_module()

    @staticmethod
    def invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Call ``lambda_handler`` as Lambda would; return the status and the decoded JSON body."""
        result = module.lambda_handler(event, LocalContext())
        return int(result["statusCode"]), json.loads(result["body"])

    # --- what reached the topics ---------------------------------------------------------------------------------
    def drain_all(self) -> dict[str, list[QueueMessage]]:
        """Take every message off every queue; keys are the event types and ``"fallback"``."""
        return {name: drain(url, stack=self.stack) for name, url in self.queues.items()}

    def delivered(self) -> list[tuple[str, QueueMessage]]:
        """Every message on every queue, as (queue name, message), emptying the queues."""
        return [(name, m) for name, messages in self.drain_all().items() for m in messages]

    # --- what was stored -----------------------------------------------------------------------------------------
    def scan(self) -> list[dict[str, Any]]:
        return self.stack.records()

    def record(self, event_id: str) -> dict[str, Any] | None:
        response = self.stack.client("dynamodb").get_item(
            TableName=self.stack.table_name, Key={"event_id": {"S": event_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        record = plain_item(item)
        assert "event_id" in record
        return record

    def put_secret(self, value: str) -> None:
        self.stack.client("secretsmanager").put_secret_value(SecretId=self.stack.secret_arn, SecretString=value)

    def topic_of(self, queue_name: str) -> str:
        return self.stack.fallback_topic_arn if queue_name == FALLBACK else self.stack.topic_arns[queue_name]


def load_app_module() -> ModuleType:
    """Import ``functions/ingest/app.py`` as a new module (its module-level code is the Lambda init phase)."""
    name = f"ingest_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, APP_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_event_file(event_type: str) -> dict[str, Any]:
    """The committed ``events/<type>.json``."""
    document = json.loads((EVENTS_DIR / f"{event_type}.json").read_text())
    assert isinstance(document, dict)
    return document


def signed_event_file(event_type: str, secret: str | list[str], **kwargs: Any) -> dict[str, Any]:
    """``events/<type>.json`` re-signed now with ``secret`` (a fresh svix-id unless ``keep_id``)."""
    return resign_event(load_event_file(event_type), secret, **kwargs)


def created_at_attribute(event_id: str) -> dict[str, str]:
    """The ``event_created_at`` attribute a delivery of ``event_id`` carries: the devkit signs with ids shaped as the
    Svix server makes them (a KSUID of the current time), so every test delivery has one."""
    created = decode_ksuid_ms(event_id)
    assert created is not None, event_id
    return {"event_created_at": str(created)}


def header(event: dict[str, Any], name: str) -> str:
    value = event["headers"][name]
    assert isinstance(value, str)
    return value


def wait_past(epoch_seconds: float) -> None:
    """Sleep until the wall clock is past ``epoch_seconds`` (a lease or a cache age); not a timing assertion."""
    while time.time() <= epoch_seconds:
        time.sleep(max(0.05, epoch_seconds - time.time() + 0.05))
