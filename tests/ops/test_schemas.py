"""JSON Schemas of the event types: committed, fresh, and true to the models and the samples."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from jsonschema import Draft202012Validator
from stack_webhook_fanout_tools.devkit.samples import sample_body

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import REPO_ROOT, SCHEMA_TOOL, SCHEMAS_DIR

if TYPE_CHECKING:
    from pathlib import Path


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCHEMA_TOOL), *args], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )


def schema(event_type: str) -> dict[str, object]:
    document = json.loads((SCHEMAS_DIR / f"{event_type}.json").read_text())
    assert isinstance(document, dict)
    return document


def test_committed_schemas_are_not_stale(tmp_path: Path) -> None:
    # given: the schemas generated now from the models
    result = generate("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr

    # then: the committed folder holds exactly the same files, byte for byte
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in SCHEMAS_DIR.iterdir() if p.is_file()}
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"schemas/ is stale ({', '.join(stale)}): run `make schemas` and commit the result"


def test_schema_check_mode_detects_an_edited_file(tmp_path: Path) -> None:
    # given: a fresh folder, then one schema edited by hand and one extra file
    assert generate("--out", str(tmp_path)).returncode == 0
    assert generate("--out", str(tmp_path), "--check").returncode == 0
    path = tmp_path / "user.created.json"
    path.write_text(path.read_text().replace('"id"', '"identifier"'))
    (tmp_path / "session.created.json").write_text("{}\n")

    # when
    result = generate("--out", str(tmp_path), "--check")

    # then
    assert result.returncode == 1
    assert "session.created.json, user.created.json" in result.stderr


def test_schemas_exist_for_every_known_type_and_nothing_else() -> None:
    names = {p.name for p in SCHEMAS_DIR.iterdir()}
    assert names == {f"{t}.json" for t in KNOWN_EVENT_TYPES} | {"README.md"}
    assert len((SCHEMAS_DIR / "README.md").read_text().strip().splitlines()) == 1


def test_schema_output_is_deterministic_with_sorted_keys_and_a_trailing_newline() -> None:
    text = (SCHEMAS_DIR / "team.created.json").read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_sample_event_of_each_type_is_valid_against_its_schema(event_type: str) -> None:
    validator = Draft202012Validator(schema(event_type))
    Draft202012Validator.check_schema(schema(event_type))

    errors = list(validator.iter_errors(json.loads(sample_body(event_type))))

    assert errors == []


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_schema_of_each_type_refuses_another_type_and_missing_data(event_type: str) -> None:
    validator = Draft202012Validator(schema(event_type))
    body = json.loads(sample_body(event_type))
    other = next(t for t in KNOWN_EVENT_TYPES if t != event_type)

    assert not validator.is_valid({**body, "type": other})
    assert not validator.is_valid({"type": event_type})


def test_schemas_keep_unknown_fields_allowed_as_the_models_do() -> None:
    # given: a user.created event with fields Stack may add later, at the top level and in data
    body = json.loads(sample_body("user.created"))
    body["new_top_level_field"] = 1
    body["data"]["new_data_field"] = {"x": [1, 2]}

    assert Draft202012Validator(schema("user.created")).is_valid(body)


def test_schema_of_user_events_requires_the_identifiers() -> None:
    validator = Draft202012Validator(schema("user.deleted"))
    body = json.loads(sample_body("user.deleted"))
    del body["data"]["id"]

    assert not validator.is_valid(body)
