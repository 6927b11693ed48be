"""``events/``: one signed API Gateway event per sample, generated from ``devkit.samples`` and re-signable.

No server needed: these check the files themselves and ``tools/resign_event.py``; the handler tests feed the same
files through ``lambda_handler`` against the emulator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.emulator import planned_stack
from stack_webhook_fanout_tools.devkit.samples import (
    LOCAL_DEV_SECRET,
    SAMPLE_TYPES,
    UNKNOWN_SAMPLE_TYPE,
    event_body,
    sample_body,
    sample_data,
)

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.events import parse_stack_event
from stack_webhook_fanout.http_api import request_from_event
from stack_webhook_fanout.models import DATA_MODELS, User
from stack_webhook_fanout.signature import SignatureVerifier, standard_headers

from .support import EVENTS_DIR, REPO_ROOT, TEMPLATE_PATH, load_event_file

if TYPE_CHECKING:
    from pathlib import Path

TOOL = REPO_ROOT / "tools" / "resign_event.py"


def _expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Svix's v1 signature, computed here from its definition (not by the code that wrote the files)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _run_tool(*args: str, secret: str | None = None, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STACK_WEBHOOK_SECRET"}
    if secret is not None:
        env["STACK_WEBHOOK_SECRET"] = secret
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=60
    )


def test_samples_cover_every_known_type_and_one_unknown() -> None:
    assert (*KNOWN_EVENT_TYPES, UNKNOWN_SAMPLE_TYPE) == SAMPLE_TYPES
    assert UNKNOWN_SAMPLE_TYPE not in KNOWN_EVENT_TYPES


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_sample_is_a_valid_event_of_its_type(event_type: str) -> None:
    body = sample_body(event_type)

    event = parse_stack_event(body)

    assert event.type == event_type
    assert json.loads(body) == {"type": event_type, "data": sample_data(event_type)}
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()  # compact


@pytest.mark.parametrize("event_type", ["user.created", "user.updated"])
def test_user_sample_has_every_field_of_the_user_object(event_type: str) -> None:
    assert set(User.model_fields) <= set(sample_data(event_type))


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_sample_data_has_every_field_of_its_model(event_type: str) -> None:
    assert set(DATA_MODELS[event_type].model_fields) <= set(sample_data(event_type))


def test_events_dir_holds_one_file_per_sample_and_the_env_file() -> None:
    names = sorted(p.name for p in EVENTS_DIR.glob("*.json"))

    assert names == sorted([*(f"{t}.json" for t in SAMPLE_TYPES), "env.json"])


@pytest.mark.parametrize("event_type", SAMPLE_TYPES)
def test_event_file_is_the_signed_sample_as_api_gateway_sends_it(event_type: str) -> None:
    event = load_event_file(event_type)
    headers = event["headers"]

    request = request_from_event(event)

    assert request.body == sample_body(event_type)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/stack"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert all(name == name.lower() for name in headers)
    assert headers["content-type"] == "application/json"
    assert headers["svix-id"].startswith("msg_")
    assert headers["svix-signature"] == _expected_signature(
        LOCAL_DEV_SECRET, headers["svix-id"], headers["svix-timestamp"], request.body
    )


def test_generate_reproduces_the_committed_events(tmp_path: Path) -> None:
    # given / when: regenerating events/ from the samples into an empty directory
    result = _run_tool("--generate", "--events-dir", str(tmp_path))

    # then: the same files, the same bodies, the same env file (only ids, times and signatures are new)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in EVENTS_DIR.glob("*.json"))
    for event_type in SAMPLE_TYPES:
        generated = json.loads((tmp_path / f"{event_type}.json").read_text())
        assert event_body(generated) == event_body(load_event_file(event_type)), event_type
        assert generated["headers"].keys() == load_event_file(event_type)["headers"].keys()
    assert (tmp_path / "env.json").read_text() == (EVENTS_DIR / "env.json").read_text()


def test_env_file_points_the_function_at_the_default_local_stack() -> None:
    env_file = json.loads((EVENTS_DIR / "env.json").read_text())

    assert env_file["IngestFunction"] == planned_stack().env()
    assert env_file["LocalDev"]["WebhookSecret"] == LOCAL_DEV_SECRET


def test_env_file_sets_only_variables_the_template_declares() -> None:
    # sam local applies --env-vars only to variables declared in the function's Environment: any other is dropped
    # silently, and a dropped AWS_ENDPOINT_URL would send the function to real AWS instead of the emulator.
    declared = cfn_template.function_environment(cfn_template.load_template(TEMPLATE_PATH), "IngestFunction")
    env_file = json.loads((EVENTS_DIR / "env.json").read_text())["IngestFunction"]

    assert sorted(set(env_file) - set(declared)) == []


@pytest.fixture
def event_copy(tmp_path: Path) -> Path:
    path = tmp_path / "user.created.json"
    path.write_text((EVENTS_DIR / "user.created.json").read_text())
    return path


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def test_resign_rewrites_the_file_signed_now_with_a_fresh_id(event_copy: Path) -> None:
    # given
    secret = "whsec_" + base64.b64encode(b"a secret of the resign test!").decode()
    before = _read(event_copy)

    # when
    result = _run_tool(str(event_copy), secret=secret)

    # then: verifies now (within Svix's 5 minutes) with that secret, under a new id; the secret is never printed
    assert result.returncode == 0, result.stderr
    after = _read(event_copy)
    request = request_from_event(after)
    SignatureVerifier([secret]).verify_standard(request.body, standard_headers(request.headers))
    assert request.body == event_body(before)
    assert after["headers"]["svix-id"] != before["headers"]["svix-id"]
    assert secret not in result.stdout + result.stderr
    assert secret.removeprefix("whsec_") not in result.stdout + result.stderr


def test_resign_keep_id_keeps_the_svix_id(event_copy: Path) -> None:
    before = _read(event_copy)

    result = _run_tool("--keep-id", str(event_copy), secret=LOCAL_DEV_SECRET)

    assert result.returncode == 0, result.stderr
    after = _read(event_copy)
    assert after["headers"]["svix-id"] == before["headers"]["svix-id"]
    request = request_from_event(after)
    SignatureVerifier([LOCAL_DEV_SECRET]).verify_standard(request.body, standard_headers(request.headers))


def test_resign_to_stdout_leaves_the_file_alone(event_copy: Path) -> None:
    before = event_copy.read_text()

    result = _run_tool("--stdout", str(event_copy))

    assert result.returncode == 0, result.stderr
    assert event_copy.read_text() == before
    printed = json.loads(result.stdout)
    request = request_from_event(printed)
    SignatureVerifier([LOCAL_DEV_SECRET]).verify_standard(request.body, standard_headers(request.headers))


def test_resign_takes_the_secret_from_the_outputs_file(event_copy: Path, tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(b"the secret of a make dev run").decode()
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"WebhookSecret": secret}))

    result = _run_tool("--outputs", str(outputs), str(event_copy), secret=LOCAL_DEV_SECRET)

    assert result.returncode == 0, result.stderr
    request = request_from_event(_read(event_copy))
    SignatureVerifier([secret]).verify_standard(request.body, standard_headers(request.headers))
    assert secret not in result.stdout + result.stderr


def test_resign_all_rewrites_every_event_file(tmp_path: Path) -> None:
    assert _run_tool("--generate", "--events-dir", str(tmp_path)).returncode == 0
    secret = "whsec_" + base64.b64encode(b"sign them all").decode()

    result = _run_tool("--all", "--events-dir", str(tmp_path), secret=secret)

    assert result.returncode == 0, result.stderr
    for event_type in SAMPLE_TYPES:
        request = request_from_event(_read(tmp_path / f"{event_type}.json"))
        SignatureVerifier([secret]).verify_standard(request.body, standard_headers(request.headers))
    assert (tmp_path / "env.json").read_text() == (EVENTS_DIR / "env.json").read_text()


@pytest.mark.parametrize("bad_secret", ["not-a-secret", "whsec_***", "whsec_ok= and-junk"])
def test_resign_refuses_a_bad_secret_without_printing_it(event_copy: Path, bad_secret: str) -> None:
    before = event_copy.read_text()

    result = _run_tool(str(event_copy), secret=bad_secret)

    assert result.returncode == 2
    assert "STACK_WEBHOOK_SECRET" in result.stderr
    assert bad_secret not in result.stdout + result.stderr
    assert event_copy.read_text() == before
