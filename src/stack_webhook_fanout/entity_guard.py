"""Once per change, in order: a per-entity guard for subscribers of Stack events, on DynamoDB conditional writes.

Svix does not order deliveries and retries reorder them further; Stack may send one change twice under two ids; a
queue hands out copies. One effect per ``event_id`` does not stop an older ``user.updated`` from overwriting a newer
one, or a retried ``team_membership.created`` from re-adding a user who was deleted since. This guard decides, per
event, whether its handler runs, from the event's creation time (decoded from its Svix id) and what was already
applied to the same entity (:mod:`.entities`):

- ``applied``: the handler runs (and, if it returns, the event becomes the entity's latest);
- ``duplicate``: the handler does not run: this ``event_id`` was applied already, or the event is the same change as
  the entity's latest applied event (same type, same ``data``: compared by hash), as when Stack resends a change
  under a new id. A later copy of the change becomes the entity's latest (one write), so that an event created
  between the two is stale: a membership added, removed and added again whose removal arrives last stays added;
- ``stale``: the handler does not run: an event of the entity created later was applied (an older state never
  overwrites a newer one), or the entity's user or team was deleted by an event created later than this one.

A ``*.created`` that arrives after a newer ``*.updated`` of the same entity is ``stale``: the update carried the whole
object (Stack's ``user.updated`` and ``team.updated`` hold the full user or team), so the newer state is already
there; an ``*.updated`` handler must therefore create what does not exist yet (upsert). A membership added, removed
and added again is three events ordered by time: the re-add was created after the removal, so it applies when it
comes after it, and the removal is stale when it comes after the re-add.

Rules. Two events of one entity are never handled at once: a claim leases the entity (the lease's expiry is checked
in the write's condition, as Powertools' idempotency does), and a second event raises :class:`EntityBusyError` so that
SQS hands it back later. Nothing is committed before the handler returns: a handler that raises releases the lease,
and one whose environment dies leaves a lease that expires, so the retry finds the entity as it was. An event without
an event time (an id that is not a Svix KSUID), or without an entity (``stack.test``, types not declared in
:mod:`.entities`), is applied once per ``event_id`` on an item of its own: it never blocks or reorders the others,
and its :class:`Outcome` says ``ordered: false``.

Per event: an entity event reads its entity and its parents in one ``BatchGetItem`` (strongly consistent) and, when
applied, writes twice (the claim, the commit); a copy, a stale or a duplicate event is only read (a change resent under
a later id: one write more). An unordered event costs one conditional put and one update (a copy: one failed put).
Standard library and botocore only (the Lambda runtime has botocore), so a subscriber's build stays small; nothing of
the ingest function is imported.

Known limits. The parents are read before the claim: a child whose handler is already running when its user's
deletion starts is not waited for (the deletion's handler should erase what the user had). A deletion being handled
makes the children created before it wait (:class:`EntityBusyError`). Two events of one entity created within the
same 1/256 s are not ordered: both apply. The entity's record lives ``retention_seconds`` after its last change
(TTL): an event older than that arriving later (a replay) is compared with nothing and applied.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from .entities import PARENT_FAMILIES, SEPARATOR, Entity, entity_of, is_deletion
from .entity_decisions import (
    Decision,
    EntityBusyError,
    EntityState,
    GuardedEvent,
    Outcome,
    change_hash,
    decide,
    event_time,
    item_string,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

#: How many applied event_ids an entity remembers (a copy of an older one is ``stale`` instead of ``duplicate``:
#: the handler does not run either way). Each is ~31 bytes: the item stays under 1 KB, one write unit.
RECENT_EVENT_IDS: Final = 8
#: The table's key attribute and its TTL attribute (epoch seconds).
KEY_ATTRIBUTE: Final = "pk"
TTL_ATTRIBUTE: Final = "expires_at"
_EVENT_ITEM: Final = "event"
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
_LEASE_ATTRIBUTES: Final = ("lease_token", "lease_event_id", "lease_type", "lease_created_ms", "lease_until_ms")


# The guard's public names, the decisions' included: a subscriber imports them all from here.
__all__ = [
    "KEY_ATTRIBUTE",
    "RECENT_EVENT_IDS",
    "TTL_ATTRIBUTE",
    "Claim",
    "Decision",
    "EntityBusyError",
    "EntityGuard",
    "EntityState",
    "GuardedEvent",
    "LeaseLostError",
    "Outcome",
    "change_hash",
    "decide",
    "event_time",
]


class LeaseLostError(Exception):
    """The claim's lease expired before the commit and another claim took the entity: nothing was recorded (the
    lease must outlast the handler: pass the invocation's remaining time)."""


@dataclass(slots=True)
class Claim:
    """The guard's decision on one event and, when ``applied``, the lease to :meth:`EntityGuard.commit` after the
    handler returned, or to :meth:`EntityGuard.release` when it raised."""

    outcome: Outcome
    _key: str | None = field(default=None, repr=False)
    _token: str | None = field(default=None, repr=False)
    _state: EntityState | None = field(default=None, repr=False)
    _data_hash: str | None = field(default=None, repr=False)

    @property
    def applied(self) -> bool:
        return self.outcome.decision is Decision.APPLIED


class EntityGuard:
    """Decide, lease and record events per entity in one DynamoDB table (key ``pk``, TTL on ``expires_at``).

    ``namespace`` prefixes every key (one subscriber's records never answer for another's in a shared table).
    ``retention_seconds``: how long an entity's record outlives its last change, and an unordered event's record.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        namespace: str,
        retention_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self._namespace = namespace
        self._retention_seconds = retention_seconds
        self._clock = clock

    # --- the one-call form ----------------------------------------------------------------------------------------
    def handle[T](self, event: GuardedEvent, handler: Callable[[], T], *, lease_ms: int) -> tuple[Outcome, T | None]:
        """Claim ``event``; run ``handler`` only when applied, then commit (release if it raises, and re-raise).
        Raises :class:`EntityBusyError` when the event must be retried later."""
        claim = self.claim(event, lease_ms=lease_ms)
        if not claim.applied:
            return claim.outcome, None
        try:
            result = handler()
        except Exception:
            # A BaseException (the runtime stopping the invocation) releases nothing: its lease expires instead.
            self.release(claim)
            raise
        self.commit(claim)
        return claim.outcome, result

    # --- the three steps --------------------------------------------------------------------------------------------
    def claim(self, event: GuardedEvent, *, lease_ms: int) -> Claim:
        """Decide on ``event``; when applied, lease its entity (or its event_id) for ``lease_ms``."""
        entity = entity_of(event.event_type, event.data)
        if entity is None:
            return self._claim_once(event, None, lease_ms, "no entity: applied once per event_id, not ordered")
        if event.created_at_ms is None:
            reason = "no event time in its id: applied once per event_id, not ordered"
            return self._claim_once(event, entity, lease_ms, reason)
        return self._claim_entity(event, entity, event.created_at_ms, lease_ms)

    def commit(self, claim: Claim) -> None:
        """Record the applied event (the handler returned). Raises :class:`LeaseLostError` if the lease was lost."""
        if not claim.applied or claim._key is None:
            return
        outcome = claim.outcome
        values: dict[str, Any] = {":token": {"S": claim._token}, ":expires": {"N": str(self._expires_at())}}
        if claim._state is None:  # an event_id record
            update = "SET event_phase = :done, expires_at = :expires REMOVE lease_token, lease_until_ms"
            values[":done"] = {"S": "done"}
        else:
            recent = [outcome.event_id, *claim._state.recent_ids][:RECENT_EVENT_IDS]
            update = (
                "SET latest_event_id = :id, latest_type = :type, latest_created_ms = :created, latest_hash = :hash,"
                " recent_ids = :recent, version = version + :one, expires_at = :expires"
            )
            values |= {
                ":id": {"S": outcome.event_id},
                ":type": {"S": outcome.event_type},
                ":created": {"N": str(outcome.created_at_ms)},
                ":hash": {"S": claim._data_hash},
                ":recent": {"L": [{"S": event_id} for event_id in recent]},
                ":one": {"N": "1"},
            }
            family = (outcome.entity or "").split(SEPARATOR, 1)[0]
            if is_deletion(outcome.event_type) and family in PARENT_FAMILIES:
                update += ", deleted_created_ms = :created"
            update += " REMOVE " + ", ".join(_LEASE_ATTRIBUTES)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": claim._key}},
                UpdateExpression=update,
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONDITION_FAILED:
                raise LeaseLostError(f"the lease of {outcome.event_id} expired before its commit") from exc
            raise

    def release(self, claim: Claim) -> None:
        """Give the lease back without recording anything (the handler raised): the retry finds the entity as it was.
        A lease already lost is left alone."""
        if not claim.applied or claim._key is None:
            return
        try:
            if claim._state is None:
                self._client.delete_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": claim._key}},
                    ConditionExpression="lease_token = :token",
                    ExpressionAttributeValues={":token": {"S": claim._token}},
                )
            else:
                self._client.update_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": claim._key}},
                    UpdateExpression="SET version = version + :one REMOVE " + ", ".join(_LEASE_ATTRIBUTES),
                    ConditionExpression="lease_token = :token",
                    ExpressionAttributeValues={":token": {"S": claim._token}, ":one": {"N": "1"}},
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != _CONDITION_FAILED:
                raise

    # --- internals --------------------------------------------------------------------------------------------------
    def _claim_entity(self, event: GuardedEvent, entity: Entity, created_ms: int, lease_ms: int) -> Claim:
        keys = [entity.key, *entity.parent_keys]
        items = self._read([self._item_key(key) for key in keys], event)
        state = EntityState.from_item(items.get(self._item_key(entity.key)))
        parents = {key: EntityState.from_item(items.get(self._item_key(key))) for key in entity.parent_keys}
        now = self._now_ms()
        decision, reason = decide(event, created_ms, state, parents, now)
        outcome = Outcome(decision, event.event_id, event.event_type, entity.key, created_ms, True, reason)
        item_key = self._item_key(entity.key)
        later = state.latest_created_ms is not None and created_ms > state.latest_created_ms
        if decision is Decision.DUPLICATE and later:
            self._record_duplicate(event, item_key, created_ms, state)
        if decision is not Decision.APPLIED:
            return Claim(outcome)
        token = uuid.uuid4().hex
        # The record read is the record written over: any change in between (another claim, a commit) fails this.
        condition = "version = :version" if state.exists else "attribute_not_exists(pk)"
        condition += " AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)"
        values: dict[str, Any] = {
            ":next": {"N": str(state.version + 1)},
            ":token": {"S": token},
            ":id": {"S": event.event_id},
            ":type": {"S": event.event_type},
            ":created": {"N": str(created_ms)},
            ":until": {"N": str(now + lease_ms)},
            ":now": {"N": str(now)},
            ":expires": {"N": str(self._expires_at())},
        }
        if state.exists:
            values[":version"] = {"N": str(state.version)}
        update = (
            "SET version = :next, lease_token = :token, lease_event_id = :id, lease_type = :type,"
            " lease_created_ms = :created, lease_until_ms = :until,"
            # A new item expires too, if its environment dies; an existing one keeps its expiry until commit.
            " expires_at = if_not_exists(expires_at, :expires)"
        )
        self._write_read_record(event, item_key, update, condition, values)
        return Claim(outcome, item_key, token, state, change_hash(event.data))

    def _record_duplicate(self, event: GuardedEvent, item_key: str, created_ms: int, state: EntityState) -> None:
        """Make a later copy of the latest change the entity's latest (its handler does not run): the entity's state
        is that change as of this later time. One write, conditional on the record read (no lease was active)."""
        recent = [event.event_id, *state.recent_ids][:RECENT_EVENT_IDS]
        update = (
            "SET latest_event_id = :id, latest_created_ms = :created, recent_ids = :recent,"
            " version = :next, expires_at = :expires"
        )
        values = {
            ":id": {"S": event.event_id},
            ":created": {"N": str(created_ms)},
            ":recent": {"L": [{"S": event_id} for event_id in recent]},
            ":next": {"N": str(state.version + 1)},
            ":version": {"N": str(state.version)},
            ":expires": {"N": str(self._expires_at())},
        }
        self._write_read_record(event, item_key, update, "version = :version", values)

    def _write_read_record(
        self, event: GuardedEvent, item_key: str, update: str, condition: str, values: dict[str, Any]
    ) -> None:
        """Update the entity's record on the condition that it is still the one read; if it is not, another event
        of the entity got there first: retry later."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": item_key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONDITION_FAILED:
                raise EntityBusyError(event, "another event of this entity was claimed at the same time") from exc
            raise

    def _claim_once(self, event: GuardedEvent, entity: Entity | None, lease_ms: int, reason: str) -> Claim:
        """An unordered event: applied once per event_id, on an item of its own (Powertools' scheme)."""
        item_key = self._item_key(SEPARATOR.join([_EVENT_ITEM, event.event_id]))
        token = uuid.uuid4().hex
        now = self._now_ms()
        entity_key = None if entity is None else entity.key
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    KEY_ATTRIBUTE: {"S": item_key},
                    "event_phase": {"S": "in_progress"},
                    "event_type": {"S": event.event_type},
                    "lease_token": {"S": token},
                    "lease_until_ms": {"N": str(now + lease_ms)},
                    TTL_ATTRIBUTE: {"N": str(self._expires_at())},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (event_phase = :in_progress AND lease_until_ms < :now)"
                ),
                ExpressionAttributeValues={":in_progress": {"S": "in_progress"}, ":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != _CONDITION_FAILED:
                raise
            old: Mapping[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            if item_string(old, "event_phase") == "done":
                duplicate = Outcome(
                    Decision.DUPLICATE, event.event_id, event.event_type, entity_key, event.created_at_ms, False, reason
                )
                return Claim(duplicate)
            raise EntityBusyError(event, "a copy of this event is being handled elsewhere") from exc
        outcome = Outcome(
            Decision.APPLIED, event.event_id, event.event_type, entity_key, event.created_at_ms, False, reason
        )
        return Claim(outcome, item_key, token)

    def _read(self, keys: list[str], event: GuardedEvent) -> dict[str, Mapping[str, Any]]:
        response = self._client.batch_get_item(
            RequestItems={self._table: {"Keys": [{KEY_ATTRIBUTE: {"S": key}} for key in keys], "ConsistentRead": True}}
        )
        if response.get("UnprocessedKeys"):
            # Throttled: let the queue hand it back rather than decide on a partial read.
            raise EntityBusyError(event, "the guard's read was throttled")
        return {str(item[KEY_ATTRIBUTE]["S"]): item for item in response["Responses"].get(self._table, [])}

    def _item_key(self, key: str) -> str:
        return SEPARATOR.join([self._namespace, key])

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _expires_at(self) -> int:
        return int(self._clock()) + self._retention_seconds
