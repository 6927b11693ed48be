"""Every invocation of ``functions/ingest/app.py``'s ``lambda_handler`` gets an answer and writes one outcome line,
whatever the event and the context hold: a direct invoke may pass any JSON value, headers that are not a map, the
same header name in several cases, null context fields. Over in-process moto (the unit tier's backend)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext

from stack_webhook_fanout.observability import logger

from .test_lambda_handler import load_app

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
HEADER_NAMES = st.sampled_from(
    ["svix-id", "SVIX-ID", "Svix-Id", "webhook-id", "Webhook-Id", "svix-timestamp", "svix-signature", "content-type"]
) | st.text(max_size=12)
HEADERS = st.dictionaries(HEADER_NAMES, JSON_VALUES, max_size=6) | JSON_VALUES
EVENTS = JSON_VALUES | st.fixed_dictionaries(
    {},
    optional={
        "headers": HEADERS,
        "body": JSON_VALUES,
        "isBase64Encoded": JSON_VALUES,
        "requestContext": JSON_VALUES
        | st.fixed_dictionaries({}, optional={"http": JSON_VALUES | st.fixed_dictionaries({"method": JSON_VALUES})}),
    },
)
CONTEXTS = st.one_of(
    st.none(),
    st.builds(LocalContext),
    st.builds(
        SimpleNamespace,
        function_name=JSON_SCALARS,
        memory_limit_in_mb=JSON_SCALARS,
        invoked_function_arn=JSON_SCALARS,
        aws_request_id=JSON_SCALARS,
    ),
)


@pytest.fixture
def app(function_env: dict[str, str], sink: Any) -> ModuleType:
    return load_app()


@pytest.fixture
def outcome_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The outcome lines written since the last call: JSON lines with an ``outcome`` key (log level permitting) or
    bare EMF documents (when the level hides the line), each one invocation's."""
    handler: Any = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        text = buffer.getvalue() + capsys.readouterr().out
        buffer.seek(0)
        buffer.truncate()
        # split on newlines only: str.splitlines would also split inside values holding U+0085 or U+2028
        lines = [json.loads(line) for line in text.split("\n") if line.strip()]
        return [line for line in lines if "_aws" in line]

    yield read
    handler.setStream(previous)


def assert_answered_once(app: ModuleType, event: object, context: object, read: Callable[[], Any]) -> int:
    read()
    result = app.lambda_handler(event, context)
    status = result["statusCode"]
    assert isinstance(status, int)
    assert isinstance(json.loads(result["body"]), dict)
    lines = read()
    assert len(lines) == 1, lines
    assert lines[0]["Received"] == 1
    return status


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=EVENTS, context=CONTEXTS)
def test_any_event_and_context_get_a_4xx_answer_and_one_outcome_line(
    app: ModuleType, outcome_lines: Callable[[], Any], event: object, context: object
) -> None:
    # none of these carries a valid signature: each is bad input, so a 4xx, never a 5xx and never an exception
    status = assert_answered_once(app, event, context, outcome_lines)
    assert 400 <= status < 500


def test_same_header_in_two_cases_one_null_is_answered(
    app: ModuleType, outcome_lines: Callable[[], Any], signed: Any
) -> None:
    # given: the direct invoke: svix-id null, SVIX-ID the id (start_invocation raised TypeError on it)
    event = {"headers": {"svix-id": None, "SVIX-ID": "msg_two_cases"}, "body": "{}"}
    # when / then: answered (401: no signature), one outcome line, the text value used as the correlation id
    read = outcome_lines
    read()
    result = app.lambda_handler(event, LocalContext())
    lines = read()
    assert result["statusCode"] == 401
    assert len(lines) == 1
    assert lines[0]["correlation_id"] == "msg_two_cases"


class _BrokenContext:
    """A context whose attributes raise something other than AttributeError when read."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"cannot read {name}")


def test_a_context_that_raises_when_read_still_gets_an_answer_with_fresh_log_keys(
    app: ModuleType, outcome_lines: Callable[[], Any]
) -> None:
    # given: an earlier invocation that bound its correlation id
    app.lambda_handler({"headers": {"svix-id": "msg_earlier"}, "body": "{}"}, LocalContext())
    outcome_lines()
    # when: the next invocation's context cannot be read
    result = app.lambda_handler({"headers": {}, "body": "{}"}, _BrokenContext())
    lines = outcome_lines()
    # then: answered, one outcome line, and the earlier invocation's keys are not on it
    assert result["statusCode"] == 401
    assert len(lines) == 1
    assert "correlation_id" not in lines[0]
    assert "msg_earlier" not in json.dumps(lines[0])


@pytest.mark.parametrize("event", [None, [], "text", 3, True])
def test_an_event_that_is_not_an_object_is_a_400(
    app: ModuleType, outcome_lines: Callable[[], Any], event: object
) -> None:
    result = app.lambda_handler(event, LocalContext())
    assert result["statusCode"] == 400
    assert json.loads(result["body"]) == {"error": "bad_request", "reason": "event_not_an_object"}
    [line] = outcome_lines()
    assert line["reason"] == "event_not_an_object"
