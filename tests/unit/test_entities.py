"""The entity of each event type (``stack_webhook_fanout.entities``) and what the guard module imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stack_webhook_fanout.entities import KIND_OF_TYPE, EntityKeyError, entity_of, is_deletion
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"
ISSUE_TYPES = ("issue.created", "issue.regressed", "issue.resolved", "issue.ignored", "issue.merged")


@pytest.mark.parametrize(
    ("event_type", "data", "key", "parents"),
    [
        ("user.created", {"id": USER, "display_name": "Jane"}, f"user#{USER}", ()),
        ("user.updated", {"id": USER}, f"user#{USER}", ()),
        ("user.deleted", {"id": USER, "teams": [{"id": TEAM}]}, f"user#{USER}", ()),
        ("team.created", {"id": TEAM}, f"team#{TEAM}", ()),
        ("team.deleted", {"id": TEAM}, f"team#{TEAM}", ()),
        (
            "team_membership.created",
            {"team_id": TEAM, "user_id": USER},
            f"team_membership#{TEAM}#{USER}",
            (f"user#{USER}", f"team#{TEAM}"),
        ),
        (
            "team_permission.deleted",
            {"id": "$update_team", "team_id": TEAM, "user_id": USER},
            f"team_permission#{TEAM}#{USER}#$update_team",
            (f"user#{USER}", f"team#{TEAM}"),
        ),
        (
            "project_permission.created",
            {"id": "admin", "user_id": USER},
            f"project_permission#{USER}#admin",
            (f"user#{USER}",),
        ),
        (
            "issue.merged",
            {"id": "8f3d316e-08cf-4d69-8329-140c3241a285"},
            "issue#8f3d316e-08cf-4d69-8329-140c3241a285",
            (),
        ),
    ],
)
def test_entity_keys_are_the_ids_of_the_issue(
    event_type: str, data: dict[str, object], key: str, parents: tuple[str, ...]
) -> None:
    entity = entity_of(event_type, data)
    assert entity is not None
    assert (entity.key, entity.parent_keys) == (key, parents)


def test_the_same_entity_whatever_the_action_and_the_other_fields() -> None:
    created = entity_of("team_membership.created", {"team_id": TEAM, "user_id": USER})
    deleted = entity_of("team_membership.deleted", {"user_id": USER, "team_id": TEAM, "extra": 1})
    assert created == deleted
    other_team = entity_of("team_membership.created", {"team_id": USER, "user_id": TEAM})
    assert other_team != created


@pytest.mark.parametrize("event_type", ["stack.test", "user.renamed", "unknown.type", "user_permission.created", ""])
def test_stack_test_and_undeclared_types_have_no_entity(event_type: str) -> None:
    assert entity_of(event_type, {"id": USER}) is None


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("user.updated", {}),
        ("user.updated", {"id": ""}),
        ("user.updated", {"id": 42}),
        ("team_membership.created", {"team_id": TEAM}),
        ("team_permission.created", {"team_id": TEAM, "user_id": USER}),
    ],
)
def test_a_missing_key_field_is_an_error_not_an_entity_less_event(event_type: str, data: dict[str, object]) -> None:
    with pytest.raises(EntityKeyError, match=r"has no data\."):
        entity_of(event_type, data)


def test_every_known_type_but_stack_test_has_an_entity_and_so_have_the_issue_types() -> None:
    assert set(KIND_OF_TYPE) == (set(KNOWN_EVENT_TYPES) - {"stack.test"}) | set(ISSUE_TYPES)
    assert [t for t in KIND_OF_TYPE if is_deletion(t)] == [
        "user.deleted",
        "team.deleted",
        "team_membership.deleted",
        "team_permission.deleted",
        "project_permission.deleted",
    ]


def test_the_guard_imports_only_the_standard_library_and_botocore() -> None:
    # given: a fresh interpreter that imports the guard
    code = (
        "import sys, json; before = set(sys.modules); import stack_webhook_fanout.entity_guard;"
        " print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    top = {name.split(".")[0] for name in loaded}
    ours = {name for name in loaded if name.startswith("stack_webhook_fanout.")}

    # then: no pydantic, no Powertools, no boto3, nothing of the ingest function
    assert {"pydantic", "pydantic_core", "aws_lambda_powertools", "boto3", "standardwebhooks"}.isdisjoint(top)
    assert ours == {
        "stack_webhook_fanout.entity_guard",
        "stack_webhook_fanout.entity_decisions",
        "stack_webhook_fanout.entities",
        "stack_webhook_fanout.event_time",
    }
    assert "botocore" in top
