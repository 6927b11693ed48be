"""Read a verified body as a Stack event: its type, whether it is a known one, and the ids subscribers filter on.

Routing trusts the verified ``type``: the signature proves Stack sent the body, so a known type goes to its topic
whatever its ``data`` holds. Stack changes the shape of its data without versioning; checking it here would divert
real events of a known type to the fallback topic. The typed models (``events.parse_stack_event``) are the
subscribers' contract: a subscriber that cannot parse a record fails it, and it lands in that subscriber's
dead-letter queue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from .event_types import KNOWN_EVENT_TYPES

# What may travel as an SNS message attribute value taken from the payload: ids and type names, nothing else.
_ATTRIBUTE_SAFE: Final = re.compile(r"[A-Za-z0-9_.:$@+\-]{1,256}")
_KNOWN: Final = frozenset(KNOWN_EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """What the ingest path needs to know about a verified body.

    ``event_type`` is the body's ``type`` when it is a usable name, else None. ``known`` is True for a type in
    ``KNOWN_EVENT_TYPES``, whatever the data holds. ``invalid_reason`` says why a body is not a Stack event at all
    (``not_json``, ``not_an_object``, ``missing_type``, ``invalid_type``); None for any usable type, known or not.
    """

    event_type: str | None
    known: bool
    invalid_reason: str | None = None
    user_id: str | None = None
    team_id: str | None = None


def attribute_safe(value: object) -> str | None:
    """Return ``value`` if it can be a message attribute value as is, else None."""
    if isinstance(value, str) and _ATTRIBUTE_SAFE.fullmatch(value):
        return value
    return None


def parse_event(body: bytes | str) -> ParsedEvent:
    """Parse ``{type, data}``; never raises, whatever the body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and UnicodeDecodeError; RecursionError, absurdly deep nesting.
        return ParsedEvent(event_type=None, known=False, invalid_reason="not_json")
    if not isinstance(document, dict):
        return ParsedEvent(event_type=None, known=False, invalid_reason="not_an_object")
    raw_type = document.get("type")
    if not isinstance(raw_type, str) or not raw_type:
        return ParsedEvent(event_type=None, known=False, invalid_reason="missing_type")
    event_type = attribute_safe(raw_type)
    if event_type is None:
        return ParsedEvent(event_type=None, known=False, invalid_reason="invalid_type")
    user_id, team_id = subject_ids(event_type, document.get("data"))
    # A type Stack added after this release is not known: it goes to the fallback topic, with no invalid_reason.
    return ParsedEvent(event_type=event_type, known=event_type in _KNOWN, user_id=user_id, team_id=team_id)


def subject_ids(event_type: str, data: Any) -> tuple[str | None, str | None]:
    """Return the (user id, team id) an event is about, for filter policies.

    ``user.*`` and ``team.*`` carry their subject as ``id``; other types name ``user_id`` / ``team_id``.
    A user's ``selected_team_id`` is not what a ``user.*`` event is about, so it is not reported.
    """
    if not isinstance(data, dict):
        return None, None
    if event_type.startswith("user."):
        return attribute_safe(data.get("id")), None
    if event_type.startswith("team."):
        return None, attribute_safe(data.get("id"))
    return attribute_safe(data.get("user_id")), attribute_safe(data.get("team_id"))
