"""Which entity each Stack event is about: the one place that says so (used by :mod:`.entity_guard`).

An entity is what one stream of events changes: a user, a team, a membership of a user in a team, a permission. Its
key is made of the ids in the event's ``data``:

========================  ======================================  ====================================
types                     key fields of ``data``                  deleted with
========================  ======================================  ====================================
``user.*``                ``id``                                  (itself)
``team.*``                ``id``                                  (itself)
``team_membership.*``     ``team_id``, ``user_id``                its user, its team
``team_permission.*``     ``team_id``, ``user_id``, ``id``        its user, its team
``project_permission.*``  ``user_id``, ``id``                     its user
``issue.*``               ``id``                                  (itself)
``stack.test``, unknown   none
========================  ======================================  ====================================

"Deleted with" names the parents: once a user (or team) is deleted, the events of its memberships and permissions
created before that deletion are stale. Only the types below have an entity; a type Stack adds later has none until it
is declared here (it is then handled once per event_id, unordered). Standard library only: subscribers import it
without pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class EntityKind:
    """A family of event types about one kind of entity."""

    #: The type prefix (``team_membership`` for ``team_membership.created``) and the first part of each key.
    family: str
    #: The ``data`` fields whose values, in this order, identify one entity of the family.
    key_fields: tuple[str, ...]
    #: ``(parent family, data field holding the parent's id)``: deleting that parent ends this entity.
    parents: tuple[tuple[str, str], ...]
    #: The event types of the family (``<family>.<action>``).
    actions: tuple[str, ...]

    def types(self) -> tuple[str, ...]:
        return tuple(f"{self.family}.{action}" for action in self.actions)


USER: Final = EntityKind("user", ("id",), (), ("created", "updated", "deleted"))
TEAM: Final = EntityKind("team", ("id",), (), ("created", "updated", "deleted"))
TEAM_MEMBERSHIP: Final = EntityKind(
    "team_membership", ("team_id", "user_id"), (("user", "user_id"), ("team", "team_id")), ("created", "deleted")
)
TEAM_PERMISSION: Final = EntityKind(
    "team_permission", ("team_id", "user_id", "id"), (("user", "user_id"), ("team", "team_id")), ("created", "deleted")
)
PROJECT_PERMISSION: Final = EntityKind(
    "project_permission", ("user_id", "id"), (("user", "user_id"),), ("created", "deleted")
)
ISSUE: Final = EntityKind("issue", ("id",), (), ("created", "regressed", "resolved", "ignored", "merged"))

ENTITY_KINDS: Final = (USER, TEAM, TEAM_MEMBERSHIP, TEAM_PERMISSION, PROJECT_PERMISSION, ISSUE)
#: Every event type that belongs to an entity, and its kind.
KIND_OF_TYPE: Final = {event_type: kind for kind in ENTITY_KINDS for event_type in kind.types()}
#: The families whose deletion ends their children's entities (users and teams).
PARENT_FAMILIES: Final = frozenset(family for kind in ENTITY_KINDS for family, _ in kind.parents)
SEPARATOR: Final = "#"


class EntityKeyError(ValueError):
    """An event of an entity type whose ``data`` lacks one of its key fields (not a valid Stack event)."""


@dataclass(frozen=True, slots=True)
class Entity:
    """The entity of one event, and the parents whose deletion ends it."""

    #: ``<family>#<id>[#<id>...]``, e.g. ``team_membership#<team id>#<user id>``: ids only, no personal data.
    key: str
    #: Keys of the parents (``user#<id>``, ``team#<id>``).
    parent_keys: tuple[str, ...]


def is_deletion(event_type: str) -> bool:
    return event_type.endswith(".deleted")


def entity_of(event_type: str, data: Mapping[str, object]) -> Entity | None:
    """The entity ``event_type`` with this ``data`` is about; ``None`` for a type without one (``stack.test``,
    types this module does not declare). Raises :class:`EntityKeyError` when a key field is missing or empty."""
    kind = KIND_OF_TYPE.get(event_type)
    if kind is None:
        return None
    return Entity(
        key=_key(kind.family, [_field(data, event_type, name) for name in kind.key_fields]),
        parent_keys=tuple(_key(family, [_field(data, event_type, name)]) for family, name in kind.parents),
    )


def _key(family: str, ids: list[str]) -> str:
    return SEPARATOR.join([family, *ids])


def _field(data: Mapping[str, object], event_type: str, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise EntityKeyError(f"{event_type} has no data.{name}")
    return value
