"""API Gateway HTTP API (payload v2) in and out: the one place that maps every outcome to an HTTP status."""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from .aws_calls import invocation_deadline
from .errors import (
    BadRequestError,
    ClaimInProgressError,
    DependencyError,
    NoUsableSecretError,
    PayloadTooLargeError,
    SignatureError,
)
from .ingest import Outcome, WebhookRequest
from .observability import (
    DEPENDENCY_FAILURE,
    DUPLICATE,
    IN_PROGRESS,
    INTERNAL_ERROR,
    PUBLISHED,
    PUBLISHED_NOT_RECORDED,
    PUBLISHED_TO_FALLBACK,
    PUBLISHED_TO_FALLBACK_NOT_RECORDED,
    REJECTED,
    SECRET_NOT_CONFIGURED,
    log_outcome,
    logger,
    start_invocation,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .ingest import IngestService

_JSON_HEADERS = {"content-type": "application/json"}
# One encoder for every answer: json.dumps with options builds a new one per call.
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode
# Seconds a sender should wait before retrying after a 409 or 503; Svix applies its own schedule anyway.
_RETRY_AFTER = "5"


def request_from_event(event: object) -> WebhookRequest:
    """Extract the raw body (base64-decoded when flagged) and the headers from an HTTP API v2 event."""
    if not isinstance(event, dict):
        raise BadRequestError("event_not_an_object")  # a direct invoke may pass any JSON value
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
    return {"statusCode": status, "headers": headers, "body": _ENCODE_JSON(payload)}


def handle_invocation(service: IngestService, event: object, context: object) -> dict[str, Any]:
    """One Lambda invocation, whatever its event and context hold: bind its log keys, then serve the event.

    Never raises, and writes exactly one outcome line. ``start_invocation`` reads the context defensively, but a
    context object is the runtime's (or a caller's): should reading it still fail, the invocation is answered with
    the log keys cleared rather than left unanswered with the previous invocation's keys.
    """
    try:
        start_invocation(event, context)
    except Exception:
        logger.clear_state()
    # Every AWS call is bounded by the context's remaining time, so the answer and its outcome line come before
    # Lambda's timeout whatever the dependencies do.
    with invocation_deadline(context):
        return handle_http_event(service, event)


def handle_http_event(service: IngestService, event: object) -> dict[str, Any]:
    """Serve one API Gateway event: never raises; every answer has one outcome line (its log and metrics)."""
    try:
        request = request_from_event(event)
        result = service.ingest(request)
    except SignatureError as exc:
        return _reject(401, "invalid_signature", exc.reason)
    except PayloadTooLargeError as exc:
        log_outcome("rejected", REJECTED, outcome="rejected", reason="payload_too_large", bytes=exc.size)
        return response(413, {"error": "payload_too_large", "limit_bytes": exc.limit})
    except BadRequestError as exc:
        status = 405 if exc.reason == "method_not_allowed" else 400
        return _reject(status, "bad_request", exc.reason)
    except ClaimInProgressError:
        log_outcome("another delivery of this id is in progress", IN_PROGRESS, outcome="in_progress")
        return response(409, {"error": "in_progress"}, retry_after=True)
    except NoUsableSecretError as exc:
        log_outcome(
            "webhook secret not configured",
            SECRET_NOT_CONFIGURED,
            level=logging.ERROR,
            outcome="unavailable",
            detail=str(exc),
        )
        return response(503, {"error": "secret_not_configured"}, retry_after=True)
    except DependencyError as exc:
        log_outcome(
            "dependency failed",
            DEPENDENCY_FAILURE,
            level=logging.ERROR,
            outcome="unavailable",
            dependency=exc.service,
            detail=exc.detail,
        )
        return response(503, {"error": "dependency_unavailable", "service": exc.service}, retry_after=True)
    except Exception:
        # A bug, not bad input: 500 so that the sender retries; nothing was acknowledged, nothing is lost.
        log_outcome("unexpected error", INTERNAL_ERROR, level=logging.ERROR, exc_info=True, outcome="error")
        return response(500, {"error": "internal_error"})

    if result.outcome is Outcome.DUPLICATE:
        log_outcome("duplicate acknowledged", DUPLICATE, outcome="duplicate")
        return response(200, {"status": "duplicate", "event_id": result.event_id})
    if result.recorded:
        metrics = PUBLISHED if result.event.known else PUBLISHED_TO_FALLBACK
    else:
        # Still a 2xx: the message is out, and a 5xx would make the sender publish it again.
        metrics = PUBLISHED_NOT_RECORDED if result.event.known else PUBLISHED_TO_FALLBACK_NOT_RECORDED
    log_outcome(
        "published" if result.recorded else "published, record not marked",
        metrics,
        level=logging.INFO if result.recorded else logging.WARNING,
        outcome="published",
        recorded=result.recorded,
        topic_arn=result.topic_arn,
        message_id=result.message_id,
        attempt=result.attempt,
        invalid_reason=result.event.invalid_reason,
        event_created_at=result.event_created_at,
        delivery_lag_ms=result.delivery_lag_ms,
    )
    return response(200, {"status": "published", "event_id": result.event_id, "message_id": result.message_id})


def _reject(status: int, error: str, reason: str) -> dict[str, Any]:
    log_outcome("rejected", REJECTED, outcome="rejected", reason=reason)
    return response(status, {"error": error, "reason": reason})
