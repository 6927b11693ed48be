"""Example consumer of Stack events delivered by stack-webhook-fanout through SNS -> SQS (raw delivery).

Each SQS record's body is the verbatim Stack event; its message attributes are the ones the ingest function set
(``event_type``, ``event_id`` = the svix-id, ``event_timestamp``, ``user_id`` / ``team_id`` when the event has them,
``replay`` = ``true`` on replayed messages). ``stack_webhook_fanout.events.parse_stack_event`` turns the body into a
typed event; a body that is not a valid known event fails that record only: Powertools' ``BatchProcessor`` reports
it in ``batchItemFailures`` (the function needs ``FunctionResponseTypes: [ReportBatchItemFailures]``), SQS retries it
and, after ``maxReceiveCount`` receives, moves it to the dead-letter queue. The rest of the batch is deleted.

Delivery is at least once (a retry, a replay): make ``handle_event`` idempotent, keyed by ``event_id``.
Logs carry ids and types only, never the event's personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import ValidationError

from stack_webhook_fanout.events import (
    StackEvent,
    TeamMembershipCreatedEvent,
    TeamMembershipDeletedEvent,
    UserCreatedEvent,
    UserDeletedEvent,
    UserUpdatedEvent,
    parse_stack_event,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
# False: when every record of a batch fails, report them all as item failures instead of failing the invocation
# (same retries, without an error and a stack trace per batch).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class InvalidEventError(Exception):
    """The message body is not a valid event of a known type (e.g. a new Stack type, or a malformed body)."""


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


def attribute(record: SQSRecord, name: str) -> str | None:
    """The string value of a message attribute, or None."""
    value = record.message_attributes[name]  # Powertools answers None for an absent attribute
    return None if value is None else value.string_value


def record_handler(record: SQSRecord) -> str:
    """Process one SQS record; raise to report it as a batch item failure."""
    event_id = attribute(record, "event_id") or record.message_id
    replay = attribute(record, "replay") == "true"
    try:
        event = parse_stack_event(record.body)
    except ValidationError as exc:
        # Only the error locations and types: pydantic's message would quote the (personal) input.
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "type": e["type"]} for e in exc.errors()[:5]]
        logger.warning(
            "not a valid Stack event",
            extra={
                "event_id": event_id,
                "event_type": attribute(record, "event_type"),
                "errors": errors,
            },
        )
        raise InvalidEventError(f"message {record.message_id} is not a valid known Stack event") from None
    action = handle_event(event, event_id=event_id, replay=replay)
    logger.info("processed", extra={"event_id": event_id, "event_type": event.type, "replay": replay, "action": action})
    return action


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
