"""Sample Stack events, one per type, and the API Gateway events under ``events/`` built from them.

The sample ``data`` of every type in :data:`~stack_webhook_fanout.event_types.KNOWN_EVENT_TYPES` (plus one type
Stack does not send yet, :data:`UNKNOWN_SAMPLE_TYPE`) lives here and only here: ``events/*.json``, the tests,
``make send`` and the local emulator all take their payloads from this module, and
``tools/resign_event.py --generate`` rewrites ``events/`` from it so the files cannot drift.

The payloads follow Stack Auth's shapes (the server-side user object with every field, team objects, ids as
UUIDs). The people in them are invented; they still count as personal data for the "no payload in logs" tests.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import TYPE_CHECKING, Any, Final

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .apigw import http_api_event
from .signing import new_message_id, sign_headers

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The documented secret of local development: ``events/*.json`` are signed with it and ``events/env.json``
#: records it. It is public on purpose; never use it for a real endpoint.
LOCAL_DEV_SECRET: Final = "whsec_" + base64.b64encode(b"stack-webhook-fanout-local-dev!!").decode()

#: A type Stack does not send (yet) and this release does not know: it must be accepted and routed to the fallback
#: topic.
UNKNOWN_SAMPLE_TYPE: Final = "session.created"

USER_ID: Final = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM_ID: Final = "ad962777-8244-496a-b6a2-e0c6a449c79e"
OTHER_TEAM_ID: Final = "5f0e8a2c-1b7d-4c43-9a6e-2d8f4b1c7e90"
_SIGNED_UP_AT: Final = 1745500000000
_LATER: Final = 1745586400000

ISSUE_ID: Final = "8f3d316e-08cf-4d69-8329-140c3241a285"
_ISSUE_FIRST_SEEN: Final = 1764000000000

#: An error grouped by Stack's error tracking, as ``issue.created`` describes it; the other ``issue.*`` samples are
#: its later states. ``short_id`` and ``times_seen`` are decimal strings, as Stack sends them.
_ISSUE: Final[dict[str, Any]] = {
    "id": ISSUE_ID,
    "short_id": "42",
    "type": "TypeError",
    "value": "Cannot read properties of undefined (reading 'id')",
    "culprit": "app/dashboard/page.tsx in DashboardPage",
    "level": "error",
    "status": "unresolved",
    "substatus": "new",
    "first_seen_at_millis": _ISSUE_FIRST_SEEN,
    "last_seen_at_millis": _ISSUE_FIRST_SEEN,
    "times_seen": "1",
    "service_name": "web",
    "environment": "production",
    "release": "1.4.2",
    "url": f"https://app.hexclave.com/projects/3241a285-8329-4d69-8f3d-316e08cf140c/observability/issues/{ISSUE_ID}",
}

_PERSONAL_TEAM: Final[dict[str, Any]] = {
    "id": TEAM_ID,
    "display_name": "Jane's Team",
    "profile_image_url": None,
    "created_at_millis": _SIGNED_UP_AT + 412,
    "client_metadata": None,
    "client_read_only_metadata": None,
    "server_metadata": None,
}

_USER: Final[dict[str, Any]] = {
    "id": USER_ID,
    "primary_email": "jane@example.com",
    "primary_email_verified": True,
    "primary_email_auth_enabled": True,
    "display_name": "Jane Doe",
    "selected_team": None,
    "selected_team_id": None,
    "profile_image_url": None,
    "signed_up_at_millis": _SIGNED_UP_AT,
    "last_active_at_millis": _SIGNED_UP_AT,
    "has_password": True,
    "otp_auth_enabled": False,
    "passkey_auth_enabled": False,
    "client_metadata": {"theme": "dark"},
    "client_read_only_metadata": None,
    "server_metadata": None,
    "is_anonymous": False,
    "is_restricted": False,
    "restricted_reason": None,
    "restricted_by_admin": False,
    "restricted_by_admin_reason": None,
    "restricted_by_admin_private_details": None,
    "country_code": "US",
    "risk_scores": {"sign_up": {"bot": 0, "free_trial_abuse": 0}},
    "oauth_providers": [{"id": "google", "account_id": "10987654321", "email": "jane@gmail.com"}],
    "auth_with_email": True,
    "requires_totp_mfa": False,
}

_SAMPLE_DATA: Final[dict[str, dict[str, Any]]] = {
    # Sign-up: the user comes first, before the personal team exists.
    "user.created": _USER,
    # Later: the personal team is selected, the profile edited, server metadata set by the backend.
    "user.updated": {
        **_USER,
        "display_name": "Jane Q. Doe",
        "selected_team": _PERSONAL_TEAM,
        "selected_team_id": TEAM_ID,
        "profile_image_url": "https://cdn.example.com/avatars/3241a285.png",
        "last_active_at_millis": _LATER,
        "otp_auth_enabled": True,
        "server_metadata": {"plan": "pro", "stripe_customer": "cus_Q1w2E3r4T5y6U7"},
    },
    "user.deleted": {"id": USER_ID, "teams": [{"id": TEAM_ID}, {"id": OTHER_TEAM_ID}]},
    "team.created": _PERSONAL_TEAM,
    "team.updated": {
        **_PERSONAL_TEAM,
        "display_name": "Acme Platform",
        "profile_image_url": "https://cdn.example.com/teams/ad962777.png",
        "client_metadata": {"color": "#3b82f6"},
        "client_read_only_metadata": {"seats": 5},
        "server_metadata": {"billing_account": "acct_0042"},
    },
    "team.deleted": {"id": OTHER_TEAM_ID},
    "team_membership.created": {"team_id": OTHER_TEAM_ID, "user_id": USER_ID},
    "team_membership.deleted": {"team_id": OTHER_TEAM_ID, "user_id": USER_ID},
    "team_permission.created": {"id": "$update_team", "team_id": OTHER_TEAM_ID, "user_id": USER_ID},
    "team_permission.deleted": {"id": "team_member", "team_id": OTHER_TEAM_ID, "user_id": USER_ID},
    "project_permission.created": {"id": "admin", "user_id": USER_ID},
    "project_permission.deleted": {"id": "admin", "user_id": USER_ID},
    "stack.test": {
        "message": "Stack webhook test event triggered from the Stack dashboard.",
        "endpointUrl": "https://example.com/webhooks/stack",
    },
    "issue.created": _ISSUE,
    # Resolved a day later, then seen again with the next release.
    "issue.resolved": {
        **_ISSUE,
        "status": "resolved",
        "substatus": "ongoing",
        "times_seen": "37",
        "last_seen_at_millis": _ISSUE_FIRST_SEEN + 86_400_000,
    },
    "issue.regressed": {
        **_ISSUE,
        "status": "unresolved",
        "substatus": "regressed",
        "times_seen": "38",
        "last_seen_at_millis": _ISSUE_FIRST_SEEN + 2 * 86_400_000,
        "release": "1.4.3",
    },
    "issue.ignored": {
        **_ISSUE,
        "status": "ignored",
        "substatus": "ongoing",
        "times_seen": "52",
        "environment": None,
        "last_seen_at_millis": _ISSUE_FIRST_SEEN + 3 * 86_400_000,
    },
    # The surviving primary issue of a merge: its counter beyond 2**53, where only a decimal string stays exact.
    "issue.merged": {
        **_ISSUE,
        "short_id": "7",
        "substatus": "ongoing",
        "times_seen": "9007199254740993",
        "last_seen_at_millis": _ISSUE_FIRST_SEEN + 4 * 86_400_000,
    },
    UNKNOWN_SAMPLE_TYPE: {
        "id": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "created_at_millis": _LATER,
        "ip_address_hash": "9f86d081884c7d65",
    },
}

#: Every type with a sample: the known types in their canonical order, then :data:`UNKNOWN_SAMPLE_TYPE`.
SAMPLE_TYPES: Final[tuple[str, ...]] = (*KNOWN_EVENT_TYPES, UNKNOWN_SAMPLE_TYPE)

#: Headers a Svix delivery carries besides the signature, as API Gateway passes them on.
_DELIVERY_HEADERS: Final[dict[str, str]] = {
    "content-type": "application/json",
    "user-agent": "Svix-Webhooks/1.62.0 (sender-8Gx2k; +https://www.svix.com/http-sources/)",
    "accept": "*/*",
    "host": "abc123def4.execute-api.us-east-1.amazonaws.com",
    "x-forwarded-proto": "https",
    "x-forwarded-port": "443",
    "x-forwarded-for": "44.228.126.217",
}
_SVIX_HEADERS: Final = ("svix-id", "svix-timestamp", "svix-signature")


def sample_data(event_type: str) -> dict[str, Any]:
    """Return a fresh copy of the sample ``data`` of ``event_type``; KeyError for a type without a sample."""
    if event_type not in _SAMPLE_DATA:
        raise KeyError(f"no sample for event type {event_type!r}; samples exist for: {', '.join(SAMPLE_TYPES)}")
    return copy.deepcopy(_SAMPLE_DATA[event_type])


def sample_body(event_type: str) -> bytes:
    """Return the compact JSON body ``{"type": ..., "data": ...}`` Stack would send for ``event_type``."""
    document = {"type": event_type, "data": sample_data(event_type)}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sample_api_event(
    event_type: str,
    secret: str | list[str] = LOCAL_DEV_SECRET,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """Return the API Gateway HTTP API (v2) event of a signed delivery of the sample of ``event_type``."""
    body = sample_body(event_type)
    headers = {**_DELIVERY_HEADERS, "content-length": str(len(body))}
    headers.update(sign_headers(secret, body, msg_id=msg_id, timestamp=timestamp))
    return http_api_event(body, headers, source_ip=_DELIVERY_HEADERS["x-forwarded-for"])


def event_body(event: Mapping[str, Any]) -> bytes:
    """Return the raw body of an API Gateway v2 event (base64-decoded when flagged)."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("the event's body is not a string")
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def resign_event(
    event: Mapping[str, Any],
    secret: str | list[str],
    *,
    keep_id: bool = False,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """Return a copy of an API Gateway v2 event whose ``svix-*`` headers sign its body with ``secret`` now.

    The svix-id is a fresh one unless ``keep_id`` (a redelivery of the same message keeps its id);
    ``timestamp`` defaults to the current time. The request context's time is moved along with it.
    """
    resigned = copy.deepcopy(dict(event))
    headers = {
        name.lower(): value
        for name, value in (resigned.get("headers") or {}).items()
        if name.lower() not in _SVIX_HEADERS
    }
    old_id = {name.lower(): value for name, value in (event.get("headers") or {}).items()}.get("svix-id")
    msg_id = old_id if keep_id and old_id else new_message_id()
    when = int(time.time()) if timestamp is None else timestamp
    headers.update(sign_headers(secret, event_body(event), msg_id=msg_id, timestamp=when))
    resigned["headers"] = headers
    context = resigned.get("requestContext")
    if isinstance(context, dict):
        context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(when))
        context["timeEpoch"] = when * 1000
    return resigned
