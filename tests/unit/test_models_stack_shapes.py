"""The typed models accept what Stack sends: payload shapes from Stack's public source, every known type.

The shapes follow stack-auth's ``packages/stack-shared/src/interface/crud/{users,teams,team-permissions,
project-permissions}.ts`` (the webhook schemas are the server read schemas) and ``apps/backend/src/lib/webhooks.tsx``,
at several points in time: the 2024 user object (``contact_channels``, no ``*_auth_enabled``, no ``is_anonymous``),
the 2025 additions one by one (``is_anonymous``; ``is_restricted`` and ``restricted_reason``; ``restricted_by_admin*``;
``country_code`` and ``risk_scores``), and today's object with every optional part filled in: a non-null
``selected_team`` with metadata, ``oauth_providers``, metadata of every JSON kind, and a non-null ``restricted_reason``.
Each shape must parse as a whole event (``events.parse_stack_event``, what a subscriber calls), keep every field it
came with, and give back the values it was sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.events import parse_stack_event

USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"
OTHER_TEAM = "0f3bd4a9-5e1c-4c52-9d0e-2b6f7c1a8e44"

# Metadata is any JSON value (or null) on users and teams: Stack stores what the developer sets.
METADATA: dict[str, Any] = {
    "plan": "pro",
    "seats": 12,
    "ratio": 0.75,
    "flags": [True, False, None],
    "nested": {"deep": [{"a": 1}, [], {}], "empty": ""},
    "unicode": "Zürich 東京 🚀",
}

# interface/crud/issues.ts: the one payload of every issue.* type (a warning of another service than the samples).
ISSUE_TYPES = ("issue.created", "issue.regressed", "issue.resolved", "issue.ignored", "issue.merged")
ISSUE_OBJECT: dict[str, Any] = {
    "id": "c7e1f0a2-5b3d-4e8f-9a61-0d2b4c6e8f10",
    "short_id": "1187",
    "type": "ValueError",
    "value": "invalid literal for int() with base 10: 'abc'",
    "culprit": "api/orders.py in create_order",
    "level": "warning",
    "status": "unresolved",
    "substatus": "ongoing",
    "first_seen_at_millis": 1761955200000,
    "last_seen_at_millis": 1764547200000,
    "times_seen": "2048",
    "service_name": "orders-api",
    "environment": "staging",
    "release": "2026.11.3",
    "url": "https://app.hexclave.com/projects/ad962777-8244-496a-b6a2-e0c6a449c79e/observability/issues/c7e1f0a2",
}
# service_name, environment and release are nullable; a counter beyond 2**53 stays exact as a decimal string.
ISSUE_OBJECT_NULLS: dict[str, Any] = {
    **ISSUE_OBJECT,
    "service_name": None,
    "environment": None,
    "release": None,
    "status": "resolved",
    "substatus": "ongoing",
    "times_seen": "18446744073709551615",
    "short_id": "9007199254740993",
}

# teamsCrudServerReadSchema: client_metadata, client_read_only_metadata and server_metadata are optional (absent when
# unset in older responses), profile_image_url nullable.
TEAM_OBJECT: dict[str, Any] = {
    "id": TEAM,
    "display_name": "Jane's Team",
    "profile_image_url": "data:image/png;base64,iVBORw0KGgo=",
    "created_at_millis": 1745500000000,
    "client_metadata": METADATA,
    "client_read_only_metadata": ["a", 1, None],
    "server_metadata": "a plain string is JSON too",
}
TEAM_OBJECT_MINIMAL: dict[str, Any] = {
    "id": TEAM,
    "display_name": "Jane's Team",
    "profile_image_url": None,
    "created_at_millis": 1745500000000,
}

# The user object of 2024 (stack-auth/stack, usersCrudServerReadSchema then): contact_channels, no *_auth_enabled,
# no is_anonymous, no restriction fields, no country or risk scores.
USER_2024: dict[str, Any] = {
    "id": USER,
    "primary_email": "jane@example.com",
    "primary_email_verified": True,
    "display_name": "Jane Doe",
    "selected_team": None,
    "selected_team_id": None,
    "profile_image_url": None,
    "signed_up_at_millis": 1717000000000,
    "has_password": True,
    "client_metadata": None,
    "client_read_only_metadata": None,
    "server_metadata": None,
    "last_active_at_millis": 1717000000000,
    "contact_channels": [
        {
            "id": "c0b5a3d2-0000-4000-8000-000000000001",
            "type": "email",
            "value": "jane@example.com",
            "is_primary": True,
            "is_verified": True,
            "used_for_auth": True,
        }
    ],
    "oauth_providers": [],
    "auth_with_email": True,
    "requires_totp_mfa": False,
}
# Early 2025: the *_auth_enabled flags, contact channels gone, then is_anonymous.
USER_EARLY_2025: dict[str, Any] = {
    **{k: v for k, v in USER_2024.items() if k != "contact_channels"},
    "primary_email_auth_enabled": True,
    "otp_auth_enabled": False,
    "passkey_auth_enabled": False,
    "is_anonymous": False,
}
# Then is_restricted and restricted_reason (present iff restricted).
USER_RESTRICTED_2025: dict[str, Any] = {
    **USER_EARLY_2025,
    "primary_email_verified": False,
    "is_restricted": True,
    "restricted_reason": {"type": "email_not_verified"},
}
# Then restricted_by_admin and its two texts.
USER_ADMIN_RESTRICTED: dict[str, Any] = {
    **USER_EARLY_2025,
    "is_restricted": True,
    "restricted_reason": {"type": "restricted_by_administrator"},
    "restricted_by_admin": True,
    "restricted_by_admin_reason": "Terms of service violation",
    "restricted_by_admin_private_details": "Restricted by sign-up rule: rule_1 (Block disposable domains)",
}
# Today (the reference example), with every optional part filled in.
USER_CURRENT: dict[str, Any] = {
    "id": USER,
    "primary_email": "jane@example.com",
    "primary_email_verified": True,
    "primary_email_auth_enabled": True,
    "display_name": "Jane Doe",
    "selected_team": TEAM_OBJECT,
    "selected_team_id": TEAM,
    "profile_image_url": "https://example.com/jane.png",
    "signed_up_at_millis": 1745500000000,
    "last_active_at_millis": 1745500123456,
    "has_password": True,
    "otp_auth_enabled": True,
    "passkey_auth_enabled": True,
    "client_metadata": METADATA,
    "client_read_only_metadata": [1, 2, 3],
    "server_metadata": {"stripe_customer": "cus_123"},
    "is_anonymous": False,
    "is_restricted": False,
    "restricted_reason": None,
    "restricted_by_admin": False,
    "restricted_by_admin_reason": None,
    "restricted_by_admin_private_details": None,
    "country_code": "CH",
    "risk_scores": {"sign_up": {"bot": 100, "free_trial_abuse": 35}},
    "oauth_providers": [
        {"id": "google", "account_id": "10987654321", "email": "jane@gmail.com"},
        {"id": "github", "account_id": "583231", "email": None},
        {"id": "microsoft", "account_id": "00000000-0000-0000-6d2e-9b4d3a1c0f77"},
    ],
    "auth_with_email": True,
    "requires_totp_mfa": False,
}
# An anonymous user: no email, no name, restricted as anonymous, selected team of the minimal shape.
USER_ANONYMOUS: dict[str, Any] = {
    **USER_CURRENT,
    "primary_email": None,
    "primary_email_verified": False,
    "primary_email_auth_enabled": False,
    "display_name": None,
    "selected_team": TEAM_OBJECT_MINIMAL,
    "has_password": False,
    "otp_auth_enabled": False,
    "passkey_auth_enabled": False,
    "client_metadata": None,
    "client_read_only_metadata": None,
    "server_metadata": None,
    "is_anonymous": True,
    "is_restricted": True,
    "restricted_reason": {"type": "anonymous"},
    "country_code": None,
    "risk_scores": {"sign_up": {"bot": 0, "free_trial_abuse": 0}},
    "oauth_providers": [],
}

USER_SHAPES = {
    "2024": USER_2024,
    "early-2025": USER_EARLY_2025,
    "restricted-email-not-verified": USER_RESTRICTED_2025,
    "restricted-by-admin": USER_ADMIN_RESTRICTED,
    "current": USER_CURRENT,
    "anonymous": USER_ANONYMOUS,
}

# (event type, shape name, data) for every type Stack sends, several shapes where Stack sends several.
SHAPES: list[tuple[str, str, dict[str, Any]]] = [
    *((t, name, data) for t in ("user.created", "user.updated") for name, data in USER_SHAPES.items()),
    ("user.deleted", "one-team", {"id": USER, "teams": [{"id": TEAM}]}),
    ("user.deleted", "no-team", {"id": USER, "teams": []}),
    ("user.deleted", "two-teams", {"id": USER, "teams": [{"id": TEAM}, {"id": OTHER_TEAM}]}),
    *((t, "full", TEAM_OBJECT) for t in ("team.created", "team.updated")),
    *((t, "minimal", TEAM_OBJECT_MINIMAL) for t in ("team.created", "team.updated")),
    ("team.created", "null-metadata", {**TEAM_OBJECT_MINIMAL, "client_metadata": None, "server_metadata": None}),
    ("team.deleted", "id", {"id": TEAM}),
    *((t, "ids", {"team_id": TEAM, "user_id": USER}) for t in ("team_membership.created", "team_membership.deleted")),
    *(
        (t, name, {"id": permission, "team_id": TEAM, "user_id": USER})
        for t in ("team_permission.created", "team_permission.deleted")
        for name, permission in (("default", "team_member"), ("system", "$update_team"), ("custom", "billing:write"))
    ),
    *(
        (t, name, {"id": permission, "user_id": USER})
        for t in ("project_permission.created", "project_permission.deleted")
        for name, permission in (("custom", "admin"), ("system", "$read_members"))
    ),
    *((t, "reference", ISSUE_OBJECT) for t in ISSUE_TYPES),
    *((t, "nulls", ISSUE_OBJECT_NULLS) for t in ISSUE_TYPES),
    (
        "stack.test",
        "dashboard-button",
        {
            "message": "Stack webhook test event triggered from the Stack dashboard.",
            "endpointUrl": "https://example.com/webhooks/stack",
        },
    ),
]


def test_the_shapes_cover_every_known_type() -> None:
    assert {event_type for event_type, _, _ in SHAPES} == set(KNOWN_EVENT_TYPES)


@pytest.mark.parametrize(
    ("event_type", "data"), [(t, d) for t, _, d in SHAPES], ids=[f"{t}:{name}" for t, name, _ in SHAPES]
)
def test_a_subscriber_parses_what_stack_sends(event_type: str, data: dict[str, Any]) -> None:
    # given the body Stack sends (the bytes a subscriber receives from the topic)
    sent = copy.deepcopy(data)
    body = json.dumps({"type": event_type, "data": data})

    # when a subscriber parses it with the typed models
    event = parse_stack_event(body)

    # then it is the event of that type, every field it came with is kept with its value, nothing was added
    assert event.type == event_type
    assert event.data.model_dump(mode="json", exclude_unset=True) == sent
    assert json.loads(event.model_dump_json(exclude_unset=True)) == {"type": event_type, "data": sent}


def test_nested_values_come_back_typed() -> None:
    event = parse_stack_event(json.dumps({"type": "user.updated", "data": USER_CURRENT}))
    user = event.data
    assert user.selected_team is not None
    assert user.selected_team.id == TEAM
    assert user.selected_team.client_metadata == METADATA
    assert [(p.id, p.email) for p in user.oauth_providers] == [
        ("google", "jane@gmail.com"),
        ("github", None),
        ("microsoft", None),
    ]
    assert user.risk_scores is not None
    assert (user.risk_scores.sign_up.bot, user.risk_scores.sign_up.free_trial_abuse) == (100, 35)

    anonymous = parse_stack_event(json.dumps({"type": "user.created", "data": USER_ANONYMOUS})).data
    assert anonymous.restricted_reason is not None
    assert anonymous.restricted_reason.type == "anonymous"


def test_a_restriction_reason_stack_adds_later_is_kept() -> None:
    data = {**USER_CURRENT, "is_restricted": True, "restricted_reason": {"type": "suspicious_sign_up", "since": 1}}
    user = parse_stack_event(json.dumps({"type": "user.updated", "data": data})).data
    assert user.model_dump(mode="json", exclude_unset=True)["restricted_reason"] == {
        "type": "suspicious_sign_up",
        "since": 1,
    }
