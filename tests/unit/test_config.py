"""``config.py``: settings from the environment, and an error naming what is wrong for each bad value."""

from __future__ import annotations

import json

import pytest

from stack_webhook_fanout.config import Settings
from stack_webhook_fanout.errors import ConfigurationError
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

TOPICS = {t: f"arn:aws:sns:us-east-1:123456789012:{t.replace('.', '-')}" for t in KNOWN_EVENT_TYPES}
REQUIRED = ("EVENTS_TABLE_NAME", "WEBHOOK_SECRET_ARN", "TOPIC_ARNS", "FALLBACK_TOPIC_ARN")


def env(**overrides: str) -> dict[str, str]:
    values = {
        "EVENTS_TABLE_NAME": "events",
        "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf",
        "TOPIC_ARNS": json.dumps(TOPICS),
        "FALLBACK_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:fallback",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v != "<unset>"}


def test_from_env_happy_path_with_defaults() -> None:
    settings = Settings.from_env(env())
    assert settings == Settings(
        table_name="events",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf",
        topic_arns=TOPICS,
        fallback_topic_arn="arn:aws:sns:us-east-1:123456789012:fallback",
        retention_days=30,
        claim_lease_seconds=15,
        secret_max_age_seconds=300,
        secret_refresh_interval_seconds=10,
    )


def test_from_env_reads_every_tunable() -> None:
    settings = Settings.from_env(
        env(
            RETENTION_DAYS="7",
            CLAIM_LEASE_SECONDS="20",
            SECRET_MAX_AGE_SECONDS="60",
            SECRET_REFRESH_INTERVAL_SECONDS="3",
        )
    )
    assert (
        settings.retention_days,
        settings.claim_lease_seconds,
        settings.secret_max_age_seconds,
        settings.secret_refresh_interval_seconds,
    ) == (7, 20, 60, 3)


def test_from_env_empty_tunable_means_default() -> None:
    assert Settings.from_env(env(RETENTION_DAYS="")).retention_days == 30


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(RETENTION_DAYS="9").items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().retention_days == 9


def test_from_env_extra_topics_are_allowed() -> None:
    topics = {**TOPICS, "session.created": "arn:aws:sns:us-east-1:123456789012:session-created"}
    assert (
        Settings.from_env(env(TOPIC_ARNS=json.dumps(topics))).topic_arns["session.created"].endswith("session-created")
    )


@pytest.mark.parametrize("missing", REQUIRED)
def test_from_env_missing_variable_is_named(missing: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env(**{missing: "<unset>"}))
    assert str(raised.value) == f"missing environment variables: {missing}"


@pytest.mark.parametrize("empty", REQUIRED)
def test_from_env_empty_variable_is_missing(empty: str) -> None:
    with pytest.raises(ConfigurationError, match=empty):
        Settings.from_env(env(**{empty: ""}))


def test_from_env_all_missing_are_named_together() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({})
    assert str(raised.value) == f"missing environment variables: {', '.join(REQUIRED)}"


@pytest.mark.parametrize("value", ["not json", "{", "{'user.created': 'arn'}"])
def test_from_env_topic_arns_not_json(value: str) -> None:
    with pytest.raises(ConfigurationError, match="TOPIC_ARNS is not JSON"):
        Settings.from_env(env(TOPIC_ARNS=value))


@pytest.mark.parametrize(
    "value",
    [
        "[]",
        '["arn:a"]',
        '"arn:a"',
        "1",
        "null",
        json.dumps({**TOPICS, "user.created": 5}),
        json.dumps({**TOPICS, "user.created": ""}),
        json.dumps({**TOPICS, "user.created": None}),
        json.dumps({**TOPICS, "user.created": ["arn:a"]}),
    ],
)
def test_from_env_topic_arns_not_an_object_of_strings(value: str) -> None:
    with pytest.raises(ConfigurationError, match="TOPIC_ARNS must be a JSON object"):
        Settings.from_env(env(TOPIC_ARNS=value))


@pytest.mark.parametrize("absent", KNOWN_EVENT_TYPES)
def test_from_env_topic_arns_missing_a_known_type(absent: str) -> None:
    topics = {t: arn for t, arn in TOPICS.items() if t != absent}
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env(TOPIC_ARNS=json.dumps(topics)))
    assert str(raised.value) == f"TOPIC_ARNS lacks topics for: {absent}"


def test_from_env_topic_arns_missing_several_types_names_them_all() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env(TOPIC_ARNS=json.dumps({"user.created": "arn:a"})))
    for event_type in KNOWN_EVENT_TYPES[1:]:
        assert event_type in str(raised.value)


@pytest.mark.parametrize(
    "name", ["RETENTION_DAYS", "CLAIM_LEASE_SECONDS", "SECRET_MAX_AGE_SECONDS", "SECRET_REFRESH_INTERVAL_SECONDS"]
)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "must be an integer"),
        ("1.5", "must be an integer"),
        ("30d", "must be an integer"),
        ("0", "must be positive"),
        ("-5", "must be positive"),
    ],
)
def test_from_env_bad_int_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env(**{name: value}))
    assert str(raised.value).startswith(f"{name} {message}")


def test_from_env_int_with_spaces_is_read() -> None:
    # int() tolerates surrounding whitespace, as an env file might carry it
    assert Settings.from_env(env(RETENTION_DAYS=" 14 ")).retention_days == 14
