"""Sign bodies as Svix does, for test events, local runs and smoke tests against a deployed stack."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    """A fresh endpoint secret in Svix's format: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id() -> str:
    """An id shaped like Svix's (``msg_`` + 27 characters)."""
    return "msg_" + secrets.token_urlsafe(20)[:27]


def sign_headers(
    secret: str | list[str],
    body: bytes | str,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Return ``svix-id``, ``svix-timestamp`` and ``svix-signature`` for ``body`` (one ``v1`` entry per secret)."""
    text = body.decode() if isinstance(body, bytes) else body
    msg_id = msg_id or new_message_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    keys = [secret] if isinstance(secret, str) else secret
    signature = " ".join(Webhook(key).sign(msg_id, when, text) for key in keys)
    return {"svix-id": msg_id, "svix-timestamp": str(timestamp), "svix-signature": signature}
