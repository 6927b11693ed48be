"""``data_validation.py``: validators compiled from the models' own core schemas give pydantic's verdict, the generated
``data_schemas.py`` is fresh, its generator refuses what it does not know, and the ingest function no longer imports
pydantic.

The differential tests compare ``data_validation`` with ``models.DATA_MODELS[type].model_validate`` on the samples,
on mutations of them and on arbitrary JSON values (also through JSON text). Besides the verdict they compare the
errors' types and locations, which pins down that the two validators are the same; only the class name in a
``model_type`` message may differ (pydantic names the model, ours the stand-in).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime  # noqa: TC003  (pydantic reads the annotation when the test model is built)
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic.types import _get_type_name

import stack_webhook_fanout
from stack_webhook_fanout import data_validation
from stack_webhook_fanout.data_schema_support import json_type_name
from stack_webhook_fanout.devkit.core_schemas import MODULE_NAME, UnknownSchemaPart, render_data_schemas
from stack_webhook_fanout.devkit.samples import sample_data
from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.models import DATA_MODELS, StackModel

from .conftest import load_example_bodies

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATED = Path(stack_webhook_fanout.__file__).resolve().parent / MODULE_NAME
GENERATOR = REPO_ROOT / "tools" / "generate_data_schemas.py"
APP_PATH = REPO_ROOT / "functions" / "ingest" / "app.py"
TYPES = st.sampled_from(KNOWN_EVENT_TYPES)
DIFFERENTIAL = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE_BODIES = load_example_bodies()


# --- the two verdicts ------------------------------------------------------------------------------------------------


def pydantic_outcome(event_type: str, data: Any) -> list[tuple[str, tuple[int | str, ...]]] | None:
    """None when pydantic's model accepts ``data``, else its errors' (type, location)."""
    try:
        DATA_MODELS[event_type].model_validate(data)
    except ValidationError as exc:
        return [(e["type"], e["loc"]) for e in exc.errors(include_url=False)]
    return None


def compiled_outcome(event_type: str, data: Any) -> list[tuple[str, tuple[int | str, ...]]] | None:
    validator = data_validation.data_validator(event_type)
    assert validator is not None
    try:
        validator.validate_python(data)
    except data_validation.ValidationError as exc:
        return [(e["type"], e["loc"]) for e in exc.errors(include_url=False)]
    return None


def assert_same_verdict(event_type: str, data: Any) -> bool:
    """Assert both validators agree on ``data`` (verdict, error types and locations); return the verdict."""
    expected = pydantic_outcome(event_type, data)
    assert compiled_outcome(event_type, data) == expected, f"{event_type}: {data!r}"
    assert data_validation.is_valid_data(event_type, data) is (expected is None)
    return expected is None


def assert_same_verdict_from_text(event_type: str, text: str) -> None:
    """Parse ``text`` as the function does, then compare the verdicts and what ``parse_event`` says."""
    data = json.loads(text)
    valid = assert_same_verdict(event_type, data)
    body = '{"type": "' + event_type + '", "data": ' + text + "}"
    parsed = parse_event(body)
    assert parsed.known is valid
    assert parsed.invalid_reason == (None if valid else "invalid_data")


# --- strategies ------------------------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(
        ["", "0", "1", "1.0", "-7", " 5 ", "true", "false", "yes", "off", "null", "1e3", "\u00e9\U0001f600"]
    )
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
#: What a mutation puts in place of a value: wrong types, nulls, coercible strings and numbers, containers (copied:
#: sampled_from hands out the same object every time, and mutations change what they insert).
REPLACEMENTS = (
    SCALARS
    | st.sampled_from([[], {}, [1], ["x"], [None], [{}], {"id": 1}, {"type": None}, 2**64, -(2**63) - 1, 1.0, 1.5])
    | JSON_VALUES
).map(copy.deepcopy)
#: A key a mutation may add: one the models know (in the wrong place), or a new one.
KEYS = st.sampled_from(["id", "type", "team_id", "user_id", "sign_up", "bot", "teams", "email", "extra"]) | st.text(
    max_size=6
)


def rich_samples(event_type: str) -> list[Any]:
    """The sample of ``event_type``, its ``events/`` example, and for user types a variant with every nested model."""
    samples: list[Any] = [sample_data(event_type), json.loads(EXAMPLE_BODIES[event_type])["data"]]
    if event_type.startswith("user.") and event_type != "user.deleted":
        rich = sample_data("user.updated")
        rich["restricted_reason"] = {"type": "anonymous", "since": 1}
        rich["oauth_providers"].append({"id": "github", "account_id": "42", "email": None, "scopes": ["read"]})
        rich["selected_team"]["client_metadata"] = {"a": [1, 2.5, None, True, {"b": "c"}]}
        samples.append(rich)
    return samples


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys and list indexes), the empty one included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, (*prefix, index)))
    return found


def parent_and_key(root: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node, path[-1]


@st.composite
def mutated(draw: st.DrawFn, event_type: str) -> Any:
    """A sample of ``event_type`` with one to four mutations anywhere in it, nested models and lists included."""
    data = json.loads(json.dumps(draw(st.sampled_from(rich_samples(event_type)))))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(data)))
        action = draw(st.sampled_from(["remove", "replace", "null", "add", "append", "wrap"]))
        if not path:
            data = draw(REPLACEMENTS) if action == "replace" else data
            continue
        parent, key = parent_and_key(data, path)
        if action == "remove":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(REPLACEMENTS)
        elif action == "null":
            parent[key] = None
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(KEYS)] = draw(REPLACEMENTS)
        elif action == "append" and isinstance(parent[key], list):
            parent[key].append(draw(REPLACEMENTS))
    return data


def nested(value: Any, depth: int, kinds: list[str]) -> Any:
    for i in range(depth):
        value = [value] if kinds[i % len(kinds)] == "list" else {"k": value}
    return value


# --- the generated module --------------------------------------------------------------------------------------------


def test_committed_data_schemas_are_not_stale() -> None:
    assert GENERATED.read_text(encoding="utf-8") == render_data_schemas(), (
        f"src/stack_webhook_fanout/{MODULE_NAME} is stale: run `make schemas` and commit the result"
    )


def test_rendering_is_deterministic_and_has_no_ids() -> None:
    text = render_data_schemas()
    assert text == render_data_schemas()
    refs = re.findall(r'"(?:schema_)?ref": "([^"]*)"', text)
    assert "stack_webhook_fanout.models.User" in refs
    assert "pydantic.types.JsonValue" in refs
    assert all(re.fullmatch(r"[A-Za-z_.]+", ref) for ref in refs), refs
    assert "0x" not in text
    assert "<" not in text  # no repr of a class, function or bound method


def test_generator_check_mode_detects_an_edited_file(tmp_path: Path) -> None:
    out = tmp_path / MODULE_NAME

    def generate(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(GENERATOR), "--out", str(out), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)

    assert generate().returncode == 0
    assert out.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8")
    assert generate("--check").returncode == 0
    out.write_text(out.read_text(encoding="utf-8").replace('"extra_fields_behavior": "allow"', '"extra": "ignore"', 1))

    result = generate("--check")

    assert result.returncode == 1
    assert "stale" in result.stderr


def test_validators_cover_exactly_the_data_models_and_share_one_per_model() -> None:
    assert set(data_validation.DATA_VALIDATORS) == set(DATA_MODELS) == set(KNOWN_EVENT_TYPES)
    assert data_validation.data_validator("issue.created") is None
    for first in DATA_MODELS:
        for second in DATA_MODELS:
            same_model = DATA_MODELS[first] is DATA_MODELS[second]
            assert (data_validation.DATA_VALIDATORS[first] is data_validation.DATA_VALIDATORS[second]) is same_model
    with pytest.raises(KeyError):
        data_validation.is_valid_data("issue.created", {})


class _WithDate(StackModel):
    id: str
    at: datetime


class _WithValidator(StackModel):
    id: str

    @field_validator("id")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class _WithInit(StackModel):
    id: str

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)


class _WithFactory(StackModel):
    ids: list[str] = Field(default_factory=lambda: ["a"])


class _WithSetDefault(StackModel):
    tags: frozenset[str] = frozenset()


class _Outer(StackModel):
    inner: _WithFactory


@pytest.mark.parametrize(
    ("model", "classes", "message"),
    [
        (_WithDate, {_WithDate}, "core schema type 'datetime'"),
        (_WithValidator, {_WithValidator}, "core schema type 'function-after'"),
        (_WithInit, {_WithInit}, "custom __init__"),
        (_WithFactory, {_WithFactory}, "default_factory <function"),
        (_WithSetDefault, {_WithSetDefault}, "core schema type 'frozenset'"),
        (_Outer, {_Outer}, "is not one of models.py's"),
    ],
)
def test_generator_refuses_what_it_does_not_know(
    model: type[BaseModel], classes: set[type[BaseModel]], message: str
) -> None:
    with pytest.raises(UnknownSchemaPart, match="map it explicitly") as caught:
        render_data_schemas({"x.y": model}, classes=frozenset(classes))
    assert message in str(caught.value)


def test_json_type_name_is_pydantics_discriminator() -> None:
    class Flag(IntEnum):
        ON = 1

    class Text(str):
        pass

    class Items(list[int]):
        pass

    class Mapping(dict[str, int]):
        pass

    values = [None, True, False, 0, 2**70, 1.5, math.nan, "", "x", [], {}, Flag.ON, Text("t"), Items(), Mapping()]
    values += [object(), b"bytes", (1,), {1}, 1j, Ellipsis, type]
    for value in values:
        assert json_type_name(value) == _get_type_name(value), value


# --- differential: samples, mutations, arbitrary JSON ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_same_verdict_on_every_sample(event_type: str) -> None:
    for data in rich_samples(event_type):
        assert assert_same_verdict(event_type, data) is True
    # every type's sample against every other type's model too
    for other in KNOWN_EVENT_TYPES:
        assert_same_verdict(other, sample_data(event_type))


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
@DIFFERENTIAL
@given(data=st.data())
def test_same_verdict_on_mutated_samples(event_type: str, data: st.DataObject) -> None:
    value = data.draw(mutated(event_type))
    assert_same_verdict(event_type, value)
    assert_same_verdict_from_text(event_type, json.dumps(value))


@settings(max_examples=600, deadline=None)
@given(event_type=TYPES, value=JSON_VALUES)
def test_same_verdict_on_arbitrary_json(event_type: str, value: Any) -> None:
    assert_same_verdict(event_type, value)
    assert_same_verdict_from_text(event_type, json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(event_type=TYPES, extra=st.dictionaries(KEYS, JSON_VALUES, max_size=4), replacements=st.data())
def test_same_verdict_on_samples_with_arbitrary_json_fields(
    event_type: str, extra: dict[str, Any], replacements: st.DataObject
) -> None:
    # given: the sample, with its own fields set to arbitrary JSON values, and extra fields
    value = {**sample_data(event_type), **extra}
    for key in list(value):
        if replacements.draw(st.booleans()):
            value[key] = replacements.draw(JSON_VALUES)
    assert_same_verdict(event_type, value)
    assert_same_verdict_from_text(event_type, json.dumps(value))


@settings(max_examples=60, deadline=None)
@given(
    event_type=st.sampled_from(["user.created", "team.updated"]),
    field=st.sampled_from(["client_metadata", "server_metadata", "id", "extra"]),
    depth=st.integers(1, 900),
    kinds=st.lists(st.sampled_from(["list", "dict"]), min_size=1, max_size=3),
    leaf=SCALARS,
)
def test_same_verdict_on_deep_nesting(event_type: str, field: str, depth: int, kinds: list[str], leaf: Any) -> None:
    value = {**sample_data(event_type), field: nested(leaf, depth, kinds)}
    assert_same_verdict(event_type, value)
    assert_same_verdict_from_text(event_type, json.dumps(value))


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
@pytest.mark.parametrize(
    "text",
    [
        "null",
        "NaN",
        "-Infinity",
        "1e400",
        "123456789012345678901234567890",
        '"x"',
        "[]",
        "{}",
        '{"id": NaN}',
        '{"id": "a", "id": 1}',
        '{"id": 1, "id": "a", "user_id": "u", "team_id": "t", "message": "m"}',
        '{"id": "a", "user_id": "u", "team_id": "t", "message": "m", "display_name": "d", "created_at_millis": 1e3}',
        '{"id": "a", "display_name": "d", "created_at_millis": 1.0, "client_metadata": {"x": [NaN, Infinity]}}',
        '{"id": "a", "display_name": "d", "created_at_millis": "17", "profile_image_url": null}',
        '{"id": "\\ud800", "signed_up_at_millis": 1, "primary_email_verified": "yes", "teams": [{"id": "t"}, null]}',
        '{"id": "a", "signed_up_at_millis": 1, "risk_scores": {"sign_up": {"bot": "1", "free_trial_abuse": 1.5}}}',
        '{"id": "a", "signed_up_at_millis": 1, "oauth_providers": [{"id": "g", "account_id": 1}], "teams": {}}',
    ],
)
def test_same_verdict_from_json_text_edge_cases(event_type: str, text: str) -> None:
    assert_same_verdict_from_text(event_type, text)


# --- the cold path ---------------------------------------------------------------------------------------------------

_IMPORT_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ingest_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from stack_webhook_fanout.event_parser import parse_event
valid = parse_event('{"type": "team.deleted", "data": {"id": "t1"}}')
invalid = parse_event('{"type": "team.deleted", "data": {"id": 1}}')
print(json.dumps({
    "pydantic": sorted(m for m in sys.modules if m == "pydantic" or m.startswith("pydantic.")),
    "models": [m for m in ("stack_webhook_fanout.models", "stack_webhook_fanout.events",
                           "stack_webhook_fanout.sqs_records") if m in sys.modules],
    "pydantic_core": "pydantic_core" in sys.modules,
    "handler": callable(app.lambda_handler),
    "verdicts": [valid.known, invalid.invalid_reason],
}))
"""


def test_loading_the_ingest_function_does_not_import_pydantic() -> None:
    # given: the environment the function runs with (dummy credentials; nothing is called during init)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "EVENTS_TABLE_NAME": "events",
            "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack-AbCdEf",
            "TOPIC_ARNS": json.dumps(
                {t: f"arn:aws:sns:us-east-1:123456789012:{t.replace('.', '-')}" for t in DATA_MODELS}
            ),
            "FALLBACK_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:fallback",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "stack-webhook-fanout",
            "POWERTOOLS_METRICS_NAMESPACE": "StackWebhookFanout",
        }
    )

    # when: a fresh interpreter loads the handler file as Lambda does and parses a valid and an invalid event
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(APP_PATH)], env=env, capture_output=True, text=True, check=False
    )

    # then
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "pydantic": [],
        "models": [],
        "pydantic_core": True,
        "handler": True,
        "verdicts": [True, "invalid_data"],
    }
