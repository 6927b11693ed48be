"""Every error the ingest path raises on purpose. ``http_api.py`` maps each to one HTTP status."""

from __future__ import annotations


class FanoutError(Exception):
    """Base class of the errors this package raises on purpose."""


class BadRequestError(FanoutError):
    """The request is malformed in a way the sender cannot fix by retrying (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(FanoutError):
    """The Svix signature headers are missing, malformed, stale or do not match (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PayloadTooLargeError(FanoutError):
    """The body would not fit in one SNS message together with its attributes (413)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes exceeds {limit}")
        self.size = size
        self.limit = limit


class NoUsableSecretError(FanoutError):
    """No webhook secret may be trusted: it is unset, holds no ``whsec_`` value, was deleted, or reading it was
    refused (a revocation). 503 until an operator fixes it; unlike :class:`DependencyError`, not an outage."""


class DependencyError(FanoutError):
    """An AWS call failed in a way a later retry can fix (503). ``service`` names the dependency;
    ``may_have_succeeded`` is False only when the failure proves the call did not take effect (see
    ``aws_calls.dependency_error``, the one place that maps botocore's errors)."""

    def __init__(self, service: str, detail: str, *, may_have_succeeded: bool = False) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.detail = detail
        self.may_have_succeeded = may_have_succeeded


class ClaimInProgressError(FanoutError):
    """Another invocation holds the claim on this event id and its lease has not expired (409)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


class ConfigurationError(FanoutError):
    """The function's environment is incomplete or invalid; raised at cold start."""
