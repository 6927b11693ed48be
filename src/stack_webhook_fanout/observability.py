"""The package's logger and metrics (Powertools): JSON logs keyed by the svix-id, EMF metrics.

Logs carry ids, types, sizes and outcomes, never payload contents or secrets.
"""

from __future__ import annotations

import os
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE_NAME: Final = os.environ.get("POWERTOOLS_SERVICE_NAME", "stack-webhook-fanout")
METRICS_NAMESPACE: Final = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StackWebhookFanout")

logger: Final = Logger(service=SERVICE_NAME)
metrics: Final = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def count(name: str) -> None:
    """Add 1 to the metric ``name`` of this invocation."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def count_rejection(reason: str) -> None:
    """Count a rejected request under the ``Rejected`` metric with a ``reason`` dimension."""
    count("Rejected")
    with single_metric(name="RejectedByReason", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="reason", value=reason)
