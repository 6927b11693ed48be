"""The Lambda entry point ``functions/ingest/app.py`` over in-process moto: a full run, its JSON log lines
(svix-id as correlation id, never payload personal data or the secret), and an import that makes no AWS call."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext

from stack_webhook_fanout.bootstrap import aws_session
from stack_webhook_fanout.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

APP_PATH = Path(__file__).resolve().parents[2] / "functions" / "ingest" / "app.py"


def load_app() -> ModuleType:
    """Import the handler file as Lambda does (it is not a package), as a fresh module each time."""
    spec = importlib.util.spec_from_file_location("ingest_app_under_test", APP_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(function_env: dict[str, str], sink: Any) -> ModuleType:
    return load_app()


@pytest.fixture
def stdout_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What Powertools writes to stdout, as parsed JSON lines: log records and EMF metrics.

    Metrics are printed to ``sys.stdout`` (captured by ``capsys``); the logger's handler holds the ``sys.stdout`` it
    saw when the logger was built, so for this test it writes into a buffer instead, and back afterwards.
    """
    handler: Any = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    everything: list[str] = []

    def read() -> list[dict[str, Any]]:
        text = buffer.getvalue() + capsys.readouterr().out
        buffer.seek(0)
        buffer.truncate()
        everything.append(text)
        # every line Powertools writes is one JSON object
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    read.everything = everything  # type: ignore[attr-defined]
    yield read
    handler.setStream(previous)


def records(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log records among the lines (EMF metric blobs carry ``_aws`` instead of a level)."""
    return [line for line in lines if "level" in line]


def test_lambda_handler_full_run_logs_correlation_id_and_no_personal_data(
    app: ModuleType,
    signed: Any,
    example_bodies: dict[str, str],
    webhook_secret: str,
    stdout_logs: Callable[[], list[dict[str, Any]]],
    sink: Any,
) -> None:
    # given deliveries carrying personal data: a new user, a renamed user, a retry and a forged copy
    user = json.loads(example_bodies["user.created"])["data"]
    renamed = json.loads(example_bodies["user.updated"])["data"]
    personal = {
        user["primary_email"],
        user["display_name"],
        renamed["display_name"],
        *(p["email"] for p in user["oauth_providers"] if p.get("email")),
    }
    assert "jane@example.com" in personal
    created = signed(example_bodies["user.created"])
    updated = signed(example_bodies["user.updated"])
    forged = signed(example_bodies["user.created"])
    forged_event = forged.apigw_event()
    forged_event["body"] = forged_event["body"].replace(user["display_name"], "Mallory")

    runs = [
        (created.apigw_event(), created.event_id, 200),
        (updated.apigw_event(), updated.event_id, 200),
        (created.apigw_event(), created.event_id, 200),  # a retry: duplicate
        (forged_event, forged.event_id, 401),
    ]
    stdout_logs()  # drop what came before the first invocation
    all_lines: list[dict[str, Any]] = []
    for event, svix_id, status in runs:
        # when each is handled by the Lambda entry point
        result = app.lambda_handler(event, LocalContext())
        assert result["statusCode"] == status
        lines = stdout_logs()
        all_lines += lines
        # then every log record of the invocation carries its svix-id as correlation id
        logged = records(lines)
        assert logged, "each invocation logs its outcome"
        assert {line.get("correlation_id") for line in logged} == {svix_id}
        # and no key appended by an earlier invocation leaks into this one
        assert {line["event_id"] for line in logged if "event_id" in line} <= {svix_id}
        assert {line["service"] for line in logged} == {"stack-webhook-fanout"}

    outcomes = [line.get("outcome") for line in records(all_lines)]
    assert outcomes == ["published", "published", "duplicate", "rejected"]
    assert len(sink.drain()) == 2
    # and nothing written anywhere holds personal data, the body, or the secret (whole or its key part)
    raw = "".join(stdout_logs.everything)  # type: ignore[attr-defined]
    for needle in (*personal, webhook_secret, webhook_secret.removeprefix("whsec_"), example_bodies["user.created"]):
        assert needle not in raw
    # the metrics of the run were flushed as EMF
    assert any("_aws" in line for line in all_lines)


def test_lambda_handler_secret_not_configured_logs_how_to_set_it(
    app: ModuleType,
    signed: Any,
    secretsmanager: Any,
    secret_arn: str,
    stdout_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString="REPLACE_ME")
    stdout_logs()
    result = app.lambda_handler(signed('{"type":"stack.test","data":{"message":"hi"}}').apigw_event(), LocalContext())
    assert result["statusCode"] == 503
    [error] = [line for line in records(stdout_logs()) if line["level"] == "ERROR"]
    assert error["message"] == "webhook secret not configured"
    assert "put-secret-value" in error["detail"]
    assert "REPLACE_ME" not in json.dumps(error)


def test_lambda_handler_import_makes_no_aws_call(
    function_env: dict[str, str], sink: Any, signed: Any, hook: Callable[..., None]
) -> None:
    # given a counter on every request any client of the function's botocore session sends
    sent: list[str] = []
    session = aws_session()  # its events reach every client it creates
    hook(session, "before-send", lambda request, **_: sent.append(request.url))
    # when the handler file is imported
    app = load_app()
    # then nothing was sent; the first invocation is what talks to AWS
    assert sent == []
    result = app.lambda_handler(signed('{"type":"stack.test","data":{"message":"hi"}}').apigw_event(), LocalContext())
    assert result["statusCode"] == 200
    assert len(sent) >= 4  # the secret, the claim, the publication, the mark
