"""Typed models of the events Stack Auth sends.

Every model keeps fields it does not know (``extra="allow"``): Stack adds fields without versioning and the
verbatim body is what gets published anyway. Identifiers are required; fields that Stack has deprecated or added
later are optional so that an older or newer sender still validates. Whole events (``type`` + ``data``) for
consumers live in ``events.py``. The ingest function does not import this module: it routes on the verified ``type``
and leaves validation to subscribers, who parse with these models (``make schemas`` writes their JSON Schemas to
``schemas/`` for subscribers in other languages; a unit test fails until you do after changing one).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class StackModel(BaseModel):
    """Base of every model here: unknown fields are kept, values are immutable."""

    model_config = ConfigDict(extra="allow", frozen=True)


class TeamRef(StackModel):
    id: str


class RestrictedReason(StackModel):
    type: str  # "anonymous" | "email_not_verified" | "restricted_by_administrator", open to new values


class SignUpRiskScores(StackModel):
    bot: int
    free_trial_abuse: int


class RiskScores(StackModel):
    sign_up: SignUpRiskScores


class OAuthProvider(StackModel):
    id: str
    account_id: str
    email: str | None = None


class Team(StackModel):
    """``team.created`` / ``team.updated`` data, and a user's ``selected_team``."""

    id: str
    display_name: str
    profile_image_url: str | None = None
    created_at_millis: int
    client_metadata: JsonValue = None
    client_read_only_metadata: JsonValue = None
    server_metadata: JsonValue = None


class User(StackModel):
    """``user.created`` / ``user.updated`` data: the server-side user object. Holds personal data."""

    id: str
    primary_email: str | None = None
    primary_email_verified: bool = False
    primary_email_auth_enabled: bool = False
    display_name: str | None = None
    selected_team: Team | None = None
    selected_team_id: str | None = None
    profile_image_url: str | None = None
    signed_up_at_millis: int
    last_active_at_millis: int | None = None
    has_password: bool = False
    otp_auth_enabled: bool = False
    passkey_auth_enabled: bool = False
    client_metadata: JsonValue = None
    client_read_only_metadata: JsonValue = None
    server_metadata: JsonValue = None
    is_anonymous: bool = False
    is_restricted: bool = False
    restricted_reason: RestrictedReason | None = None
    restricted_by_admin: bool = False
    restricted_by_admin_reason: str | None = None
    restricted_by_admin_private_details: str | None = None
    country_code: str | None = None
    risk_scores: RiskScores | None = None
    oauth_providers: list[OAuthProvider] = Field(default_factory=list)
    auth_with_email: bool | None = None  # deprecated by Stack
    requires_totp_mfa: bool | None = None  # deprecated by Stack


class UserDeleted(StackModel):
    id: str
    teams: list[TeamRef] = Field(default_factory=list)


class TeamDeleted(StackModel):
    id: str


class TeamMembership(StackModel):
    team_id: str
    user_id: str


class TeamPermission(StackModel):
    id: str  # a permission id such as "team_member" or "$update_team"
    team_id: str
    user_id: str


class ProjectPermission(StackModel):
    id: str
    user_id: str


class StackTest(StackModel):
    """Sent by the dashboard's "test endpoint" button (camelCase, as Stack sends it)."""

    message: str
    endpointUrl: str | None = None  # Stack's own camelCase field name


#: A decimal string: Stack sends 64-bit counters as text, as they may exceed what a JSON number holds exactly (2**53).
DecimalString = Annotated[str, Field(pattern=r"^[0-9]+$")]


class Issue(StackModel):
    """``issue.*`` data (Stack's error tracking): one grouped error. ``issue.merged`` describes the surviving issue.

    ``short_id`` (a per-project counter) and ``times_seen`` are decimal strings, as Stack sends them: use
    ``int(issue.times_seen)``, which is exact at any size. ``status`` is ``unresolved``, ``resolved`` or ``ignored``
    and ``substatus`` ``new``, ``ongoing`` or ``regressed``, kept as text so that a new value still validates.
    """

    id: str
    short_id: DecimalString
    type: str  # the error's type, such as "TypeError"
    value: str  # the error's message
    culprit: str | None = None  # the code location
    level: str
    status: str
    substatus: str
    first_seen_at_millis: int
    last_seen_at_millis: int
    times_seen: DecimalString
    service_name: str | None = None
    environment: str | None = None
    release: str | None = None
    url: str  # a deep link to the issue in Stack's dashboard


#: The data model of every known event type (``tests/unit/test_models.py`` checks it covers KNOWN_EVENT_TYPES).
DATA_MODELS: Final[dict[str, type[StackModel]]] = {
    "user.created": User,
    "user.updated": User,
    "user.deleted": UserDeleted,
    "team.created": Team,
    "team.updated": Team,
    "team.deleted": TeamDeleted,
    "team_membership.created": TeamMembership,
    "team_membership.deleted": TeamMembership,
    "team_permission.created": TeamPermission,
    "team_permission.deleted": TeamPermission,
    "project_permission.created": ProjectPermission,
    "project_permission.deleted": ProjectPermission,
    "stack.test": StackTest,
    "issue.created": Issue,
    "issue.regressed": Issue,
    "issue.resolved": Issue,
    "issue.ignored": Issue,
    "issue.merged": Issue,
}
