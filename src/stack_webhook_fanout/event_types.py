"""The event types Stack Auth sends and the SNS topic each one is published to.

This module is the single source of truth for the list: the template's topics, outputs and the
function's ``TOPIC_ARNS`` map are checked against it by ``tests/template``, and the local emulator
provisions its topics from it.
"""

from __future__ import annotations

from typing import Final

#: Every type Stack Auth sends: the twelve of its reference, the dashboard's ``stack.test``, and the five of its error
#: tracking (``issue.*``, sent by the newer code base also published as Hexclave). Anything else is routed to the
#: fallback topic: new types must never be rejected.
KNOWN_EVENT_TYPES: Final[tuple[str, ...]] = (
    "user.created",
    "user.updated",
    "user.deleted",
    "team.created",
    "team.updated",
    "team.deleted",
    "team_membership.created",
    "team_membership.deleted",
    "team_permission.created",
    "team_permission.deleted",
    "project_permission.created",
    "project_permission.deleted",
    "stack.test",
    "issue.created",
    "issue.regressed",
    "issue.resolved",
    "issue.ignored",
    "issue.merged",
)

#: CloudFormation logical id of the topic for types not in ``KNOWN_EVENT_TYPES`` and for verified
#: bodies that are not valid events.
FALLBACK_TOPIC_LOGICAL_ID: Final = "FallbackTopic"


def topic_logical_id(event_type: str) -> str:
    """Return the template's logical id for the topic of a known event type.

    ``team_membership.created`` -> ``TeamMembershipCreatedTopic``.
    """
    words = event_type.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words) + "Topic"


def topic_slug(event_type: str) -> str:
    """Return a short, name-safe form of a type, used in local topic names: ``team-membership-created``."""
    return event_type.replace(".", "-").replace("_", "-")


TOPIC_LOGICAL_IDS: Final[dict[str, str]] = {t: topic_logical_id(t) for t in KNOWN_EVENT_TYPES}
