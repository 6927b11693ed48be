"""Sign bodies as Svix does, for test events, local runs and smoke tests against a deployed stack."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from stack_webhook_fanout.event_time import (
    BASE62_ALPHABET,
    KSUID_EPOCH_MS,
    KSUID_LENGTH,
    MESSAGE_ID_PREFIX,
    RANDOM_BITS,
)


def new_secret() -> str:
    """A fresh endpoint secret in Svix's format: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id(created_at_ms: int | None = None) -> str:
    """An id as the Svix server makes them: ``msg_`` + the base62 KSUID of ``created_at_ms`` (default: now) in Svix's
    millisecond variant (5 bytes of 1/256 seconds since the KSUID epoch, 15 random), so that ``make send`` and the
    tests deliver what Stack's deliveries carry: an id that ``event_time.event_created_at_ms`` reads the time of."""
    when_ms = time.time() * 1000 if created_at_ms is None else created_at_ms
    value = round((when_ms - KSUID_EPOCH_MS) * 256 / 1000) << RANDOM_BITS | secrets.randbits(RANDOM_BITS)
    digits = []
    for _ in range(KSUID_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(BASE62_ALPHABET[digit])
    return MESSAGE_ID_PREFIX + "".join(reversed(digits))


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
