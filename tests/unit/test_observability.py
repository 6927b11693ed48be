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
from stack_webhook_fanout_tools.devkit.signing import new_message_id

from stack_webhook_fanout import observability
from stack_webhook_fanout.event_store import EventStore
from stack_webhook_fanout.event_time import decode_ksuid_ms
from stack_webhook_fanout.http_api import handle_http_event
from stack_webhook_fanout.ingest import IngestService
from stack_webhook_fanout.observability import (
    DELIVERY_LAG,
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
from stack_webhook_fanout.publisher import SnsPublisher
from stack_webhook_fanout.topics import TopicRouter
from stack_webhook_fanout.webhook_secret import WebhookSecretSource

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
            if metric["Name"] == DELIVERY_LAG:  # the one measurement; every other metric is a counter
                assert metric["Unit"] == "Milliseconds"
                assert value >= 0
            else:
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


@pytest.mark.parametrize("metrics", [PUBLISHED, PUBLISHED_TO_FALLBACK, PUBLISHED_NOT_RECORDED])
@pytest.mark.usefixtures("warm")
def test_delivery_lag_is_a_milliseconds_metric_under_the_service(metrics: MetricSet, log_lines: io.StringIO) -> None:
    start_invocation(EVENT, LocalContext())

    log_outcome("published", metrics, outcome="published", delivery_lag_ms=4_321)

    [line] = log_lines.getvalue().splitlines()
    document = json.loads(line)
    assert document["DeliveryLag"] == 4_321
    assert "delivery_lag_ms" not in document  # the metric's value is the line's field
    assert emf_metrics(document) == {("service",): {*metrics.names, "DeliveryLag"}}


@pytest.mark.usefixtures("warm")
def test_delivery_lag_is_absent_without_a_lag(log_lines: io.StringIO) -> None:
    start_invocation(EVENT, LocalContext())
    log_outcome("published", PUBLISHED, outcome="published", delivery_lag_ms=None)
    log_outcome("published", PUBLISHED, outcome="published")

    for line in log_lines.getvalue().splitlines():
        document = json.loads(line)
        assert "DeliveryLag" not in document
        assert emf_metrics(document) == {("service",): {"Received", "Published"}}


def test_delivery_lag_on_a_cold_start_keeps_the_cold_start(
    log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observability._invocation, "cold_start", True)
    start_invocation(EVENT, LocalContext())

    log_outcome("published", PUBLISHED, outcome="published", delivery_lag_ms=0)

    document = json.loads(log_lines.getvalue())
    assert document["DeliveryLag"] == 0
    assert emf_metrics(document) == {
        ("service",): {"Received", "Published", "DeliveryLag"},
        ("function_name", "service"): {"ColdStart"},
    }


@pytest.mark.usefixtures("errors_only", "warm")
def test_delivery_lag_does_not_depend_on_the_log_level(
    log_lines: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    start_invocation(EVENT, LocalContext())
    capsys.readouterr()

    log_outcome("published", PUBLISHED, outcome="published", delivery_lag_ms=95_000)

    assert log_lines.getvalue() == ""
    document = json.loads(capsys.readouterr().out)
    assert document["DeliveryLag"] == 95_000
    assert emf_metrics(document) == {("service",): {"Received", "Published", "DeliveryLag"}}


# --- the delivery lag of a real delivery ------------------------------------------------------------------------------
@pytest.fixture
def timed_service(settings: Any, dynamodb: Any, sns: Any, secretsmanager: Any, clock: Any, sink: Any) -> IngestService:
    """The real service, wired by hand so that the receipt is timed by the test's clock (set to the real time: the
    signature's timestamp is checked against it)."""
    clock.now = time.time()
    return IngestService(
        secrets=WebhookSecretSource(secretsmanager, settings.secret_arn),
        store=EventStore(dynamodb, settings.table_name),
        publisher=SnsPublisher(sns),
        router=TopicRouter(settings.topic_arns, settings.fallback_topic_arn),
        clock=clock,
    )


def outcome_of(service: IngestService, request: Any, log_lines: io.StringIO) -> dict[str, Any]:
    """Serve one signed request; return its outcome line."""
    log_lines.truncate(0)
    log_lines.seek(0)
    start_invocation(request.apigw_event(), LocalContext())
    handle_http_event(service, request.apigw_event())
    [line] = log_lines.getvalue().splitlines()
    document = json.loads(line)
    assert isinstance(document, dict)
    return document


@pytest.mark.usefixtures("warm")
def test_delivery_lag_of_a_published_event_is_its_time_from_creation_to_receipt(
    timed_service: IngestService, signed: Any, clock: Any, log_lines: io.StringIO, example_bodies: dict[str, str]
) -> None:
    # given: a delivery of a message Svix created 4.321 s before the function's clock reads it
    received_ms = int(clock.now * 1000)
    event_id = new_message_id(received_ms - 4_321)
    created_ms = decode_ksuid_ms(event_id)
    assert created_ms is not None

    # when
    document = outcome_of(timed_service, signed(example_bodies["user.updated"], msg_id=event_id), log_lines)

    # then: the outcome line says when the event was created and counts the lag, in ms, under the service
    assert document["outcome"] == "published"
    assert document["event_created_at"] == created_ms
    assert document["DeliveryLag"] == received_ms - created_ms
    assert abs(document["DeliveryLag"] - 4_321) <= 2  # Svix's time is in 1/256 s
    assert emf_metrics(document) == {("service",): {"Received", "Published", "DeliveryLag"}}


@pytest.mark.usefixtures("warm")
def test_delivery_lag_is_never_negative(
    timed_service: IngestService, signed: Any, clock: Any, log_lines: io.StringIO, example_bodies: dict[str, str]
) -> None:
    # given: Svix's clock 2 minutes ahead of the function's (within the 5 minutes an event time may be ahead)
    event_id = new_message_id(int(clock.now * 1000) + 120_000)
    document = outcome_of(timed_service, signed(example_bodies["team.created"], msg_id=event_id), log_lines)
    assert document["event_created_at"] == decode_ksuid_ms(event_id)
    assert document["DeliveryLag"] == 0


@pytest.mark.usefixtures("warm")
def test_delivery_lag_is_absent_for_an_id_without_a_time_and_for_a_duplicate(
    timed_service: IngestService, signed: Any, log_lines: io.StringIO, example_bodies: dict[str, str]
) -> None:
    # an id that is not a KSUID: published, with no event time and no lag
    untimed = outcome_of(timed_service, signed(example_bodies["stack.test"], msg_id="msg_not-a-ksuid"), log_lines)
    assert untimed["outcome"] == "published"
    assert "DeliveryLag" not in untimed
    assert "event_created_at" not in untimed
    # a duplicate of a timed event: acknowledged, nothing published, no lag
    timed = signed(example_bodies["stack.test"], msg_id=new_message_id())
    assert "DeliveryLag" in outcome_of(timed_service, timed, log_lines)
    duplicate = outcome_of(timed_service, timed, log_lines)
    assert duplicate["outcome"] == "duplicate"
    assert "DeliveryLag" not in duplicate
    assert emf_metrics(duplicate) == {("service",): {"Received", "Duplicate"}}


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
