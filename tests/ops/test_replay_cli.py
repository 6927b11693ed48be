"""``tools/replay.py`` as a user runs it: a separate process, against the emulator's outputs file or a stack name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.emulator import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LocalStack,
    emulator_client,
    emulator_session,
    provision,
    subscribe_queue,
)
from stack_webhook_fanout_tools.devkit.signing import new_secret

from stack_webhook_fanout.event_store import EventStore
from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS

from .support import FALLBACK, REPLAY_TOOL, REPO_ROOT, TEMPLATE_PATH, FedStack

if TYPE_CHECKING:
    from pathlib import Path

REGION = "us-east-1"


def run_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPLAY_TOOL), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def summary_count(stdout: str, label: str) -> int:
    match = re.search(rf"^\s+{label}:\s+(\d+)", stdout, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{stdout}"
    return int(match.group(1))


@pytest.mark.integration
def test_replay_cli_dry_run_lists_the_selection_and_publishes_nothing(fed_stack: FedStack, tmp_path: Path) -> None:
    # given
    wanted = [fed_stack.deliver("user.created"), fed_stack.deliver("user.created")]
    other = fed_stack.deliver("team.created")
    fed_stack.drain_all()
    outputs = fed_stack.outputs_file(tmp_path)

    # when
    result = run_tool("--outputs", str(outputs), "--type", "user.created")

    # then: one "would publish" line per selected event (ids, type, topic; never the body), nothing sent
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("would publish")]
    assert sorted(line.split()[2] for line in lines) == sorted(d.event_id for d in wanted)
    assert all("user.created" in line and "-user-created" in line for line in lines)
    assert other.event_id not in result.stdout
    assert "jane@example.com" not in result.stdout + result.stderr
    assert "dry run" in result.stdout
    assert summary_count(result.stdout, "would publish") == 2
    assert fed_stack.delivered() == []


@pytest.mark.integration
def test_replay_cli_execute_publishes_the_selection_and_summarises(fed_stack: FedStack, tmp_path: Path) -> None:
    # given
    first = fed_stack.deliver("team_permission.created")
    second = fed_stack.deliver("team_permission.deleted")
    fed_stack.deliver("stack.test")
    fed_stack.drain_all()
    outputs = fed_stack.outputs_file(tmp_path)

    # when
    result = run_tool(
        "--outputs", str(outputs), "--id", first.event_id, "--id", second.event_id, "--execute", "--rate", "1000"
    )

    # then
    assert result.returncode == 0, result.stderr
    assert summary_count(result.stdout, "selected") == 2
    assert summary_count(result.stdout, "published") == 2
    assert summary_count(result.stdout, "failed") == 0
    arrived = fed_stack.delivered()
    assert sorted((queue, m.attributes["event_id"], m.attributes["replay"]) for queue, m in arrived) == sorted(
        [("team_permission.created", first.event_id, "true"), ("team_permission.deleted", second.event_id, "true")]
    )
    # the progress bar went to stderr, not into the output a script would read
    assert "[" in result.stderr
    assert "2/2" in result.stderr


@pytest.mark.integration
def test_replay_cli_exits_1_and_names_the_reason_when_publishing_fails(fed_stack: FedStack, tmp_path: Path) -> None:
    # given: an outputs file whose fallback topic does not exist on the emulator
    delivery = fed_stack.deliver("session.created")
    fed_stack.drain_all()
    outputs = fed_stack.stack.outputs()
    outputs["FallbackTopicArn"] = outputs["FallbackTopicArn"] + "-gone"
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))

    # when
    result = run_tool("--outputs", str(path), "--id", delivery.event_id, "--execute")

    # then
    assert result.returncode == 1
    assert summary_count(result.stdout, "failed") == 1
    assert "sns:NotFound" in result.stdout
    assert f"FAILED (sns:NotFound)  {delivery.event_id}" in result.stderr
    assert fed_stack.delivered() == []


def _deployed_stack_template() -> dict[str, Any]:
    """The part of template.yaml a replay reads, deployable on moto's CloudFormation: the events table (key schema
    only), the topics, and template.yaml's own outputs for them."""
    template = cfn_template.load_template(TEMPLATE_PATH)
    key_schema, attributes = cfn_template.table_key_schema(template)
    resources: dict[str, Any] = {
        "EventsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": key_schema,
                "AttributeDefinitions": attributes,
            },
        }
    }
    for logical_id in (*TOPIC_LOGICAL_IDS.values(), FALLBACK_TOPIC_LOGICAL_ID):
        assert template["Resources"][logical_id]["Type"] == "AWS::SNS::Topic"
        resources[logical_id] = {"Type": "AWS::SNS::Topic"}
    wanted = {"EventsTableName", "FallbackTopicArn", *(f"{lid}Arn" for lid in TOPIC_LOGICAL_IDS.values())}
    outputs = {key: {"Value": value["Value"]} for key, value in template["Outputs"].items() if key in wanted}
    assert set(outputs) == wanted, "template.yaml lacks outputs the replay reads"
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs}


@pytest.mark.integration
def test_replay_cli_finds_a_deployed_stack_by_name(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: a stack deployed with CloudFormation (on the emulator) whose outputs are template.yaml's
    stack_name = f"fanout-{uuid.uuid4().hex[:8]}"
    cloudformation = emulator_session(REGION).client("cloudformation", endpoint_url=moto_endpoint)
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(_deployed_stack_template()))
    stack_outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    }
    secret_value = new_secret()
    secret_arn = emulator_client("secretsmanager", moto_endpoint).create_secret(
        Name=f"{stack_name}/secret", SecretString=secret_value
    )["ARN"]
    stack = LocalStack(
        endpoint_url=moto_endpoint,
        region=REGION,
        name_prefix=stack_name,
        table_name=stack_outputs["EventsTableName"],
        secret_arn=secret_arn,
        secret_value=secret_value,
        topic_arns={t: stack_outputs[f"{TOPIC_LOGICAL_IDS[t]}Arn"] for t in KNOWN_EVENT_TYPES},
        fallback_topic_arn=stack_outputs["FallbackTopicArn"],
    )
    queues = {
        "user.deleted": subscribe_queue(stack, [stack.topic_arns["user.deleted"]], f"{stack_name}-ud"),
        FALLBACK: subscribe_queue(stack, [stack.fallback_topic_arn], f"{stack_name}-fb"),
    }
    fed = FedStack(stack=stack, queues=queues, monkeypatch=monkeypatch)
    deleted = fed.deliver("user.deleted")
    unknown = fed.deliver("session.created")
    assert (deleted.status, unknown.status) == (200, 200)
    fed.drain_all()

    # when: the tool is pointed at the stack by name, with ordinary AWS settings (which here lead to the emulator)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    result = run_tool("--stack-name", stack_name, "--region", REGION, "--since", "1h", "--execute", env=env)

    # then: both events found by a Scan of the stack's table and published to the stack's topics
    assert result.returncode == 0, result.stderr
    assert f"stack {stack_name} in {REGION}" in result.stderr
    assert summary_count(result.stdout, "published") == 2
    arrived = fed.delivered()
    assert sorted((queue, m.attributes["event_id"]) for queue, m in arrived) == sorted(
        [("user.deleted", deleted.event_id), (FALLBACK, unknown.event_id)]
    )


def test_replay_cli_wants_a_selection_before_replaying_everything(tmp_path: Path) -> None:
    # given: no --id, --type, --since/--until, --all
    result = run_tool("--outputs", str(tmp_path / "absent.json"))

    # then: a usage error, before anything is read
    assert result.returncode == 2
    assert "--all" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday-ish"], "cannot read 'yesterday-ish' as a time"),
        (["--since", "2026-11-27T10:00Z", "--until", "2026-11-27T09:00Z"], "the time range is empty"),
        (["--all", "--rate", "-1"], "--rate"),
    ],
)
def test_replay_cli_rejects_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_tool("--outputs", str(tmp_path / "absent.json"), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_replay_cli_refuses_an_outputs_file_that_points_away_from_this_machine(tmp_path: Path) -> None:
    # given: an outputs file whose endpoint is not on loopback
    outputs = {
        "AwsEndpointUrl": "https://dynamodb.us-east-1.amazonaws.com",
        "Region": REGION,
        "EventsTableName": "events",
        "TopicArns": {t: f"arn:aws:sns:{REGION}:123456789012:{i}" for i, t in enumerate(KNOWN_EVENT_TYPES)},
        "FallbackTopicArn": f"arn:aws:sns:{REGION}:123456789012:fallback",
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))

    # when
    result = run_tool("--outputs", str(path), "--all")

    # then
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


@pytest.mark.integration
def test_replay_cli_republishes_a_retained_table_into_a_new_stack(
    fed_stack: FedStack, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: events stored by an old stack, and a new stack (own topics and queues) that replaced it
    old = [fed_stack.deliver("user.created"), fed_stack.deliver("team_membership.deleted")]
    fed_stack.drain_all()
    prefix = f"new-{uuid.uuid4().hex[:8]}"
    new_stack = provision(moto_endpoint, name_prefix=prefix, template_path=TEMPLATE_PATH)
    new_queues = {
        t: subscribe_queue(new_stack, [new_stack.topic_arns[t]], f"{prefix}-{i}")
        for i, t in enumerate(("user.created", "team_membership.deleted"))
    }
    new = FedStack(stack=new_stack, queues=new_queues, monkeypatch=monkeypatch)

    # when: the new stack's outputs, the old stack's table
    result = run_tool(
        "--outputs", str(new.outputs_file(tmp_path)), "--events-table", fed_stack.stack.table_name, "--all", "--execute"
    )

    # then: the old events arrive on the new stack's topics, and the old stack's topics get nothing
    assert result.returncode == 0, result.stderr
    assert f"table {fed_stack.stack.table_name}" in result.stderr
    arrived = sorted((queue, m.attributes["event_id"]) for queue, m in new.delivered())
    assert arrived == sorted((d.event_type, d.event_id) for d in old)
    assert fed_stack.delivered() == []


@pytest.mark.integration
def test_replay_cli_pushes_a_publication_unknown_record_only_with_its_flag(fed_stack: FedStack, tmp_path: Path) -> None:
    # given: a record whose claim is still held past its lease (an invocation that stopped after claiming it)
    stack = fed_stack.stack
    body = '{"type":"team.deleted","data":{"id":"ad962777-8244-496a-b6a2-e0c6a449c79e"}}'
    long_ago = time.time() - 3600
    EventStore(stack.client("dynamodb"), stack.table_name, lease_seconds=15, clock=lambda: long_ago).claim(
        "msg_unknown", event_type="team.deleted", body=body, body_sha256="0", event_timestamp=str(int(long_ago))
    )
    outputs = fed_stack.outputs_file(tmp_path)

    # when: asked for it by id, without and then with --include-publication-unknown
    without = run_tool("--outputs", str(outputs), "--id", "msg_unknown", "--execute", "--include-unpublished")
    with_flag = run_tool("--outputs", str(outputs), "--id", "msg_unknown", "--execute", "--include-publication-unknown")

    # then: left out and named, then published once, marked replay=true
    assert without.returncode == 0, without.stderr
    assert "publication_unknown=1" in without.stdout
    assert "--include-publication-unknown" in without.stdout
    assert with_flag.returncode == 0, with_flag.stderr
    assert summary_count(with_flag.stdout, "published") == 1
    arrived = fed_stack.delivered()
    assert [(queue, m.attributes["replay"]) for queue, m in arrived] == [("team.deleted", "true")]
