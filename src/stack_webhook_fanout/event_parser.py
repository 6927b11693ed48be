"""Read a verified body as a Stack event: its type, whether it is valid, and the ids subscribers filter on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from .data_validation import DATA_VALIDATORS, is_valid_data

# What may travel as an SNS message attribute value taken from the payload: ids and type names, nothing else.
_ATTRIBUTE_SAFE: Final = re.compile(r"[A-Za-z0-9_.:$@+\-]{1,256}")


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """What the ingest path needs to know about a verified body.

    ``event_type`` is the body's ``type`` when it is a usable name, else None. ``known`` is True only for a type
    in the reference whose data validated. ``invalid_reason`` says why a body is not a valid event
    (``not_json``, ``not_an_object``, ``missing_type``, ``invalid_type``, ``invalid_data``), None when it is one.
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
    data = document.get("data")
    user_id, team_id = subject_ids(event_type, data)
    # pydantic-core validators of the models' own core schemas (data_validation.py): pydantic's verdict, but the
    # function's cold start does not import pydantic.
    if event_type not in DATA_VALIDATORS:
        # A type Stack added after this release: valid as far as we can tell, routed to the fallback topic.
        return ParsedEvent(event_type=event_type, known=False, user_id=user_id, team_id=team_id)
    if not is_valid_data(event_type, data):
        return ParsedEvent(
            event_type=event_type,
            known=False,
            invalid_reason="invalid_data",
            user_id=user_id,
            team_id=team_id,
        )
    return ParsedEvent(event_type=event_type, known=True, user_id=user_id, team_id=team_id)


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
