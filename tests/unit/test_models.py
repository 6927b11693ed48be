"""``models.py``, ``events.py`` and ``event_parser.py``: every example in ``events/`` validates, unknown fields are
kept, required ids are required, and ``parse_event`` never raises whatever the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from stack_webhook_fanout.event_parser import ParsedEvent, attribute_safe, parse_event, subject_ids
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.events import STACK_EVENT_ADAPTER, parse_stack_event
from stack_webhook_fanout.models import DATA_MODELS

USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"


def data_of(body: str) -> dict[str, Any]:
    data = json.loads(body)["data"]
    assert isinstance(data, dict)
    return data


def required_fields(event_type: str) -> list[str]:
    return [name for name, info in DATA_MODELS[event_type].model_fields.items() if info.is_required()]


# --- models ---------------------------------------------------------------------------------------------------------


def test_data_models_cover_exactly_the_known_types() -> None:
    assert set(DATA_MODELS) == set(KNOWN_EVENT_TYPES)
    assert len(KNOWN_EVENT_TYPES) == len(set(KNOWN_EVENT_TYPES)) == 18


ISSUE_TYPES = ("issue.created", "issue.regressed", "issue.resolved", "issue.ignored", "issue.merged")


@pytest.mark.parametrize("event_type", ISSUE_TYPES)
def test_issue_events_are_typed_with_their_counters_as_decimal_strings(
    example_bodies: dict[str, str], event_type: str
) -> None:
    # given the sample of an issue.* type, as Stack sends it (its counters as decimal strings)
    document = json.loads(example_bodies[event_type])
    document["data"]["fingerprint_version"] = 2  # a field Stack adds later
    # when a subscriber parses it
    event = parse_stack_event(json.dumps(document))
    # then it is that type's event, its counters are kept as the exact text sent, and the unknown field is kept
    assert type(event).__name__ == "Issue" + event_type.removeprefix("issue.").capitalize() + "Event"
    issue = event.data
    assert (issue.short_id, issue.times_seen) == (document["data"]["short_id"], document["data"]["times_seen"])
    assert int(issue.times_seen) == int(document["data"]["times_seen"])
    assert issue.model_dump()["fingerprint_version"] == 2


def test_an_issue_counter_beyond_2_to_the_53_stays_exact(example_bodies: dict[str, str]) -> None:
    issue = parse_stack_event(example_bodies["issue.merged"]).data
    assert int(issue.times_seen) == 2**53 + 1  # a JSON number would have read 2**53


@pytest.mark.parametrize(
    ("field", "value"),
    [("times_seen", 3), ("short_id", 42), ("times_seen", "3.0"), ("short_id", "-1"), ("short_id", "")],
)
def test_an_issue_counter_that_is_not_a_decimal_string_is_rejected(
    example_bodies: dict[str, str], field: str, value: object
) -> None:
    document = json.loads(example_bodies["issue.created"])
    document["data"][field] = value
    with pytest.raises(ValidationError):
        parse_stack_event(json.dumps(document))


def test_stack_event_union_covers_exactly_the_known_types() -> None:
    schema = STACK_EVENT_ADAPTER.json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(KNOWN_EVENT_TYPES)


def test_example_files_hold_every_known_type(example_bodies: dict[str, str]) -> None:
    for event_type in KNOWN_EVENT_TYPES:
        assert json.loads(example_bodies[event_type])["type"] == event_type


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_model_validates_the_example(example_bodies: dict[str, str], event_type: str) -> None:
    data = data_of(example_bodies[event_type])
    model = DATA_MODELS[event_type].model_validate(data)
    # nothing in the example is lost: the dump holds every field the example had, with its value
    assert model.model_dump(exclude_unset=True) == data


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_model_keeps_unknown_fields(example_bodies: dict[str, str], event_type: str) -> None:
    # given fields Stack may add later, nested and scalar
    data = {**data_of(example_bodies[event_type]), "added_later": {"nested": [1, "two", None]}, "flag": True}
    model = DATA_MODELS[event_type].model_validate(data)
    dumped = model.model_dump()
    assert dumped["added_later"] == {"nested": [1, "two", None]}
    assert dumped["flag"] is True
    assert json.loads(model.model_dump_json())["added_later"] == {"nested": [1, "two", None]}


def test_model_keeps_unknown_fields_of_nested_objects(example_bodies: dict[str, str]) -> None:
    data = data_of(example_bodies["user.updated"])
    assert data["selected_team"] is not None
    data["selected_team"]["new_team_field"] = "x"
    data["oauth_providers"] = [{"id": "github", "account_id": "1", "email": None, "scopes": ["read"]}]
    data["risk_scores"] = {"sign_up": {"bot": 1, "free_trial_abuse": 2, "new_score": 3}, "later": {}}
    dumped = DATA_MODELS["user.updated"].model_validate(data).model_dump()
    assert dumped["selected_team"]["new_team_field"] == "x"
    assert dumped["oauth_providers"][0]["scopes"] == ["read"]
    assert dumped["risk_scores"]["sign_up"]["new_score"] == 3
    assert dumped["risk_scores"]["later"] == {}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(t, f) for t in KNOWN_EVENT_TYPES for f in required_fields(t)],
)
def test_model_missing_required_field_fails(example_bodies: dict[str, str], event_type: str, field: str) -> None:
    data = data_of(example_bodies[event_type])
    assert field in data
    del data[field]
    with pytest.raises(ValidationError):
        DATA_MODELS[event_type].model_validate(data)


@pytest.mark.parametrize(
    ("event_type", "ids"),
    [
        ("user.created", {"id"}),
        ("user.deleted", {"id"}),
        ("team.created", {"id"}),
        ("team.deleted", {"id"}),
        ("team_membership.created", {"team_id", "user_id"}),
        ("team_permission.created", {"id", "team_id", "user_id"}),
        ("project_permission.created", {"id", "user_id"}),
    ],
)
def test_model_ids_are_required(event_type: str, ids: set[str]) -> None:
    assert ids <= set(required_fields(event_type))


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("user.created", "id", 123),
        ("user.created", "id", None),
        ("user.created", "signed_up_at_millis", "yesterday"),
        ("team.created", "created_at_millis", None),
        ("team_membership.created", "user_id", ["x"]),
        ("stack.test", "message", {"text": "hi"}),
    ],
)
def test_model_wrong_type_fails(example_bodies: dict[str, str], event_type: str, field: str, value: Any) -> None:
    data = {**data_of(example_bodies[event_type]), field: value}
    with pytest.raises(ValidationError):
        DATA_MODELS[event_type].model_validate(data)


def test_model_user_optional_fields_may_be_absent() -> None:
    # the smallest user Stack could send: an older or newer sender still validates
    user = DATA_MODELS["user.created"].model_validate({"id": USER, "signed_up_at_millis": 1})
    assert user.model_dump()["primary_email"] is None


def test_model_is_immutable(example_bodies: dict[str, str]) -> None:
    model = DATA_MODELS["team.deleted"].model_validate(data_of(example_bodies["team.deleted"]))
    with pytest.raises(ValidationError):
        model.id = "other"  # type: ignore[misc]


# --- events.parse_stack_event ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_parse_stack_event_round_trip(example_bodies: dict[str, str], event_type: str) -> None:
    body = example_bodies[event_type]
    event = parse_stack_event(body)
    assert event.type == event_type
    assert isinstance(event.data, DATA_MODELS[event_type])
    # the typed event serialises back to the same JSON document, and parses back to an equal event
    dumped = event.model_dump_json(exclude_unset=True)
    assert json.loads(dumped) == json.loads(body)
    assert parse_stack_event(dumped) == event
    assert parse_stack_event(body.encode()) == event


def test_parse_stack_event_keeps_unknown_fields(example_bodies: dict[str, str]) -> None:
    document = json.loads(example_bodies["team.created"])
    document["data"]["added_later"] = 1
    document["envelope_field"] = "x"
    event = parse_stack_event(json.dumps(document))
    assert event.model_dump()["envelope_field"] == "x"
    assert event.data.model_dump()["added_later"] == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"type":"session.created","data":{}}',
        '{"type":"user.created","data":{"id":"x"}}',
        '{"data":{"id":"x"}}',
        "[]",
        "not json",
    ],
)
def test_parse_stack_event_rejects_what_is_not_a_known_valid_event(body: str) -> None:
    with pytest.raises(ValidationError):
        parse_stack_event(body)


def test_parse_stack_event_rejects_the_unknown_example(example_bodies: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        parse_stack_event(example_bodies["session.created"])


# --- event_parser.parse_event ---------------------------------------------------------------------------------------

EXPECTED_SUBJECTS: dict[str, tuple[str | None, str | None]] = {
    # user.* and team.* carry their subject as "id"; the others name user_id / team_id
    "user.created": ("data.id", None),
    "user.updated": ("data.id", None),
    "user.deleted": ("data.id", None),
    "team.created": (None, "data.id"),
    "team.updated": (None, "data.id"),
    "team.deleted": (None, "data.id"),
    "team_membership.created": ("data.user_id", "data.team_id"),
    "team_membership.deleted": ("data.user_id", "data.team_id"),
    "team_permission.created": ("data.user_id", "data.team_id"),
    "team_permission.deleted": ("data.user_id", "data.team_id"),
    "project_permission.created": ("data.user_id", None),
    "project_permission.deleted": ("data.user_id", None),
    "stack.test": (None, None),
    # an issue is about neither a user nor a team
    "issue.created": (None, None),
    "issue.regressed": (None, None),
    "issue.resolved": (None, None),
    "issue.ignored": (None, None),
    "issue.merged": (None, None),
}


def test_expected_subjects_cover_every_known_type() -> None:
    assert set(EXPECTED_SUBJECTS) == set(KNOWN_EVENT_TYPES)


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_parse_event_known_type(example_bodies: dict[str, str], event_type: str) -> None:
    body = example_bodies[event_type]
    data = data_of(body)
    user_path, team_path = EXPECTED_SUBJECTS[event_type]
    expected_user = data[user_path.removeprefix("data.")] if user_path else None
    expected_team = data[team_path.removeprefix("data.")] if team_path else None
    assert parse_event(body) == ParsedEvent(
        event_type=event_type, known=True, invalid_reason=None, user_id=expected_user, team_id=expected_team
    )
    assert parse_event(body.encode()) == parse_event(body)


def test_parse_event_user_selected_team_is_not_reported(example_bodies: dict[str, str]) -> None:
    parsed = parse_event(example_bodies["user.updated"])
    assert data_of(example_bodies["user.updated"])["selected_team_id"]
    assert parsed.team_id is None
    assert parsed.user_id == USER


def test_parse_event_unknown_type_is_valid_but_not_known(example_bodies: dict[str, str]) -> None:
    parsed = parse_event(example_bodies["session.created"])
    assert parsed == ParsedEvent(event_type="session.created", known=False, invalid_reason=None)


def test_parse_event_unknown_type_reports_ids_it_names() -> None:
    parsed = parse_event(json.dumps({"type": "session.created", "data": {"user_id": USER, "team_id": TEAM}}))
    assert (parsed.event_type, parsed.known, parsed.invalid_reason) == ("session.created", False, None)
    assert (parsed.user_id, parsed.team_id) == (USER, TEAM)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b'{"type":', b"\xff\xfe", b"\x00", b"{'type': 'user.created'}", b"NaN]"],
)
def test_parse_event_not_json(body: bytes) -> None:
    assert parse_event(body) == ParsedEvent(event_type=None, known=False, invalid_reason="not_json")


@pytest.mark.parametrize("body", ["[]", "1", "null", '"user.created"', "true", '[{"type":"user.created"}]'])
def test_parse_event_json_not_an_object(body: str) -> None:
    assert parse_event(body) == ParsedEvent(event_type=None, known=False, invalid_reason="not_an_object")


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        '{"data":{"id":"x"}}',
        '{"type":null,"data":{}}',
        '{"type":"","data":{}}',
        '{"type":5,"data":{}}',
        '{"type":["user.created"],"data":{}}',
        '{"type":{"name":"user.created"},"data":{}}',
        '{"Type":"user.created","data":{}}',
    ],
)
def test_parse_event_missing_type(body: str) -> None:
    assert parse_event(body) == ParsedEvent(event_type=None, known=False, invalid_reason="missing_type")


@pytest.mark.parametrize(
    "event_type",
    ["user created", "user.created\n", "user/created", "<script>", "ü.created", "a" * 257, "user.created\x00", "a,b"],
)
def test_parse_event_unsafe_type(event_type: str) -> None:
    body = json.dumps({"type": event_type, "data": {"id": USER}})
    assert parse_event(body) == ParsedEvent(event_type=None, known=False, invalid_reason="invalid_type")


def test_parse_event_longest_safe_type_is_kept() -> None:
    event_type = "a" * 256
    assert parse_event(json.dumps({"type": event_type, "data": {}})).event_type == event_type


@pytest.mark.parametrize(
    ("body", "user_id", "team_id"),
    [
        ('{"type":"user.created","data":{"id":"' + USER + '"}}', USER, None),
        ('{"type":"user.created"}', None, None),
        ('{"type":"user.created","data":null}', None, None),
        ('{"type":"user.created","data":[]}', None, None),
        ('{"type":"team.created","data":{"id":"' + TEAM + '","display_name":"x"}}', None, TEAM),
        ('{"type":"team_membership.created","data":{"user_id":"' + USER + '"}}', USER, None),
        ('{"type":"team_membership.created","data":{"user_id":5,"team_id":"' + TEAM + '"}}', None, TEAM),
        ('{"type":"stack.test","data":{"message":7}}', None, None),
    ],
)
def test_parse_event_known_type_routes_whatever_its_data_holds(
    body: str, user_id: str | None, team_id: str | None
) -> None:
    # given data the typed models reject (or no data at all): the signature proves Stack sent it, so the verified type
    # routes it to that type's topic; subscribers validate with the models
    parsed = parse_event(body)
    # then it is known, with no invalid_reason, and its ids stay where the data has them
    assert parsed == ParsedEvent(event_type=json.loads(body)["type"], known=True, user_id=user_id, team_id=team_id)
    with pytest.raises(ValidationError):
        parse_stack_event(body)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,
        "{" * 100_000,
        '{"a":' * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"type":"user.created","data":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"type":"team.created","data":{"id":"t","display_name":"d","created_at_millis":1,"client_metadata":'
        + "[" * 900
        + "]" * 900
        + "}}",
    ],
    ids=["open-brackets", "open-braces", "open-keys", "closed-brackets", "deep-data", "deep-metadata"],
)
def test_parse_event_deeply_nested_never_raises(body: str) -> None:
    parsed = parse_event(body)
    # json.loads gives up on absurd nesting (RecursionError): not_json; the moderately deep metadata parses
    assert (parsed.known, parsed.invalid_reason) in {(False, "not_json"), (True, None)}


def test_parse_event_moderately_nested_metadata_is_valid() -> None:
    body = (
        '{"type":"team.created","data":{"id":"t","display_name":"d","created_at_millis":1,"client_metadata":'
        + '{"a":' * 50
        + "1"
        + "}" * 50
        + "}}"
    )
    assert parse_event(body).known is True


def test_parse_event_duplicate_keys_last_wins(example_bodies: dict[str, str]) -> None:
    # given a body naming two types: the last wins, as json.loads decides (and as any JSON consumer will read it)
    data = example_bodies["team.deleted"][len('{"type":"team.deleted","data":') : -1]
    body = '{"type":"user.created","type":"team.deleted","data":' + data + "}"
    assert json.loads(body)["type"] == "team.deleted"
    assert parse_event(body) == parse_event(example_bodies["team.deleted"])
    # and for data: the last one gives the ids, as a typed consumer will read it
    body = '{"type":"team.deleted","data":{"id":"other"},"data":' + data + "}"
    assert parse_event(body).team_id == json.loads(data)["id"]
    body = '{"type":"team.deleted","data":' + data + ',"data":{"id":"other"}}'
    assert parse_event(body).team_id == "other"


def test_parse_event_unicode_and_bom() -> None:
    assert parse_event('{"type":"stack.test","data":{"message":"héllo 東京 🚀"}}'.encode()).known is True
    # json.loads refuses a UTF-8 BOM in a str, and accepts it in bytes (it detects the encoding)
    assert parse_event('\ufeff{"type":"stack.test","data":{"message":"x"}}').invalid_reason == "not_json"
    assert parse_event(b'\xef\xbb\xbf{"type":"stack.test","data":{"message":"x"}}').known is True


# --- subject_ids and attribute_safe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("user.created", {"id": USER, "user_id": "other", "team_id": TEAM, "selected_team_id": TEAM}, (USER, None)),
        ("user.deleted", {"id": USER, "teams": [{"id": TEAM}]}, (USER, None)),
        ("team.updated", {"id": TEAM, "user_id": USER, "team_id": "other"}, (None, TEAM)),
        ("team_membership.deleted", {"id": "x", "user_id": USER, "team_id": TEAM}, (USER, TEAM)),
        ("team_permission.created", {"id": "$update_team", "user_id": USER, "team_id": TEAM}, (USER, TEAM)),
        ("project_permission.created", {"id": "admin", "user_id": USER}, (USER, None)),
        ("stack.test", {"message": "hi"}, (None, None)),
        ("session.created", {"id": "i", "user_id": USER}, (USER, None)),
        ("user.created", {"id": "has space"}, (None, None)),
        ("user.created", {"id": 42}, (None, None)),
        ("team.created", {"id": ""}, (None, None)),
        ("team_membership.created", {"user_id": "a\nb", "team_id": TEAM}, (None, TEAM)),
        ("user.created", None, (None, None)),
        ("user.created", "3241a285", (None, None)),
        ("team_membership.created", [USER, TEAM], (None, None)),
    ],
)
def test_subject_ids(event_type: str, data: Any, expected: tuple[str | None, str | None]) -> None:
    assert subject_ids(event_type, data) == expected


@pytest.mark.parametrize("value", [USER, "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u", "$update_team", "a:b@c+d-e_f.g", "x" * 256])
def test_attribute_safe_accepts_ids(value: str) -> None:
    assert attribute_safe(value) == value


@pytest.mark.parametrize("value", ["", " ", "a b", "x" * 257, "é", "a/b", "a\n", None, 1, ["a"], "a\x00"])
def test_attribute_safe_refuses_anything_else(value: Any) -> None:
    assert attribute_safe(value) is None


def test_events_module_needs_only_pydantic() -> None:
    # a subscriber installs the package for its models alone: importing them must not need the ingest extras
    import subprocess
    import sys

    probe = (
        "import sys, stack_webhook_fanout.events\n"
        "heavy = {'standardwebhooks', 'aws_lambda_powertools', 'boto3', 'botocore'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
