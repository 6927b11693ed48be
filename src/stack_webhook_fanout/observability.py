"""The function's logs and metrics: Powertools JSON logs keyed by the svix-id; EMF metrics on the outcome line.

Every invocation writes exactly one outcome line (``log_outcome``): the Powertools JSON log record of what happened,
which also carries that invocation's CloudWatch metrics in the embedded metric format (EMF): an ``_aws`` member that
declares them, and the counters as top-level numbers. CloudWatch Logs extracts the metrics from any JSON log event
that has ``_aws``, so one line does the work of Powertools' separate log and metrics documents: Powertools'
``add_metric`` calls and ``log_metrics`` flush cost about 200 k instructions per event, the ``_aws`` members on the
line about 50 k (``make bench``, docs/benchmarks.md). When the log level hides the outcome line, the same metrics are
printed as a bare EMF document, so the metrics never depend on ``POWERTOOLS_LOG_LEVEL``.

Metric names and dimensions are those the alarms and the dashboard in ``template.yaml`` read: namespace
``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service`` = ``POWERTOOLS_SERVICE_NAME``; ``RejectedByReason`` adds
``reason``; ``ColdStart`` is per ``function_name`` and ``service``, on an execution environment's first invocation.
``DeliveryLag`` (milliseconds, under ``service``) is on the line of every published event whose svix-id told its
creation time: how long after Svix created the message it reached the function (docs/delivery-lag.md).

Logs carry ids, types, sizes and outcomes, never payload contents or secrets.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Final

from aws_lambda_powertools import Logger

SERVICE_NAME: Final = os.environ.get("POWERTOOLS_SERVICE_NAME", "stack-webhook-fanout")
METRICS_NAMESPACE: Final = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StackWebhookFanout")
# Longest correlation id logged: svix-ids are about 30 characters; the header is not authenticated yet when read.
_MAX_CORRELATION_ID: Final = 256


logger: Final = Logger(service=SERVICE_NAME)
# log_outcome picks the level at run time: Powertools' Logger has one public method per level.
_LOG_METHODS: Final = {
    logging.DEBUG: logger.debug,
    logging.INFO: logger.info,
    logging.WARNING: logger.warning,
    logging.ERROR: logger.error,
    logging.CRITICAL: logger.critical,
}


#: The one metric that is not a counter: milliseconds from the event's creation (its svix-id) to its receipt.
DELIVERY_LAG: Final = "DeliveryLag"


class MetricSet:
    """The counters one outcome adds, as EMF: each counts 1 under the ``service`` dimension, and ``by_reason``
    counters also under ``service`` + ``reason``; with a delivery lag, ``DeliveryLag`` (milliseconds) under
    ``service`` too. Built once per outcome at import, so that writing one costs a timestamp and a dict."""

    def __init__(self, *names: str, by_reason: tuple[str, ...] = ()) -> None:
        self.names: Final = ("Received", *names)
        self.by_reason: Final = by_reason
        # indexed by (cold start, with delivery lag)
        self._directives: Final = {
            (cold, lag): self._build(self.names, by_reason, cold_start=cold, delivery_lag=lag)
            for cold in (False, True)
            for lag in (False, True)
        }
        self.values: Final = dict.fromkeys((*self.names, *by_reason), 1)
        self.cold_start_values: Final = {**self.values, "ColdStart": 1}

    @staticmethod
    def _build(
        names: tuple[str, ...], by_reason: tuple[str, ...], *, cold_start: bool, delivery_lag: bool
    ) -> list[dict[str, Any]]:
        def directive(dimensions: list[str], metrics: tuple[str, ...]) -> dict[str, Any]:
            return {
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
            }

        directives = [directive(["service"], names)]
        if delivery_lag:
            directives[0]["Metrics"].append({"Name": DELIVERY_LAG, "Unit": "Milliseconds"})
        if by_reason:
            directives.append(directive(["service", "reason"], by_reason))
        if cold_start:
            directives.append(directive(["function_name", "service"], ("ColdStart",)))
        return directives

    def fields(self, *, cold_start: bool, delivery_lag_ms: int | None = None) -> dict[str, Any]:
        """The EMF members of one outcome line: ``_aws``, the counters, and ``DeliveryLag`` when given."""
        directives = self._directives[cold_start, delivery_lag_ms is not None]
        values = self.cold_start_values if cold_start else self.values
        if delivery_lag_ms is not None:
            values = {**values, DELIVERY_LAG: delivery_lag_ms}
        return {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}, **values}


PUBLISHED: Final = MetricSet("Published")
PUBLISHED_TO_FALLBACK: Final = MetricSet("Published", "PublishedToFallback")
# SNS accepted the message but its record could not be marked published: the record stays "claimed" (publication
# unknown to the table), so a resend after the lease, or a replay, could publish it a second time.
PUBLISHED_NOT_RECORDED: Final = MetricSet("Published", "PublishedNotRecorded")
PUBLISHED_TO_FALLBACK_NOT_RECORDED: Final = MetricSet("Published", "PublishedToFallback", "PublishedNotRecorded")
DUPLICATE: Final = MetricSet("Duplicate")
REJECTED: Final = MetricSet("Rejected", by_reason=("RejectedByReason",))
IN_PROGRESS: Final = MetricSet("InProgress")
SECRET_NOT_CONFIGURED: Final = MetricSet("SecretNotConfigured")
DEPENDENCY_FAILURE: Final = MetricSet("DependencyFailure")
INTERNAL_ERROR: Final = MetricSet("InternalError")


class _Invocation:
    """What the outcome line needs to know about the current invocation."""

    cold_start = True  # until the first invocation of this execution environment has written its outcome
    function_name = ""


_invocation: Final = _Invocation()


def start_invocation(event: object, context: object) -> None:
    """Reset the log keys for a new invocation and bind its Lambda context and correlation id (the svix-id).

    The keys are those of Powertools' ``inject_lambda_context(clear_state=True, correlation_id_path=...)``, which
    did the same at about six times the cost: it rebuilt a context model and evaluated a JMESPath expression on
    every invocation (``make bench``). A direct invoke may pass any JSON value as the event and a context with
    missing or null fields: what is absent is logged as null, and nothing here raises for it.
    """
    if logger.sampling_rate and not _invocation.cold_start:
        logger.refresh_sample_rate_calculation()  # POWERTOOLS_LOGGER_SAMPLE_RATE draws again per invocation
    function_name = getattr(context, "function_name", None)
    _invocation.function_name = function_name if isinstance(function_name, str) else ""
    # structure_logs drops every key an earlier invocation appended, keeps the service's, and adds these.
    logger.structure_logs(
        cold_start=_invocation.cold_start,
        function_name=_invocation.function_name,  # text always: it is the ColdStart metric's dimension
        function_memory_size=getattr(context, "memory_limit_in_mb", None),
        function_arn=getattr(context, "invoked_function_arn", None),
        function_request_id=getattr(context, "aws_request_id", None),
        correlation_id=correlation_id(event),
    )


def correlation_id(event: object) -> str | None:
    """The delivery's svix-id (or webhook-id), from headers in any case; None when absent or not text.

    A header name may appear in several cases (a direct invoke's headers are not normalised): the first text value
    of ``svix-id`` wins, then of ``webhook-id``.
    """
    headers = event.get("headers") if isinstance(event, dict) else None
    if not isinstance(headers, dict):
        return None
    value = headers.get("svix-id")  # HTTP APIs lower-case header names: the usual case is one lookup
    if not isinstance(value, str):
        value = next(
            (
                v
                for wanted in ("svix-id", "webhook-id")
                for k, v in headers.items()
                if isinstance(v, str) and str(k).lower() == wanted
            ),
            None,
        )
    return value[:_MAX_CORRELATION_ID] if value is not None else None


def log_outcome(
    message: str,
    metrics: MetricSet,
    *,
    level: int = logging.INFO,
    exc_info: bool = False,
    delivery_lag_ms: int | None = None,
    **fields: Any,
) -> None:
    """Write the invocation's one outcome line: a log record with ``fields`` that carries ``metrics`` as EMF.

    ``fields`` must include ``reason`` when ``metrics`` counts by reason (it is that metric's dimension).
    ``delivery_lag_ms``, when given, is emitted as the ``DeliveryLag`` metric.
    """
    emf = metrics.fields(cold_start=_invocation.cold_start, delivery_lag_ms=delivery_lag_ms)
    if level >= logger.log_level:
        # stacklevel 3: the record's location is log_outcome's caller, not log_outcome or Powertools' method
        _LOG_METHODS[level](message, exc_info=exc_info, stacklevel=3, extra={**fields, **emf})
    else:
        dimensions: dict[str, Any] = {"service": SERVICE_NAME}
        if metrics.by_reason:
            dimensions["reason"] = fields["reason"]
        if _invocation.cold_start:
            dimensions["function_name"] = _invocation.function_name
        print(json.dumps({**dimensions, **emf}, separators=(",", ":")))  # EMF is read from stdout
    _invocation.cold_start = False
