"""Build API Gateway HTTP API (payload format 2.0) events the way API Gateway does."""

from __future__ import annotations

import base64
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

WEBHOOK_PATH: Final = "/webhooks/stack"
ROUTE_KEY: Final = f"POST {WEBHOOK_PATH}"
# API Gateway passes these content types as text; anything else arrives base64-encoded.
_TEXT_TYPES: Final = ("application/json", "text/", "application/xml", "application/javascript")


def is_text_content(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(_TEXT_TYPES)


def http_api_event(
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    path: str = WEBHOOK_PATH,
    source_ip: str = "127.0.0.1",
    force_base64: bool | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event: header names lower-cased (repeated ones joined with commas), the body base64-encoded
    unless it is UTF-8 text of a text content type."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    encode = force_base64
    if encode is None:
        encode = not is_text_content(lowered.get("content-type"))
        if not encode:
            try:
                body.decode()
            except UnicodeDecodeError:
                encode = True
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if encode else body.decode(),
        "isBase64Encoded": encode,
    }
