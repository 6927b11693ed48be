"""Example consumer of Stack events delivered by stack-webhook-fanout through SNS -> SQS (raw delivery): each change
once, in order, per entity.

Each SQS record becomes a typed Stack event with ``stack_webhook_fanout.sqs_records.stack_message`` (raw delivery or
the SNS envelope; the attributes the ingest function set: ``event_id`` = the svix-id, ``event_type``, ``replay`` …),
and goes through ``stack_webhook_fanout.entity_guard.EntityGuard`` (records in ``GUARD_TABLE_NAME``, keys prefixed
with ``SUBSCRIBER_NAME``), which decides whether ``handle_event`` runs:

- ``applied``: ``handle_event`` runs; when it returns, the event becomes its entity's latest.
- ``duplicate`` (a copy of an applied event_id, or the same change resent under a new id) and ``stale`` (an event of
  the same entity created later, or the deletion of its user or team, was applied already): skipped, deleted.
- busy (another event of the entity, or a copy of this one, is being handled): reported failed, so SQS hands it back
  after the visibility timeout, when it is decided.
- ``handle_event`` raises: reported failed; the guard records nothing, so the retry decides again.

One JSON log line per record, with ``event_id``, ``event_type`` and ``decision`` (ids and types only, never the
event's personal data). Failed records are reported in ``batchItemFailures`` (``ReportBatchItemFailures``); SQS
retries them and after ``maxReceiveCount`` receives moves them to the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from stack_webhook_fanout.entity_guard import (
    Decision,
    EntityBusyError,
    EntityGuard,
    GuardedEvent,
    LeaseLostError,
    event_time,
)
from stack_webhook_fanout.events import (
    StackEvent,
    TeamCreatedEvent,
    TeamDeletedEvent,
    TeamMembershipCreatedEvent,
    TeamMembershipDeletedEvent,
    TeamUpdatedEvent,
    UserCreatedEvent,
    UserDeletedEvent,
    UserUpdatedEvent,
)
from stack_webhook_fanout.sqs_records import InvalidStackMessageError, stack_message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SECONDS_PER_DAY = 86_400

logger = Logger()
# False: when every record of a batch fails, report them all as item failures instead of failing the invocation
# (same retries, without an error and a stack trace per batch).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
dynamodb = boto3.client("dynamodb")
guard = EntityGuard(
    dynamodb,
    os.environ["GUARD_TABLE_NAME"],
    namespace=os.environ["SUBSCRIBER_NAME"],
    retention_seconds=int(os.environ.get("GUARD_DAYS", "14")) * SECONDS_PER_DAY,
)


def handle_event(event: StackEvent, *, event_id: str, replay: bool) -> str:
    """Your business logic goes here; it runs only for ``applied`` events. Returns what was done, for the log (ids
    only, no personal data). ``*.updated`` must create what does not exist yet: a ``*.created`` older than an applied
    update is ``stale`` and never reaches this function."""
    match event:
        case UserCreatedEvent(data=user) | UserUpdatedEvent(data=user):
            return f"upserted profile of user {user.id}"
        case UserDeletedEvent(data=deleted):
            return f"erased data of user {deleted.id} in {len(deleted.teams)} teams"
        case TeamCreatedEvent(data=team) | TeamUpdatedEvent(data=team):
            return f"upserted team {team.id}"
        case TeamDeletedEvent(data=team):
            return f"erased team {team.id} and its memberships"
        case TeamMembershipCreatedEvent(data=membership):
            return f"granted user {membership.user_id} access to team {membership.team_id}"
        case TeamMembershipDeletedEvent(data=membership):
            return f"revoked user {membership.user_id} access to team {membership.team_id}"
        case _:
            return f"nothing to do for {event.type}"


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    """Process one SQS record; raise to report it as a batch item failure."""
    try:
        message = stack_message(record.raw_event)
    except InvalidStackMessageError as exc:
        logger.warning("not a valid Stack event", extra={**exc.log_fields(), "decision": "rejected"})
        raise
    created_at = (record.raw_event.get("messageAttributes") or {}).get("event_created_at") or {}
    event = GuardedEvent(
        event_id=message.event_id,
        event_type=message.event_type,
        data=message.event.data.model_dump(mode="json"),
        created_at_ms=event_time(message.event_id, created_at.get("stringValue"), int(time.time() * 1000)),
    )
    ids = {"message_id": message.message_id, "replay": message.replay}
    try:
        outcome, action = guard.handle(
            event,
            lambda: handle_event(message.event, event_id=message.event_id, replay=message.replay),
            # The lease ends when this invocation would time out: a dead environment blocks its entity no longer.
            lease_ms=lambda_context.get_remaining_time_in_millis(),
        )
    except EntityBusyError as exc:
        logger.info("busy, retried later", extra={**ids, **exc.log_fields()})
        raise
    except LeaseLostError:
        # handle_event ran, but past its lease: another environment took the entity; the retry is decided again.
        logger.warning(
            "lease lost before the commit, retried later",
            extra={**ids, "event_id": event.event_id, "event_type": event.event_type, "decision": "lease_lost"},
        )
        raise
    except Exception:
        logger.warning(
            "handler failed, retried later",
            extra={**ids, "event_id": event.event_id, "event_type": event.event_type, "decision": "failed"},
        )
        raise
    fields: dict[str, Any] = {**ids, **outcome.log_fields()}
    if outcome.decision is Decision.APPLIED:
        fields["action"] = action
    logger.info(str(outcome.decision), extra=fields)
    return str(outcome.decision)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
