"""Lambda entry point for POST /webhooks/stack: wiring only; the flow lives in ``stack_webhook_fanout``."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init (imports, clients, service) allocates objects that live as long as the execution environment: no collection
# during init, then freeze them out of every later collection's way (the first event's included). make bench: the
# cold start about 25 ms shorter.
gc.disable()
try:
    from stack_webhook_fanout.bootstrap import build_service
    from stack_webhook_fanout.http_api import handle_http_event
    from stack_webhook_fanout.observability import start_invocation

    # Built once per execution environment, during init; no network I/O happens here.
    SERVICE = build_service()
finally:
    gc.freeze()
    gc.enable()


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Log keys of this invocation (Lambda context, svix-id as correlation id); its metrics go on the outcome line.
    start_invocation(event, context)
    return handle_http_event(SERVICE, event)
