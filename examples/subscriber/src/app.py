"""Example consumer of Stack events delivered by stack-webhook-fanout through SNS -> SQS (raw delivery): one effect
per event.

Each SQS record becomes a typed Stack event with ``stack_webhook_fanout.sqs_records.stack_message`` (raw delivery or
the SNS envelope; the attributes the ingest function set: ``event_id`` = the svix-id, ``event_type``, ``replay`` …).

- **Once per event_id.** ``process_once`` is a Powertools idempotent function keyed on ``event_id`` with the prefix
  ``SUBSCRIBER_NAME`` (this subscriber's stack name), its records in ``IDEMPOTENCY_TABLE_NAME`` for
  ``IDEMPOTENCY_DAYS``. A second copy of an event (a duplicate publication, an SQS redelivery, a replay) gets the
  stored result and is logged ``duplicate skipped``; ``handle_event`` does not run again.
- **In flight elsewhere.** A copy that arrives while the first is still being processed (its record is
  ``INPROGRESS``) fails in the batch response: SQS hands it back after the visibility timeout, when it is a
  duplicate (or, if the first invocation died, is processed then, once its in-progress lease has expired).
- **Failures stay alone.** A record that is not a valid known event, or whose processing raises, is reported in
  ``batchItemFailures`` (``FunctionResponseTypes: [ReportBatchItemFailures]``); the rest of the batch is deleted. SQS
  retries it and after ``maxReceiveCount`` receives moves it to the dead-letter queue. A failed processing leaves no
  idempotency record, so its retry runs ``handle_event`` again.
- **Replays** (``replay=true``) are copies too: skipped when this subscriber already processed the event within
  ``IDEMPOTENCY_DAYS``, processed (and logged with ``replay: true``) when it never did.

Logs carry ids and types only, never the event's personal data.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from stack_webhook_fanout.events import (
    StackEvent,
    TeamMembershipCreatedEvent,
    TeamMembershipDeletedEvent,
    UserCreatedEvent,
    UserDeletedEvent,
    UserUpdatedEvent,
)
from stack_webhook_fanout.sqs_records import InvalidStackMessageError, StackMessage, stack_message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SECONDS_PER_DAY = 86_400

logger = Logger()
# False: when every record of a batch fails, report them all as item failures instead of failing the invocation
# (same retries, without an error and a stack trace per batch).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def mark_duplicate(response: dict[str, Any], idempotent_data: DataRecord) -> dict[str, Any]:
    """Called by Powertools instead of ``process_once`` when the event_id was already processed."""
    return {**response, "duplicate": True}


persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"])
idempotency = IdempotencyConfig(
    expires_after_seconds=int(os.environ.get("IDEMPOTENCY_DAYS", "7")) * SECONDS_PER_DAY,
    raise_on_no_idempotency_key=True,
    response_hook=mark_duplicate,
)


def handle_event(event: StackEvent, *, event_id: str, replay: bool) -> str:
    """Your business logic goes here. Returns what was done, for the log (ids only, no personal data)."""
    match event:
        case UserCreatedEvent(data=user):
            return f"provisioned account for user {user.id}"
        case UserUpdatedEvent(data=user):
            return f"synced profile of user {user.id}"
        case UserDeletedEvent(data=deleted):
            return f"erased data of user {deleted.id} in {len(deleted.teams)} teams"
        case TeamMembershipCreatedEvent(data=membership):
            return f"granted user {membership.user_id} access to team {membership.team_id}"
        case TeamMembershipDeletedEvent(data=membership):
            return f"revoked user {membership.user_id} access to team {membership.team_id}"
        case _:
            return f"nothing to do for {event.type}"


@idempotent_function(
    data_keyword_argument="event_id",
    persistence_store=persistence,
    config=idempotency,
    key_prefix=os.environ["SUBSCRIBER_NAME"],
)
def process_once(*, event_id: str, message: StackMessage) -> dict[str, Any]:
    """Run ``handle_event`` once per event_id; what it returns is stored and given to later copies."""
    return {"action": handle_event(message.event, event_id=event_id, replay=message.replay)}


def record_handler(record: SQSRecord) -> str:
    """Process one SQS record; raise to report it as a batch item failure."""
    try:
        message = stack_message(record.raw_event)
    except InvalidStackMessageError as exc:
        logger.warning("not a valid Stack event", extra=exc.log_fields())
        raise
    ids = {
        "event_id": message.event_id,
        "event_type": message.event_type,
        "message_id": message.message_id,
        "replay": message.replay,
    }
    try:
        outcome = process_once(event_id=message.event_id, message=message)
    except IdempotencyAlreadyInProgressError:
        logger.info("in progress elsewhere, retried later", extra=ids)
        raise
    if outcome.get("duplicate"):
        logger.info("duplicate skipped", extra=ids)
    else:
        logger.info("processed", extra={**ids, "action": outcome["action"]})
    return str(outcome["action"])


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The in-progress lease of each record ends when this invocation would time out.
    idempotency.register_lambda_context(context)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
