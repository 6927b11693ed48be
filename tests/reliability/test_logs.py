"""The function's logs over a full run carry ids and outcomes, never payload personal data or the secret.

The run: one delivery of every type (and an unknown one), a duplicate, a duplicate id with another body, a body
that is not a valid event, every kind of rejection (401 for each reason, 400, 405, 409, 413), and faults (DynamoDB
and SNS down, the publication's record failing). Everything the function writes to stdout (its JSON log lines and
its EMF metric lines) and stderr is captured, request by request.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, event_body, sample_body, sample_data
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from stack_webhook_fanout.event_store import Claim, EventStore

from .adversarial import Context, delivery, signed
from .support import client_events, connection_refused, header, invoke, on_update, redeliver

if TYPE_CHECKING:
    from types import ModuleType

    from .support import Deployment

pytestmark = pytest.mark.integration

FAULT = "reliability-logs-fault"


def _personal_values() -> dict[str, str]:
    """The personal data of the samples: every email, name, country code and OAuth account id in them."""
    values: dict[str, str] = {}
    for event_type in ("user.created", "user.updated", "team.created", "team.updated"):
        data = sample_data(event_type)
        for key in ("primary_email", "display_name", "country_code"):
            if data.get(key):
                values[f"{event_type}.{key}"] = data[key]
        for i, provider in enumerate(data.get("oauth_providers") or []):
            values[f"{event_type}.oauth[{i}].account_id"] = provider["account_id"]
            if provider.get("email"):
                values[f"{event_type}.oauth[{i}].email"] = provider["email"]
        if data.get("selected_team"):
            values[f"{event_type}.selected_team.display_name"] = data["selected_team"]["display_name"]
    return values


def _occurs(value: str, text: str) -> bool:
    """Whether ``value`` occurs in ``text`` as itself: a two-letter code only where no letter or digit touches it.

    Digits count too: the run's random ids (base62 svix-ids, tokens) contain "…7US2…" now and then, which is no
    country code; a logged one would stand between quotes or spaces."""
    if len(value) <= 3:
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text) is not None
    return value in text


@dataclass
class Captured:
    name: str
    svix_id: str | None
    status: int
    stdout: str
    stderr: str


def _run(capsys: pytest.CaptureFixture[str], handler: ModuleType, name: str, event: dict[str, Any]) -> Captured:
    capsys.readouterr()
    status, _ = invoke(handler, event)
    out, err = capsys.readouterr()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return Captured(name=name, svix_id=headers.get("svix-id"), status=status, stdout=out, stderr=err)


def _full_run(deployment: Deployment, handler: ModuleType, capsys: pytest.CaptureFixture[str]) -> list[Captured]:
    secret = deployment.secret
    ctx = Context(secret=secret, now=int(time.time()))
    runs: list[Captured] = []

    def run(name: str, event: dict[str, Any]) -> None:
        runs.append(_run(capsys, handler, name, event))

    # every type published, and an unknown type to the fallback
    for event_type in SAMPLE_TYPES:
        run(f"published:{event_type}", deployment.signed(event_type))
    first = deployment.signed("user.created")
    run("published:user.created again", first)
    # a duplicate, and a duplicate id that comes with another body
    run("duplicate", redeliver(first, secret))
    other = sample_body("user.updated")
    run("duplicate_other_body", delivery(other, sign_headers(secret, other, msg_id=header(first, "svix-id"))))
    # a verified body of a known type that the models reject (personal data in it): routed on its type
    rejected = json.dumps({"type": "user.created", "data": {**sample_data("user.created"), "id": None}}).encode()
    run("published:user.created, data the models reject", signed(ctx, rejected))
    # a verified body that is not an event at all (personal data in it), to the fallback
    run("published:not_an_object", signed(ctx, json.dumps([sample_data("user.created")]).encode()))
    # rejections of every kind, with personal data in the bodies
    body = sample_body("user.created")
    tampered = body.replace(b"jane@example.com", b"mallory@evil.example")
    run("401:no_matching_signature", {**signed(ctx, body), "body": tampered.decode()})
    run("401:timestamp_too_old", signed(ctx, body, ts=ctx.now - 3600))
    run("401:timestamp_too_new", signed(ctx, body, ts=ctx.now + 3600))
    run("401:missing_headers", delivery(body, {}))
    run("401:invalid_timestamp", delivery(body, {**sign_headers(secret, body), "svix-timestamp": "soon"}))
    run("401:malformed_signature", delivery(body, {**sign_headers(secret, body), "svix-signature": "v1,abc"}))
    run("401:wrong_secret", delivery(body, sign_headers(new_secret(), body)))
    not_utf8 = body.replace(b"Jane Doe", b"Jane \xff Doe")
    run("401:body_not_utf8", delivery(not_utf8, sign_headers(secret, body), base64_body=True))
    run("400:body_not_base64", {**signed(ctx, body), "body": "%%%", "isBase64Encoded": True})
    run("400:invalid_event_id", delivery(body, sign_headers(secret, body, msg_id="msg_a b")))
    run("405:get", signed(ctx, body, method="GET"))
    run("413:payload_too_large", signed(ctx, body + b" " * 262_144))
    # another environment holds the claim on this id
    held = deployment.signed("team.created")
    store = EventStore(deployment.stack.client("dynamodb"), deployment.stack.table_name, lease_seconds=60)
    held_body = event_body(held)
    claim = store.claim(
        header(held, "svix-id"),
        event_type="team.created",
        body=held_body.decode(),
        body_sha256=hashlib.sha256(held_body).hexdigest(),
        event_timestamp=header(held, "svix-timestamp"),
    )
    assert isinstance(claim, Claim)
    run("409:in_progress", held)
    # faults: DynamoDB down, SNS down, the publication's record failing
    dynamodb, sns = client_events(handler, "dynamodb"), client_events(handler, "sns")
    dynamodb.register("before-call.dynamodb.UpdateItem", connection_refused, FAULT)
    run("503:dynamodb", deployment.signed("user.updated"))
    dynamodb.unregister("before-call.dynamodb.UpdateItem", unique_id=FAULT)
    sns.register("before-call.sns.Publish", connection_refused, FAULT)
    run("503:sns", deployment.signed("user.updated"))
    sns.unregister("before-call.sns.Publish", unique_id=FAULT)
    dynamodb.register("before-parameter-build.dynamodb.UpdateItem", on_update("mark", connection_refused), FAULT)
    run("200:mark_failed", deployment.signed("user.updated"))
    dynamodb.unregister("before-parameter-build.dynamodb.UpdateItem", unique_id=FAULT)
    return runs


def _log_lines(captured: Captured) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in captured.stdout.splitlines() if line.strip()]
    return [d for d in documents if "level" in d]


def test_logs_of_a_full_run_are_json_with_the_svix_id_and_no_personal_data_or_secret(
    deployment: Deployment, stdout_logs: pytest.CaptureFixture[str]
) -> None:
    # given: a warm environment, the samples' personal data and the secret
    handler = deployment.load_handler()
    secret = deployment.secret
    forbidden = {
        **_personal_values(),
        "tampered email": "mallory@evil.example",
        "secret": secret,
        "secret key (base64)": secret.removeprefix("whsec_"),
    }
    # (the search finds each of them where they are: in the bodies and the configuration)
    bodies = b"".join(sample_body(t) for t in ("user.created", "user.updated", "team.created", "team.updated")).decode()
    assert all(_occurs(v, bodies) for k, v in forbidden.items() if not k.startswith(("secret", "tampered")))

    # when: the full run
    runs = _full_run(deployment, handler, stdout_logs)

    # then: every kind of request was made and answered as planned
    assert [r.status for r in runs if r.name.startswith(("published", "duplicate"))] == [200] * (len(SAMPLE_TYPES) + 5)
    for r in runs:
        if r.name[:3].isdigit():
            assert r.status == int(r.name[:3]), r.name

    # and every stdout line is JSON, every request logged, each log line under its request's svix-id
    for r in runs:
        lines = _log_lines(r)
        assert lines, f"{r.name}: nothing logged"
        for line in lines:
            assert line.get("correlation_id") == r.svix_id, (r.name, line)
            assert line.get("event_id") in (None, r.svix_id), (r.name, line)

    # and no personal data, no secret, anywhere in stdout or stderr
    everything = "\n".join(r.stdout + r.stderr for r in runs)
    leaked = {k: v for k, v in forbidden.items() if _occurs(v, everything)}
    assert leaked == {}


def _load_with_event_logging(deployment: Deployment) -> ModuleType:
    """An environment whose operator turned on Powertools' documented event logging to debug something."""
    return deployment.load_handler(POWERTOOLS_LOGGER_LOG_EVENT="true")


def test_logs_hold_no_personal_data_even_with_powertools_event_logging_on(
    deployment: Deployment, stdout_logs: pytest.CaptureFixture[str]
) -> None:
    # given
    handler = _load_with_event_logging(deployment)
    event = deployment.signed("user.created")

    # when
    captured = _run(stdout_logs, handler, "published", event)

    # then
    assert captured.status == 200
    assert not _occurs("jane@example.com", captured.stdout)
