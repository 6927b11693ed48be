"""Svix signature verification on the ``standardwebhooks`` core.

``svix.webhooks.Webhook`` is a thin wrapper over ``standardwebhooks.Webhook`` whose package import costs about
380 ms of cold start (it loads svix's whole API client); the core costs about 16 ms. This module does what the
wrapper does (map ``svix-*`` headers onto ``webhook-*``, preferring ``svix-*``) and what neither does: it turns
every malformed input into a :class:`SignatureError` instead of a ``ValueError``/``binascii.Error``/
``UnicodeDecodeError`` that would surface as a 500. ``tests/unit/test_signature_differential.py`` proves its verdict
equals svix's on random and adversarial inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .errors import SignatureError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# The reasons standardwebhooks gives, as short codes for logs, metrics and the 401 body.
_REASONS: Final[dict[str, str]] = {
    "Missing required headers": "missing_headers",
    "Invalid Signature Headers": "invalid_timestamp",
    "Message timestamp too old": "timestamp_too_old",
    "Message timestamp too new": "timestamp_too_new",
    "No matching signature found": "no_matching_signature",
}
_HEADER_NAMES: Final = ("id", "timestamp", "signature")


def standard_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the ``webhook-id/-timestamp/-signature`` values, taken from ``svix-*`` first as svix does.

    Header names may come in any case. An absent header maps to ``""``, which verification rejects.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    return {
        f"webhook-{name}": lowered.get(f"svix-{name}", lowered.get(f"webhook-{name}", "")) for name in _HEADER_NAMES
    }


class SignatureVerifier:
    """Verify bodies against one or more endpoint secrets (several while a secret is rotated)."""

    __slots__ = ("_webhooks",)

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self._webhooks = tuple(Webhook(secret) for secret in secrets)

    def verify_standard(self, body: bytes, mapped: dict[str, str]) -> None:
        """Return if any secret verifies ``body`` with the headers mapped by :func:`standard_headers` (the ingest
        path reads the id and timestamp from them too); raise :class:`SignatureError` otherwise."""
        first_reason: str | None = None
        # Each secret is tried in full: whether a malformed entry is reached before a matching one depends on
        # the secret, exactly as it does when svix is called once per secret.
        for webhook in self._webhooks:
            try:
                webhook.verify(body, mapped, json_parse=False)
            except WebhookVerificationError as exc:
                reason = _REASONS.get(str(exc), "invalid_signature")
            except UnicodeDecodeError:
                reason = "body_not_utf8"
            except (ValueError, TypeError, OverflowError):
                # ValueError covers binascii.Error (bad base64) and entries without exactly one comma.
                reason = "malformed_signature"
            else:
                return
            if first_reason is None:
                first_reason = reason
        raise SignatureError(first_reason or "invalid_signature")
