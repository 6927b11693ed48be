"""A fault proxy at the function's AWS endpoint: it sees every AWS call the function makes and may break it.

Point the function's ``AWS_ENDPOINT_URL`` at :class:`FaultProxy` instead of the emulator: each HTTP request is read
whole, classified (:func:`classify`: the service, the operation, the event it concerns, and for the events table
which write it is: the claim, the mark or the release), and handed to a rule that answers with an :class:`Action`:
forward it, answer a throttling or a 5xx error without forwarding, forward it and answer 5xx all the same (the call
succeeded, the caller cannot know), hold it without an answer (before or after forwarding), or forward it and then
run a callback before the answer is returned (the chaos tier kills the execution environment there, so that the
state the call left is the state a death at that point leaves). Everything is logged as :class:`Exchange` records.

Loopback only; plain HTTP/1.1 with keep-alive, as botocore speaks to an ``http://`` endpoint.
"""

from __future__ import annotations

import http.client
import json
import select
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from .emulator import require_loopback_endpoint
from .local_gateway import require_loopback, write_response

if TYPE_CHECKING:
    from collections.abc import Callable

#: How long a held request waits for its caller to give up before the proxy closes it.
MAX_HOLD_SECONDS: Final = 30.0


class Step(StrEnum):
    """What an AWS call is in the ingest flow."""

    SECRET = "secret"  # noqa: S105 - Secrets Manager GetSecretValue (a step's name, not a secret)
    CLAIM = "claim"  # the conditional write that claims an event
    PUBLISH = "publish"  # SNS Publish
    MARK = "mark"  # the write that marks the event published
    RELEASE = "release"  # the write that gives a claim up
    OTHER = "other"


class Action(StrEnum):
    FORWARD = "forward"
    #: Answer the service's throttling error without forwarding (botocore retries it with backoff).
    THROTTLE = "throttle"
    #: Answer 500 without forwarding: nothing happened.
    ERROR_BEFORE = "error_before"
    #: Forward, then answer 500 instead of the service's answer: it happened, the caller cannot know.
    ERROR_AFTER = "error_after"
    #: Hold the request, never forwarded, until the caller gives up: an answer that never comes.
    HANG_BEFORE = "hang_before"
    #: Forward, then hold the answer until the caller gives up: it happened, its answer never comes.
    HANG_AFTER = "hang_after"
    #: Forward, run the rule's ``after_forward`` callback, then close the connection without an answer.
    INTERRUPT_AFTER = "interrupt_after"


@dataclass(frozen=True, slots=True)
class Operation:
    """One AWS request as the proxy classified it."""

    service: str
    name: str
    step: Step
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request through the proxy: what it was, what the proxy did, and what the emulator answered (None when
    the request was not forwarded)."""

    at: float
    operation: Operation
    action: Action
    upstream_status: int | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action = Action.FORWARD
    #: Run after forwarding (``INTERRUPT_AFTER``), before the connection is closed without an answer.
    after_forward: Callable[[], None] | None = None


FORWARD: Final = Decision()

_DYNAMODB_TARGET: Final = "DynamoDB_20120810."
_SECRETS_TARGET: Final = "secretsmanager."


def classify(headers: dict[str, str], body: bytes) -> Operation:
    """The service, operation, step and event id of one botocore request (header names lower-cased)."""
    target = headers.get("x-amz-target", "")
    if target.startswith(_DYNAMODB_TARGET):
        name = target.removeprefix(_DYNAMODB_TARGET)
        request = _json(body)
        event_id = request.get("Key", {}).get("event_id", {}).get("S")
        return Operation("dynamodb", name, _table_step(name, str(request.get("UpdateExpression", ""))), event_id)
    if target.startswith(_SECRETS_TARGET):
        name = target.removeprefix(_SECRETS_TARGET)
        return Operation("secretsmanager", name, Step.SECRET if name == "GetSecretValue" else Step.OTHER, None)
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    action = form.get("Action", "")
    if action == "Publish":
        return Operation("sns", action, Step.PUBLISH, _published_event_id(form))
    return Operation("unknown" if not action else "query", action or target or "?", Step.OTHER, None)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _table_step(name: str, update_expression: str) -> Step:
    # The events table's three writes (stack_webhook_fanout.event_store), told apart by what they set.
    if name != "UpdateItem":
        return Step.OTHER
    if "ADD attempts" in update_expression:
        return Step.CLAIM
    if ":published" in update_expression:
        return Step.MARK
    if "lease_expires_at = :zero" in update_expression:
        return Step.RELEASE
    return Step.OTHER


def _published_event_id(form: dict[str, str]) -> str | None:
    for key, value in form.items():
        # MessageAttributes.entry.N.Name=event_id, MessageAttributes.entry.N.Value.StringValue=<id>
        if key.startswith("MessageAttributes.entry.") and key.endswith(".Name") and value == "event_id":
            return form.get(key.removesuffix(".Name") + ".Value.StringValue")
    return None


def _error(operation: Operation, status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    message = f"injected by the fault proxy: {code}"
    if operation.service == "sns":
        body = (
            f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
        ).encode()
        return status, {"content-type": "text/xml"}, body
    prefix = "com.amazonaws.dynamodb.v20120810#" if operation.service == "dynamodb" else ""
    body = json.dumps({"__type": f"{prefix}{code}", "message": message}).encode()
    return status, {"content-type": "application/x-amz-json-1.0"}, body


def throttling_error(operation: Operation) -> tuple[int, dict[str, str], bytes]:
    """The answer the service gives when its throughput is exceeded."""
    code = {
        "dynamodb": "ProvisionedThroughputExceededException",
        "sns": "Throttling",
        "secretsmanager": "ThrottlingException",
    }.get(operation.service, "Throttling")
    return _error(operation, 400, code)


def server_error(operation: Operation) -> tuple[int, dict[str, str], bytes]:
    code = "InternalFailure" if operation.service == "sns" else "InternalServerError"
    return _error(operation, 500, code)


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        operation = classify(headers, body)
        decision = self.server.decide(operation)
        action = decision.action
        upstream: tuple[int, dict[str, str], bytes] | None = None
        if action in (Action.FORWARD, Action.ERROR_AFTER, Action.HANG_AFTER, Action.INTERRUPT_AFTER):
            upstream = self.server.forward(self.command, self.path, headers, body)
        self.server.record(Exchange(time.time(), operation, action, upstream[0] if upstream else None))
        if action is Action.FORWARD and upstream is not None:
            self._reply(*upstream)
        elif action is Action.THROTTLE:
            self._reply(*throttling_error(operation))
        elif action in (Action.ERROR_BEFORE, Action.ERROR_AFTER):
            self._reply(*server_error(operation))
        elif action in (Action.HANG_BEFORE, Action.HANG_AFTER):
            self._hold()
        else:  # INTERRUPT_AFTER
            if decision.after_forward is not None:
                decision.after_forward()
            self.close_connection = True

    def _hold(self) -> None:
        """Wait, answering nothing, until the caller closes the connection (its read timeout) or the proxy stops."""
        deadline = time.monotonic() + MAX_HOLD_SECONDS
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable and not self.connection.recv(1, 0x2):  # MSG_PEEK: b"" once the caller has closed
                break
        self.close_connection = True

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        # The emulator's server and date headers would come twice (send_response adds this server's).
        try:
            write_response(self, status, {k: v for k, v in headers.items() if k not in ("server", "date")}, body)
        except (BrokenPipeError, ConnectionResetError):
            # the caller is gone: its environment was killed, or its read timed out. Not an error of the proxy's
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


class FaultProxy(ThreadingHTTPServer):
    """An HTTP proxy on loopback in front of the AWS emulator at ``upstream``.

    ``rule`` decides what to do with each :class:`Operation` (forward by default); :attr:`exchanges` is the log.
    Start it with :meth:`start`, stop it with :meth:`stop`.
    """

    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        upstream: str,
        *,
        rule: Callable[[Operation], Decision] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        require_loopback(host)
        parts = urlsplit(require_loopback_endpoint(upstream))
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule = rule
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def decide(self, operation: Operation) -> Decision:
        return FORWARD if self.rule is None else self.rule(operation)

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k not in ("connection", "keep-alive")}
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def start(self) -> str:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
