"""API Gateway HTTP API (payload v2) in and out: the one place that maps every outcome to an HTTP status."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from .errors import (
    BadRequestError,
    ClaimInProgressError,
    DependencyError,
    PayloadTooLargeError,
    SecretNotConfiguredError,
    SignatureError,
)
from .ingest import Outcome, WebhookRequest
from .observability import count, count_rejection, logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .ingest import IngestService

_JSON_HEADERS = {"content-type": "application/json"}
# Seconds a sender should wait before retrying after a 409 or 503; Svix applies its own schedule anyway.
_RETRY_AFTER = "5"


def request_from_event(event: Mapping[str, Any]) -> WebhookRequest:
    """Extract the raw body (base64-decoded when flagged) and the headers from an HTTP API v2 event."""
    context = event.get("requestContext") or {}
    http = context.get("http") if isinstance(context, dict) else None
    method = http.get("method", "POST") if isinstance(http, dict) else "POST"
    if method != "POST":
        raise BadRequestError("method_not_allowed")
    raw_headers = event.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadRequestError("headers_not_a_map")
    headers = {str(name).lower(): str(value) for name, value in raw_headers.items()}
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise BadRequestError("body_not_text")
    if event.get("isBase64Encoded"):
        try:
            return WebhookRequest(body=base64.b64decode(body, validate=True), headers=headers)
        except ValueError as exc:  # binascii.Error, or a str with non-ASCII characters
            raise BadRequestError("body_not_base64") from exc
    try:
        return WebhookRequest(body=body.encode(), headers=headers)
    except UnicodeEncodeError as exc:
        raise BadRequestError("body_not_utf8") from exc


def response(status: int, payload: Mapping[str, Any], *, retry_after: bool = False) -> dict[str, Any]:
    headers = dict(_JSON_HEADERS)
    if retry_after:
        headers["retry-after"] = _RETRY_AFTER
    return {"statusCode": status, "headers": headers, "body": json.dumps(payload, separators=(",", ":"))}


def handle_http_event(service: IngestService, event: Mapping[str, Any]) -> dict[str, Any]:
    """Serve one API Gateway event: never raises, every failure is a status and a log line saying why."""
    count("Received")
    try:
        request = request_from_event(event)
        result = service.ingest(request)
    except SignatureError as exc:
        return _reject(401, "invalid_signature", exc.reason)
    except PayloadTooLargeError as exc:
        logger.info("rejected", extra={"outcome": "rejected", "reason": "payload_too_large", "bytes": exc.size})
        count_rejection("payload_too_large")
        return response(413, {"error": "payload_too_large", "limit_bytes": exc.limit})
    except BadRequestError as exc:
        status = 405 if exc.reason == "method_not_allowed" else 400
        return _reject(status, "bad_request", exc.reason)
    except ClaimInProgressError:
        logger.info("another delivery of this id is in progress", extra={"outcome": "in_progress"})
        count("InProgress")
        return response(409, {"error": "in_progress"}, retry_after=True)
    except SecretNotConfiguredError as exc:
        logger.error("webhook secret not configured", extra={"outcome": "unavailable", "detail": str(exc)})
        count("SecretNotConfigured")
        return response(503, {"error": "secret_not_configured"}, retry_after=True)
    except DependencyError as exc:
        logger.error(
            "dependency failed",
            extra={"outcome": "unavailable", "dependency": exc.service, "detail": exc.detail},
        )
        count("DependencyFailure")
        return response(503, {"error": "dependency_unavailable", "service": exc.service}, retry_after=True)
    except Exception:
        # A bug, not bad input: 500 so that the sender retries; nothing was acknowledged, nothing is lost.
        logger.exception("unexpected error", extra={"outcome": "error"})
        count("InternalError")
        return response(500, {"error": "internal_error"})

    if result.outcome is Outcome.DUPLICATE:
        logger.info("duplicate acknowledged", extra={"outcome": "duplicate"})
        count("Duplicate")
        return response(200, {"status": "duplicate", "event_id": result.event_id})
    logger.info(
        "published",
        extra={
            "outcome": "published",
            "topic_arn": result.topic_arn,
            "message_id": result.message_id,
            "attempt": result.attempt,
            "invalid_reason": result.event.invalid_reason,
        },
    )
    count("Published")
    if not result.event.known:
        count("PublishedToFallback")
    return response(200, {"status": "published", "event_id": result.event_id, "message_id": result.message_id})


def _reject(status: int, error: str, reason: str) -> dict[str, Any]:
    logger.info("rejected", extra={"outcome": "rejected", "reason": reason})
    count_rejection(reason)
    return response(status, {"error": error, "reason": reason})
