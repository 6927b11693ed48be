"""Whole Stack events, typed: what a subscriber gets as the body of a message from any topic.

``parse_stack_event(body)`` returns the typed event of a known type and raises ``pydantic.ValidationError``
for anything else (messages from the fallback topic included). The ingest function never imports this module.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from .models import (
    Issue,
    ProjectPermission,
    StackModel,
    StackTest,
    Team,
    TeamDeleted,
    TeamMembership,
    TeamPermission,
    User,
    UserDeleted,
)


class UserCreatedEvent(StackModel):
    type: Literal["user.created"]
    data: User


class UserUpdatedEvent(StackModel):
    type: Literal["user.updated"]
    data: User


class UserDeletedEvent(StackModel):
    type: Literal["user.deleted"]
    data: UserDeleted


class TeamCreatedEvent(StackModel):
    type: Literal["team.created"]
    data: Team


class TeamUpdatedEvent(StackModel):
    type: Literal["team.updated"]
    data: Team


class TeamDeletedEvent(StackModel):
    type: Literal["team.deleted"]
    data: TeamDeleted


class TeamMembershipCreatedEvent(StackModel):
    type: Literal["team_membership.created"]
    data: TeamMembership


class TeamMembershipDeletedEvent(StackModel):
    type: Literal["team_membership.deleted"]
    data: TeamMembership


class TeamPermissionCreatedEvent(StackModel):
    type: Literal["team_permission.created"]
    data: TeamPermission


class TeamPermissionDeletedEvent(StackModel):
    type: Literal["team_permission.deleted"]
    data: TeamPermission


class ProjectPermissionCreatedEvent(StackModel):
    type: Literal["project_permission.created"]
    data: ProjectPermission


class ProjectPermissionDeletedEvent(StackModel):
    type: Literal["project_permission.deleted"]
    data: ProjectPermission


class StackTestEvent(StackModel):
    type: Literal["stack.test"]
    data: StackTest


class IssueCreatedEvent(StackModel):
    type: Literal["issue.created"]
    data: Issue


class IssueRegressedEvent(StackModel):
    type: Literal["issue.regressed"]
    data: Issue


class IssueResolvedEvent(StackModel):
    type: Literal["issue.resolved"]
    data: Issue


class IssueIgnoredEvent(StackModel):
    type: Literal["issue.ignored"]
    data: Issue


class IssueMergedEvent(StackModel):
    type: Literal["issue.merged"]
    data: Issue


#: Any known event, discriminated by ``type``: ``STACK_EVENT_ADAPTER.validate_json(message_body)``.
StackEvent = Annotated[
    UserCreatedEvent
    | UserUpdatedEvent
    | UserDeletedEvent
    | TeamCreatedEvent
    | TeamUpdatedEvent
    | TeamDeletedEvent
    | TeamMembershipCreatedEvent
    | TeamMembershipDeletedEvent
    | TeamPermissionCreatedEvent
    | TeamPermissionDeletedEvent
    | ProjectPermissionCreatedEvent
    | ProjectPermissionDeletedEvent
    | StackTestEvent
    | IssueCreatedEvent
    | IssueRegressedEvent
    | IssueResolvedEvent
    | IssueIgnoredEvent
    | IssueMergedEvent,
    Field(discriminator="type"),
]
STACK_EVENT_ADAPTER: Final[TypeAdapter[StackEvent]] = TypeAdapter(StackEvent)


def parse_stack_event(body: str | bytes) -> StackEvent:
    """Parse a message body published by the ingest function into its typed event."""
    return STACK_EVENT_ADAPTER.validate_json(body)
