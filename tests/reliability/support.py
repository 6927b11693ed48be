"""Helpers of the reliability tier (its fixtures are in conftest.py).

The tier runs the real handler (``functions/ingest/app.py``, one freshly loaded module per Lambda execution
environment) against a moto server over HTTP, injects faults around the function's own boto3 calls with botocore
event hooks, and redelivers as Svix does: the same svix-id, signed again at a later time.
"""

from __future__ import annotations

import importlib.util
import json
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from stack_webhook_fanout_tools.devkit.emulator import LocalStack, QueueMessage, drain, provision, subscribe_queue
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import resign_event, sample_api_event

from stack_webhook_fanout.event_store import plain_item
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

    import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "functions" / "ingest" / "app.py"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
#: Queue name of the fallback topic's subscriber (the others are named by event type).
FALLBACK = "fallback"
#: What API Gateway answers when the function itself fails or times out instead of returning a response.
FUNCTION_ERROR_STATUS = 500


def wait_past(epoch_seconds: float) -> None:
    """Sleep until the wall clock is past ``epoch_seconds`` (a one-second lease or cache age), never a timing check."""
    while time.time() <= epoch_seconds:
        time.sleep(max(0.05, epoch_seconds - time.time() + 0.05))


# --- the function ---------------------------------------------------------------------------------------------


class InvocationKilled(BaseException):
    """The Lambda runtime stopping an invocation: its deadline passed (a timeout) or the process died (a crash).

    Either way the execution environment is frozen and thrown away: none of the function's error handling runs,
    so nothing is released, logged as failed or answered. Raising a ``BaseException`` subclass from a hook on a
    real call models that honestly in-process: every ``except Exception`` in the function (the one that turns
    failures into 503s and the one that turns bugs into 500s) lets it through. The test then discards that
    module and answers for API Gateway, which gives the sender a 5xx for a function that failed or timed out.
    ``KeyboardInterrupt`` would do the same but could stop pytest itself.
    """


def load_app_module() -> ModuleType:
    """Import ``functions/ingest/app.py`` as a new module: its module-level code is the Lambda init phase."""
    spec = importlib.util.spec_from_file_location(f"ingest_app_{uuid.uuid4().hex}", APP_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(module: ModuleType, event: dict[str, Any], context: object | None = None) -> tuple[int, dict[str, Any]]:
    """What the sender gets for ``event``: the handler's status and JSON body, or API Gateway's 5xx when the
    invocation was stopped (:class:`InvocationKilled`). ``context`` is a :class:`LocalContext` unless given."""
    try:
        result = module.lambda_handler(event, LocalContext() if context is None else context)
    except InvocationKilled:
        return FUNCTION_ERROR_STATUS, {"message": "Internal Server Error"}
    return int(result["statusCode"]), json.loads(result["body"])


def outcome(answer: dict[str, Any]) -> str:
    """``published``/``duplicate`` for a 2xx body, the error name otherwise."""
    return str(answer.get("status") or answer.get("error") or answer.get("message"))


def header(event: dict[str, Any], name: str) -> str:
    value = event["headers"][name]
    assert isinstance(value, str)
    return value


def redeliver(event: dict[str, Any], secret: str | list[str]) -> dict[str, Any]:
    """Svix's retry of ``event``: the same svix-id and body, signed again one second after the last signature."""
    later = max(int(time.time()), int(header(event, "svix-timestamp")) + 1)
    return resign_event(event, secret, keep_id=True, timestamp=later)


# --- fault injection on the function's own clients ------------------------------------------------------------


def client_of(handler: ModuleType, service: str) -> Any:
    """The execution environment's own boto3 client of ``service``."""
    clients = {
        "dynamodb": handler.SERVICE._store._client,
        "sns": handler.SERVICE._publisher._client,
        "secretsmanager": handler.SERVICE._secrets._client,
    }
    return clients[service]


def client_events(handler: ModuleType, service: str) -> Any:
    """The botocore event system of that client, where the fault hooks go."""
    return client_of(handler, service).meta.events


def connection_refused(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/unreachable")


def read_timeout(**_: Any) -> None:
    raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9/slow")


def connect_timeout(**_: Any) -> None:
    raise ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/unreachable")


def client_error(code: str, operation: str, status: int = 400) -> Callable[..., None]:
    """A hook raising the ``ClientError`` botocore raises once its own retries of ``code`` are spent."""

    def raise_it(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )

    return raise_it


def killed(**_: Any) -> None:
    raise InvocationKilled


def update_kind(params: dict[str, Any]) -> str:
    """Which of the store's three UpdateItem calls ``params`` are: ``claim``, ``mark`` or ``release``."""
    values = params.get("ExpressionAttributeValues", {})
    if ":published" in values:
        return "mark"
    if ":zero" in values:
        return "release"
    return "claim"


def on_update(kind: str, action: Callable[..., None]) -> Callable[..., None]:
    """A ``before-parameter-build.dynamodb.UpdateItem`` hook running ``action`` (which raises) for one kind of
    update only: the real call is then never made."""

    def hook(params: dict[str, Any], **kwargs: Any) -> None:
        if update_kind(params) == kind:
            action(params=params, **kwargs)

    return hook


class _RawBody:
    """The ``raw`` of an :class:`AWSResponse`: what urllib3 would hand botocore."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class DynamoDBThrottle:
    """A ``before-send`` hook answering DynamoDB requests with HTTP 400 ``code`` (by default
    ``ProvisionedThroughputExceededException``) as DynamoDB does, so that botocore's own parser and retry policy
    handle it (the request is counted, not sent)."""

    sends: int = 0
    code: str = "ProvisionedThroughputExceededException"

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.sends += 1
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "Throughput exceeded."}
        ).encode()
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": uuid.uuid4().hex}
        return AWSResponse(request.url, 400, headers, _RawBody(body))


def sns_error_answer(request: Any, status: int, code: str) -> AWSResponse:
    """SNS's error answer (the query protocol's XML) with ``status`` and ``code``, for a ``before-send`` hook."""
    body = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>injected</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ).encode()
    return AWSResponse(request.url, status, {"content-type": "text/xml"}, _RawBody(body))


@dataclass
class AcceptedThenServerError:
    """A ``before-send`` hook on SNS Publish: the first attempt really reaches the emulator (which stores and
    delivers the message), and every attempt is then answered HTTP 500 ``InternalError``, as SNS may answer after
    it acted on a request. botocore parses the answers and retries them by its own policy; its retries are
    answered 500 without reaching the emulator (SNS still failing)."""

    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        if self.attempts == 1:
            forward_to_emulator(request)
        return sns_error_answer(request, 500, "InternalError")


@dataclass
class FirstPublishAttemptUnconfirmed:
    """A ``before-send`` hook on SNS Publish: the first attempt really reaches the emulator (which stores and delivers
    the message), then its answer is lost (``"lost"``: a read timeout) or is a 500 (``"server_error"``). botocore
    retries, and its retry goes through as usual: one call that succeeded, two copies on the topic."""

    answer: str
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > 1:
            return None  # botocore sends it
        forward_to_emulator(request)
        if self.answer == "lost":
            raise ReadTimeoutError(endpoint_url=request.url)
        return sns_error_answer(request, 500, "InternalError")


def forward_to_emulator(request: Any) -> None:
    """Send a botocore request to the emulator as it is and check that it was taken."""
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    forwarded = urllib.request.Request(request.url, data=body, headers=dict(request.headers), method="POST")
    with urllib.request.urlopen(forwarded, timeout=10) as accepted:
        assert accepted.status == 200


@dataclass
class SnsThrottle:
    """A ``before-send`` hook answering SNS Publish with HTTP 400 ``Throttled`` (the request is not sent), as SNS
    answers above its publish quota; botocore parses it and retries it by its own policy."""

    sends: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.sends += 1
        return sns_error_answer(request, 400, "Throttled")


@dataclass
class CallCounter:
    """A ``before-call`` hook that counts the API calls an operation makes (botocore's retries not included)."""

    calls: int = 0

    def __call__(self, **_: Any) -> None:
        self.calls += 1


# --- one provisioned local stack --------------------------------------------------------------------------------


@dataclass
class Deployment:
    """A provisioned local stack with one raw-delivery queue per topic, and the means to run the handler on it."""

    stack: LocalStack
    queues: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    base_env: dict[str, str] = field(default_factory=dict)

    @property
    def secret(self) -> str:
        return self.stack.secret_value

    def load_handler(self, **env: str) -> ModuleType:
        """A fresh execution environment with the function's environment (plus ``base_env`` and ``env``)."""
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self.monkeypatch.delenv(name, raising=False)
        for name, value in {**self.stack.process_env(), **self.base_env, **env}.items():
            self.monkeypatch.setenv(name, value)
        return load_app_module()

    def signed(self, event_type: str, *, secret: str | list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The sample delivery of ``event_type``, signed now with the stack's secret (or ``secret``)."""
        return sample_api_event(event_type, self.secret if secret is None else secret, **kwargs)

    # --- what reached the topics ---------------------------------------------------------------------------------
    def publications(self) -> list[tuple[str, QueueMessage]]:
        """Every message on every queue as (queue name, message), taking them off the queues."""
        return [(name, m) for name, url in self.queues.items() for m in drain(url, stack=self.stack)]

    def published_types(self) -> Counter[str]:
        return Counter(name for name, _ in self.publications())

    # --- what was stored -----------------------------------------------------------------------------------------
    def scan(self) -> list[dict[str, Any]]:
        return self.stack.records()

    def record(self, event_id: str) -> dict[str, Any] | None:
        item = (
            self.stack.client("dynamodb")
            .get_item(TableName=self.stack.table_name, Key={"event_id": {"S": event_id}}, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else plain_item(item)

    def put_secret(self, value: str) -> None:
        self.stack.client("secretsmanager").put_secret_value(SecretId=self.stack.secret_arn, SecretString=value)

    def queue_of_topic(self) -> dict[str, str]:
        """Topic ARN -> the name of the queue subscribed to it."""
        mapping = {self.stack.topic_arns[t]: t for t in KNOWN_EVENT_TYPES}
        mapping[self.stack.fallback_topic_arn] = FALLBACK
        return mapping


def provision_deployment(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, *, secret_value: str | None = None, **base_env: str
) -> Deployment:
    """Provision a fresh stack (its own prefix) with one raw-delivery queue per topic."""
    prefix = f"rel-{uuid.uuid4().hex[:10]}"
    stack = provision(endpoint, name_prefix=prefix, secret_value=secret_value, template_path=TEMPLATE_PATH)
    queues = {
        t: subscribe_queue(stack, [stack.topic_arns[t]], f"{prefix}-{i}") for i, t in enumerate(KNOWN_EVENT_TYPES)
    }
    queues[FALLBACK] = subscribe_queue(stack, [stack.fallback_topic_arn], f"{prefix}-{FALLBACK}")
    return Deployment(stack=stack, queues=queues, monkeypatch=monkeypatch, base_env=dict(base_env))
