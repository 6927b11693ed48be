"""Lambda entry point for POST /webhooks/stack: wiring only; the flow lives in ``stack_webhook_fanout``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.bootstrap import build_service
from stack_webhook_fanout.http_api import handle_http_event
from stack_webhook_fanout.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Built once per execution environment, during init; no network I/O happens here.
SERVICE = build_service()


@metrics.log_metrics(capture_cold_start_metric=True)
# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT would otherwise log whole events (personal data, signatures).
@logger.inject_lambda_context(correlation_id_path='headers."svix-id"', clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_http_event(SERVICE, event)
