"""The function's settings, read from its environment once at cold start."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .event_types import KNOWN_EVENT_TYPES

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of the ingest function.

    Parameters
    ----------
    table_name:
        DynamoDB table keyed by ``event_id`` (the svix-id). Env ``EVENTS_TABLE_NAME``.
    secret_arn:
        Secrets Manager secret holding one or more ``whsec_`` values. Env ``WEBHOOK_SECRET_ARN``.
    topic_arns:
        Topic ARN of every known event type. Env ``TOPIC_ARNS`` (a JSON object).
    fallback_topic_arn:
        Topic for unknown types and for verified bodies that are not valid events. Env ``FALLBACK_TOPIC_ARN``.
    retention_days:
        How long an event record (and so the dedupe window) lives. Env ``RETENTION_DAYS``, default 30.
    claim_lease_seconds:
        How long a claim blocks other deliveries of the same id; longer than the function timeout so a
        live invocation is never overtaken. Env ``CLAIM_LEASE_SECONDS``, default 15.
    secret_max_age_seconds:
        A secret is trusted at most this long after its last successful read (it is read again from half of
        it). Env ``SECRET_MAX_AGE_SECONDS``, default 300.
    secret_refresh_interval_seconds:
        After a failed read or a failed verification the secret is read at most once per this interval, so a
        rotation is seen quickly but a flood of requests cannot hammer Secrets Manager.
        Env ``SECRET_REFRESH_INTERVAL_SECONDS``, default 10.
    """

    table_name: str
    secret_arn: str
    topic_arns: Mapping[str, str]
    fallback_topic_arn: str
    retention_days: int = 30
    claim_lease_seconds: int = 15
    secret_max_age_seconds: int = 300
    secret_refresh_interval_seconds: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raise ConfigurationError naming what is wrong."""
        env = os.environ if env is None else env
        missing = [
            name
            for name in ("EVENTS_TABLE_NAME", "WEBHOOK_SECRET_ARN", "TOPIC_ARNS", "FALLBACK_TOPIC_ARN")
            if not env.get(name)
        ]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        try:
            topic_arns = json.loads(env["TOPIC_ARNS"])
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"TOPIC_ARNS is not JSON: {exc}") from exc
        if not isinstance(topic_arns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in topic_arns.items()
        ):
            raise ConfigurationError("TOPIC_ARNS must be a JSON object of event type to topic ARN")
        absent = [t for t in KNOWN_EVENT_TYPES if t not in topic_arns]
        if absent:
            raise ConfigurationError(f"TOPIC_ARNS lacks topics for: {', '.join(absent)}")
        return cls(
            table_name=env["EVENTS_TABLE_NAME"],
            secret_arn=env["WEBHOOK_SECRET_ARN"],
            topic_arns=topic_arns,
            fallback_topic_arn=env["FALLBACK_TOPIC_ARN"],
            retention_days=_positive_int(env, "RETENTION_DAYS", 30),
            claim_lease_seconds=_positive_int(env, "CLAIM_LEASE_SECONDS", 15),
            secret_max_age_seconds=_positive_int(env, "SECRET_MAX_AGE_SECONDS", 300),
            secret_refresh_interval_seconds=_positive_int(env, "SECRET_REFRESH_INTERVAL_SECONDS", 10),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value
