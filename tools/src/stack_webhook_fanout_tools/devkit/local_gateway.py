"""A local stand-in for API Gateway: serves ``POST /webhooks/stack`` on loopback through the real Lambda handler.

Each HTTP request becomes an HTTP API payload v2 event built as API Gateway builds it (lower-cased headers, base64
bodies for non-text content types, a request context), and the handler's answer becomes the HTTP response.
One handler call at a time, like one Lambda execution environment.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from .apigw import WEBHOOK_PATH, http_api_event

if TYPE_CHECKING:
    from collections.abc import Callable

    LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

#: API Gateway HTTP APIs refuse payloads above 10 MB with 413 before the function runs.
MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024


class LocalContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "IngestFunction-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def require_loopback(host: str) -> None:
    """Refuse to bind or connect anywhere but this machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing non-loopback address {host!r}: local mode only talks to this machine")


class _Handler(BaseHTTPRequestHandler):
    server: LocalGateway
    protocol_version = "HTTP/1.1"
    # The status line and headers go out in one write and the body in another: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the first write, about 40 ms per request on a keep-alive connection.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if path != WEBHOOK_PATH or method != "POST":
            self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = http_api_event(body, headers, method=method, path=path, source_ip=self.client_address[0])
        with self.server.invoke_lock:
            try:
                result = self.server.lambda_handler(event, LocalContext())
            except Exception:  # what API Gateway answers when the function itself fails
                result = {"statusCode": 500, "body": '{"message":"Internal Server Error"}'}
        out_headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        out_body = str(result.get("body") or "").encode()
        self._reply(int(result.get("statusCode", 200)), out_headers, out_body)
        if self.server.on_response is not None:
            self.server.on_response(event, result)

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        write_response(self, status, headers, body)

    def log_message(self, format: str, *args: Any) -> None:
        # The handler logs each request itself, without payloads; the default access log adds nothing.
        return


#: Headers a response's writer sets itself (from the body it sends) or that concern one connection only.
_HOP_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def write_response(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """Send one whole response (header names lower-cased) on a keep-alive connection: its own content-length."""
    handler.send_response(status)
    for name, value in headers.items():
        if name not in _HOP_HEADERS:
            handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class LocalGateway(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` in front of a Lambda handler.

    ``invoke_lock`` serialises handler calls by default (one execution environment); pass ``concurrent=True`` to
    let requests run the handler in parallel, as several warm environments would.
    """

    daemon_threads = True
    # The listen backlog (socketserver's default is 5). A burst of deliveries connects faster than the one accepting
    # thread takes connections: with 5, some of 50 concurrent connections were reset. The kernel caps it at
    # net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024

    def __init__(
        self,
        lambda_handler: LambdaHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        concurrent: bool = False,
        on_response: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    ) -> None:
        require_loopback(host)
        self.lambda_handler = lambda_handler
        self.on_response = on_response
        self.invoke_lock: threading.Lock | _NoLock = _NoLock() if concurrent else threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{WEBHOOK_PATH}"


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def json_body(result: dict[str, Any]) -> Any:
    """The handler's JSON body, parsed."""
    return json.loads(result.get("body") or "null")
