"""The outcome line: one Powertools JSON log record per invocation that also carries its metrics as EMF.

Checked here: every metric set makes a valid embedded-metric-format document (each declared dimension and metric is
a top-level member of the right type), the cold start is counted once, the metrics survive a log level that hides
the line, and ``start_invocation`` binds the same keys as Powertools' ``inject_lambda_context`` did.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext

from stack_webhook_fanout import observability
from stack_webhook_fanout.observability import (
    DEPENDENCY_FAILURE,
    DUPLICATE,
    IN_PROGRESS,
    INTERNAL_ERROR,
    METRICS_NAMESPACE,
    PUBLISHED,
    PUBLISHED_NOT_RECORDED,
    PUBLISHED_TO_FALLBACK,
    PUBLISHED_TO_FALLBACK_NOT_RECORDED,
    REJECTED,
    SECRET_NOT_CONFIGURED,
    SERVICE_NAME,
    MetricSet,
    correlation_id,
    log_outcome,
    logger,
    start_invocation,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

METRIC_SETS = {
    "published": (PUBLISHED, {"Received", "Published"}),
    "published_to_fallback": (PUBLISHED_TO_FALLBACK, {"Received", "Published", "PublishedToFallback"}),
    "published_not_recorded": (PUBLISHED_NOT_RECORDED, {"Received", "Published", "PublishedNotRecorded"}),
    "published_to_fallback_not_recorded": (
        PUBLISHED_TO_FALLBACK_NOT_RECORDED,
        {"Received", "Published", "PublishedToFallback", "PublishedNotRecorded"},
    ),
    "duplicate": (DUPLICATE, {"Received", "Duplicate"}),
    "rejected": (REJECTED, {"Received", "Rejected", "RejectedByReason"}),
    "in_progress": (IN_PROGRESS, {"Received", "InProgress"}),
    "secret_not_configured": (SECRET_NOT_CONFIGURED, {"Received", "SecretNotConfigured"}),
    "dependency_failure": (DEPENDENCY_FAILURE, {"Received", "DependencyFailure"}),
    "internal_error": (INTERNAL_ERROR, {"Received", "InternalError"}),
}
EVENT = {"headers": {"svix-id": "msg_2o4Xa3tYcq3aJ4Vh0ZkP1mG7rQe", "content-type": "application/json"}}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The logger's output (its handler holds the stdout it saw at import)."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability._invocation, "cold_start", False)


# The embedded metric format specification (CloudWatch User Guide, "Specification: Embedded metric format") as a JSON
# Schema, with the CloudWatch limits it refers to: a metric directive's Namespace, Dimensions and Metrics and a metric
# definition's Name, Unit and StorageResolution, no other members; at most 30 dimension keys in a dimension set and 100
# metrics in a directive; Unit one of CloudWatch's StandardUnit values; Timestamp epoch milliseconds.
EMF_UNITS = (
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
    *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second"),
    *("Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second"),
    *("Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"),
)
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "additionalProperties": False,
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 255},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 255},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1, "maxLength": 255},
                                        "Unit": {"enum": list(EMF_UNITS)},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def emf_metrics(document: dict[str, Any]) -> dict[tuple[str, ...], set[str]]:
    """Check ``document`` against the EMF specification; return the metric names per dimension set."""
    jsonschema.validate(document, EMF_SCHEMA)
    aws = document["_aws"]
    assert abs(aws["Timestamp"] - time.time() * 1000) < 60_000  # epoch milliseconds, now
    found: dict[tuple[str, ...], set[str]] = {}
    for directive in aws["CloudWatchMetrics"]:
        assert directive["Namespace"] == METRICS_NAMESPACE
        for metric in directive["Metrics"]:
            # every metric is a target member of the root: a number (or an array of at most 100 numbers)
            value = document[metric["Name"]]
            assert type(value) is int, metric["Name"]
            assert metric["Unit"] == "Count"
            assert value == 1
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) >= 1  # ours always have the service
            for name in dimension_set:
                # every dimension is a target member of the root: a string of at most 1024 characters
                assert isinstance(document[name], str), f"dimension {name} is not a top-level string"
                assert 1 <= len(document[name]) <= 1024
            for metric in directive["Metrics"]:
                found.setdefault(tuple(dimension_set), set()).add(metric["Name"])
    return found


@pytest.mark.parametrize(
    "broken",
    [
        {"_aws": {"CloudWatchMetrics": []}},  # no Timestamp
        {"_aws": {"Timestamp": "now", "CloudWatchMetrics": []}},
        {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "", "Dimensions": [], "Metrics": []}]}},
        {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": [], "X": 1}]}},
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["d"] * 31], "Metrics": []}],
            }
        },
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {"Namespace": "N", "Dimensions": [], "Metrics": [{"Name": "M", "Unit": "Counts"}]}
                ],
            }
        },
    ],
)
def test_the_emf_check_refuses_what_the_specification_refuses(broken: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, EMF_SCHEMA)


@pytest.mark.parametrize("name", METRIC_SETS)
@pytest.mark.usefixtures("warm")
def test_every_outcome_line_is_a_log_record_and_a_valid_emf_document(name: str, log_lines: io.StringIO) -> None:
    metrics, names = METRIC_SETS[name]
    start_invocation(EVENT, LocalContext())
    fields = {"reason": "no_matching_signature"} if metrics.by_reason else {}

    log_outcome("what happened", metrics, outcome=name, **fields)

    [line] = log_lines.getvalue().splitlines()
    document = json.loads(line)
    assert document["message"] == "what happened"
    assert document["outcome"] == name
    assert document["level"] == "INFO"
    assert document["correlation_id"] == EVENT["headers"]["svix-id"]
    assert document["service"] == SERVICE_NAME
    expected = {("service",): names - {"RejectedByReason"}}
    if metrics.by_reason:
        expected[("service", "reason")] = {"RejectedByReason"}
    assert emf_metrics(document) == expected


def test_cold_start_is_counted_on_the_first_outcome_only(
    log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observability._invocation, "cold_start", True)
    context = LocalContext()
    for _ in range(2):
        start_invocation(EVENT, context)
        log_outcome("published", PUBLISHED, outcome="published")

    first, second = (json.loads(line) for line in log_lines.getvalue().splitlines())
    assert first["cold_start"] is True
    assert emf_metrics(first)[("function_name", "service")] == {"ColdStart"}
    assert first["function_name"] == context.function_name
    assert second["cold_start"] is False
    assert ("function_name", "service") not in emf_metrics(second)
    assert "ColdStart" not in second


@pytest.fixture
def errors_only() -> Iterator[None]:
    """The function's logger at ERROR, as with the template's LogLevel parameter set to ERROR."""
    std_logger = logging.getLogger(logger.service)
    previous = std_logger.level
    std_logger.setLevel(logging.ERROR)  # setLevel, not the attribute: it also clears logging's level cache
    yield
    std_logger.setLevel(previous)


@pytest.mark.parametrize("cold", [True, False])
@pytest.mark.usefixtures("errors_only")
def test_metrics_do_not_depend_on_the_log_level(
    cold: bool, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(observability._invocation, "cold_start", cold)
    start_invocation(EVENT, LocalContext())
    capsys.readouterr()

    log_outcome("rejected", REJECTED, outcome="rejected", reason="timestamp_too_old")

    assert log_lines.getvalue() == ""  # the INFO line is hidden...
    [line] = capsys.readouterr().out.splitlines()  # ...its metrics are not
    document = json.loads(line)
    expected = {("service",): {"Received", "Rejected"}, ("service", "reason"): {"RejectedByReason"}}
    if cold:
        expected[("function_name", "service")] = {"ColdStart"}
    assert emf_metrics(document) == expected
    assert document["reason"] == "timestamp_too_old"
    assert "message" not in document  # a bare metrics document: no log fields, no payload


@pytest.mark.usefixtures("warm")
def test_an_error_outcome_keeps_its_exception(log_lines: io.StringIO) -> None:
    start_invocation(EVENT, LocalContext())
    try:
        raise RuntimeError("injected")
    except RuntimeError:
        log_outcome("unexpected error", INTERNAL_ERROR, level=logging.ERROR, exc_info=True, outcome="error")
    document = json.loads(log_lines.getvalue())
    assert document["level"] == "ERROR"
    assert document["exception_name"] == "RuntimeError"
    assert "injected" in document["exception"]
    assert emf_metrics(document) == {("service",): {"Received", "InternalError"}}


def test_the_location_is_the_caller_of_log_outcome(log_lines: io.StringIO, warm: None) -> None:
    start_invocation(EVENT, LocalContext())
    log_outcome("published", PUBLISHED)
    assert json.loads(log_lines.getvalue())["location"].startswith("test_the_location_is_the_caller_of_log_outcome:")


def test_start_invocation_binds_the_keys_of_powertools_inject_lambda_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = LocalContext()

    @logger.inject_lambda_context(correlation_id_path='headers."svix-id"', clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(logger.get_current_keys())

    logger.append_keys(event_id="from an earlier invocation")
    powertools_keys = handler(EVENT, context)
    monkeypatch.setattr(observability._invocation, "cold_start", powertools_keys["cold_start"])
    logger.append_keys(event_id="from an earlier invocation")

    start_invocation(EVENT, context)

    assert dict(logger.get_current_keys()) == powertools_keys
    assert "event_id" not in powertools_keys  # both cleared what the earlier invocation appended
    assert powertools_keys["correlation_id"] == EVENT["headers"]["svix-id"]
    assert powertools_keys["function_request_id"] == context.aws_request_id


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"svix-id": "msg_1"}, "msg_1"),
        ({"Svix-Id": "msg_1"}, "msg_1"),
        ({"webhook-id": "msg_2"}, "msg_2"),
        ({"WEBHOOK-ID": "msg_2", "SVIX-ID": "msg_1"}, "msg_1"),  # svix-* first, as svix reads them
        ({"svix-id": 42}, None),
        ({"content-type": "application/json"}, None),
        ({"svix-id": "m" * 1000}, "m" * 256),
        ("not a map", None),
    ],
)
def test_correlation_id(headers: Any, expected: str | None) -> None:
    assert correlation_id({"headers": headers}) == expected
    assert correlation_id({}) is None


def test_metric_sets_always_count_received() -> None:
    assert MetricSet("X").names == ("Received", "X")
    assert all(metrics.names[0] == "Received" for metrics, _ in METRIC_SETS.values())
