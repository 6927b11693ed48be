"""``JsonLogFormatter`` writes exactly what Powertools' ``LambdaPowertoolsFormatter`` writes, only faster.

Both formatters get the same settings (serializer, deserializer, keys) and format the same records; the text must be
identical, key order included. The records are generated: levels, messages, extras that collide with reserved
names, keys appended or set to None, exceptions, stack info, thread-local keys, changed default keys.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from hypothesis import given, settings
from hypothesis import strategies as st

from stack_webhook_fanout.log_formatter import JsonLogFormatter
from stack_webhook_fanout.observability import PUBLISHED

_STD_LOGGER = logging.getLogger("test-log-formatter")
_KEY_NAMES = (
    "outcome",
    "reason",
    "event_id",
    "correlation_id",
    "exception",
    "exception_name",
    "stack_trace",
    "xray_trace_id",
    "level",
    "location",
    "timestamp",
    "message_id",
    "_aws",
    "Received",
    "service",
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _pair(**keys: Any) -> tuple[LambdaPowertoolsFormatter, JsonLogFormatter]:
    ours = JsonLogFormatter(service="svc", **keys)
    theirs = LambdaPowertoolsFormatter(
        service="svc", json_serializer=ours.json_serializer, json_deserializer=ours.json_deserializer, **keys
    )
    return theirs, ours


def _formatted(formatter: logging.Formatter, record: logging.LogRecord) -> tuple[str, str]:
    """The text, or the error Powertools raises for a key it cannot format (both must fail alike)."""
    try:
        return "text", formatter.format(record)
    except ValueError as exc:
        return "error", str(exc)


def _record(
    level: int, msg: Any, args: tuple[Any, ...], extra: dict[str, Any], exc: bool, stack: bool
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return _STD_LOGGER.makeRecord(
        _STD_LOGGER.name,
        level,
        "x.py",
        7,
        msg,
        args,
        exc_info,
        "handler",
        extra,
        "Stack (most recent call last)" if stack else None,
    )


@settings(max_examples=300, deadline=None)
@given(
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]),
    msg=st.text(max_size=30)
    | st.just('{"json": "message"}')
    | st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3),
    with_args=st.booleans(),
    extra=st.dictionaries(st.sampled_from(_KEY_NAMES), _VALUES, max_size=6),
    appended=st.dictionaries(st.sampled_from(_KEY_NAMES), _VALUES, max_size=5),
    exc=st.booleans(),
    stack=st.booleans(),
    thread_keys=st.dictionaries(st.sampled_from(_KEY_NAMES), _SCALARS, max_size=2),
    serialize_stacktrace=st.booleans(),
)
def test_formats_exactly_as_powertools(
    level: int,
    msg: Any,
    with_args: bool,
    extra: dict[str, Any],
    appended: dict[str, Any],
    exc: bool,
    stack: bool,
    thread_keys: dict[str, Any],
    serialize_stacktrace: bool,
) -> None:
    theirs, ours = _pair(serialize_stacktrace=serialize_stacktrace)
    args: tuple[Any, ...] = ()
    if with_args and isinstance(msg, str):
        msg, args = msg.replace("%", "%%") + " %s", ("arg",)
    for formatter in (theirs, ours):
        formatter.append_keys(**appended)
    record = _record(level, msg, args, extra, exc, stack)
    ours.thread_safe_append_keys(**thread_keys)  # one context variable, shared by both formatters
    try:
        assert _formatted(ours, record) == _formatted(theirs, record)
    finally:
        ours.thread_safe_clear_keys()


@pytest.mark.parametrize(
    "changed",
    [
        {"level": "%(levelno)s"},
        {"location": "%(module)s"},
        {"timestamp": None},
        {"name": "%(name)s"},
        {"process": "%(process)d"},
    ],
)
def test_changed_default_keys_format_as_powertools(changed: dict[str, Any]) -> None:
    theirs, ours = _pair(**changed)
    record = _record(logging.INFO, "published", (), {"outcome": "published"}, exc=False, stack=False)
    assert _formatted(ours, record) == _formatted(theirs, record)


@pytest.mark.parametrize("serialize_stacktrace", [True, False])
@pytest.mark.parametrize("key", ["stack_trace", "exception", "exception_name", "exception_notes", "xray_trace_id"])
def test_extras_named_like_powertools_keys_format_as_powertools(
    key: str, serialize_stacktrace: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    theirs, ours = _pair(serialize_stacktrace=serialize_stacktrace)
    record = _record(logging.INFO, "published", (), {key: "from the caller"}, exc=False, stack=False)
    assert _formatted(ours, record) == _formatted(theirs, record)


def test_outcome_line_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The point of the class: the function's usual record never reaches Powertools' own format().
    theirs, ours = _pair()
    for formatter in (theirs, ours):
        formatter.append_keys(cold_start=False, function_name="f", correlation_id="msg_1", event_id="msg_1")
    extra = {"outcome": "published", "attempt": 1, "invalid_reason": None, **PUBLISHED.fields(cold_start=False)}
    record = _record(logging.INFO, "published", (), extra, exc=False, stack=False)
    expected = theirs.format(record)

    def slow_path(self: Any, record: logging.LogRecord) -> str:
        raise AssertionError("the outcome record took Powertools' format()")

    monkeypatch.setattr(LambdaPowertoolsFormatter, "format", slow_path)
    assert ours.format(record) == expected


def test_a_json_text_message_stays_text() -> None:
    # Powertools' default would parse it and log an object; the function's messages are plain text.
    _, ours = _pair()
    record = _record(logging.INFO, '{"a": 1}', (), {}, exc=False, stack=False)
    assert '"message":"{\\"a\\": 1}"' in ours.format(record)
