"""The entity guard's decisions: ``applied``, ``duplicate`` or ``stale`` for one event, from its creation time and
what its entity's record (and its parents') say. Pure functions and values: :mod:`.entity_guard` reads and writes the
records in DynamoDB, and says why each decision is what it is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .entities import SEPARATOR, is_deletion
from .event_time import event_created_at_ms

if TYPE_CHECKING:
    from collections.abc import Mapping


class Decision(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


class EntityBusyError(Exception):
    """Another event of the entity, or a copy of this event, is being handled: let the queue hand it back later."""

    def __init__(self, event: GuardedEvent, reason: str) -> None:
        super().__init__(f"event {event.event_id} ({event.event_type}) retried later: {reason}")
        self.event_id = event.event_id
        self.event_type = event.event_type
        self.reason = reason

    def log_fields(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_type": self.event_type, "decision": "busy", "reason": self.reason}


def event_time(event_id: str, attribute: str | None, now_ms: int) -> int | None:
    """The event's creation time: the ``event_created_at`` message attribute when the message carries it (epoch ms,
    set by the ingest function from the same id), else decoded from the Svix id; ``None`` when it has none."""
    if attribute is not None and attribute.isdigit():
        return int(attribute)
    return event_created_at_ms(event_id, now_ms)


def change_hash(data: Mapping[str, Any]) -> str:
    """A digest of an event's ``data``, independent of key order and spacing (128 bits, hex)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class GuardedEvent:
    """What the guard needs of one event: its id, type, ``data`` (the parsed body's) and creation time."""

    event_id: str
    event_type: str
    data: Mapping[str, Any]
    #: Epoch milliseconds (:func:`event_time`), ``None`` when the id is not a Svix KSUID.
    created_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The guard's decision on one event; :meth:`log_fields` is safe to log (ids and types only)."""

    decision: Decision
    event_id: str
    event_type: str
    entity: str | None
    created_at_ms: int | None
    #: False when the event was handled once per event_id only (no event time or no entity): not ordered.
    ordered: bool
    reason: str

    def log_fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "decision": str(self.decision),
            "ordered": self.ordered,
            "entity": self.entity,
            "event_created_at": self.created_at_ms,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class EntityState:
    """What the guard's item records about one entity (an absent item: ``exists=False``)."""

    exists: bool = False
    version: int = 0
    latest_event_id: str | None = None
    latest_type: str | None = None
    latest_created_ms: int | None = None
    latest_hash: str | None = None
    recent_ids: tuple[str, ...] = ()
    #: Creation time of the applied deletion (users and teams: what ends their memberships and permissions).
    deleted_created_ms: int | None = None
    lease_event_id: str | None = None
    lease_type: str | None = None
    lease_created_ms: int | None = None
    lease_until_ms: int | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> EntityState:
        if item is None:
            return cls()
        return cls(
            exists=True,
            version=item_number(item, "version") or 0,
            latest_event_id=item_string(item, "latest_event_id"),
            latest_type=item_string(item, "latest_type"),
            latest_created_ms=item_number(item, "latest_created_ms"),
            latest_hash=item_string(item, "latest_hash"),
            recent_ids=tuple(entry["S"] for entry in item.get("recent_ids", {}).get("L", [])),
            deleted_created_ms=item_number(item, "deleted_created_ms"),
            lease_event_id=item_string(item, "lease_event_id"),
            lease_type=item_string(item, "lease_type"),
            lease_created_ms=item_number(item, "lease_created_ms"),
            lease_until_ms=item_number(item, "lease_until_ms"),
        )

    def leased(self, now_ms: int) -> bool:
        return self.lease_until_ms is not None and self.lease_until_ms > now_ms


def decide(
    event: GuardedEvent,
    created_ms: int,
    state: EntityState,
    parents: Mapping[str, EntityState],
    now_ms: int,
) -> tuple[Decision, str]:
    """The decision on an event with a time, from its entity's and its parents' records; raises
    :class:`EntityBusyError` when it cannot be decided until what is in flight is done."""
    if event.event_id in state.recent_ids:
        return Decision.DUPLICATE, "this event_id was applied already"
    if state.latest_created_ms is not None and state.latest_created_ms > created_ms:
        return Decision.STALE, f"{state.latest_type} created later was applied"
    if state.leased(now_ms):
        if state.lease_event_id == event.event_id:
            raise EntityBusyError(event, "a copy of this event is being handled elsewhere")
        raise EntityBusyError(event, f"{state.lease_type} of this entity is being handled")
    for key, parent in parents.items():
        family = key.split(SEPARATOR, 1)[0]
        if parent.deleted_created_ms is not None and parent.deleted_created_ms > created_ms:
            return Decision.STALE, f"its {family} was deleted later"
        if (
            parent.leased(now_ms)
            and parent.lease_type is not None
            and is_deletion(parent.lease_type)
            and parent.lease_created_ms is not None
            and parent.lease_created_ms > created_ms
        ):
            raise EntityBusyError(event, f"the deletion of its {family} is being handled")
    if state.latest_type == event.event_type and state.latest_hash == change_hash(event.data):
        # Recorded as the latest (see EntityGuard._record_duplicate): an event created between the two is then
        # stale, so a membership re-added (same body) before its removal arrived is not undone by that removal.
        return Decision.DUPLICATE, "the same change as the entity's latest applied event (resent under a new id)"
    return Decision.APPLIED, "the latest change of its entity"


def item_string(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def item_number(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])
