"""An upgrade keeps every ARN and every record, on the emulator: the previous release (commit bfbecf8, 0.1.0) is
built and deployed with the unchanged `sam deploy`, events go through its deployed function, then this version's
build (the tier's own) is deployed over it as a change set that is inspected before it is executed.

moto's change sets say Add/Modify/Remove per logical id but not whether a Modify replaces the resource: the test
computes replacement from the two built templates (``upgrade_safety.replacements``: the properties CloudFormation
replaces a resource for) and checks, after the update, that every stateful resource kept its physical id.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.deploy.upgrade_safety import STATEFUL_LOGICAL_IDS, replacements
from stack_webhook_fanout_tools.devkit.cfn_template import load_template
from stack_webhook_fanout_tools.devkit.emulator import drain, subscribe_queue
from stack_webhook_fanout_tools.devkit.lambda_runtime import FunctionPool
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.sam_deploy import (
    deployed_stack,
    sam_build,
    sam_deploy,
    stack_outputs,
)
from stack_webhook_fanout_tools.devkit.samples import sample_body
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from .conftest import REGION, REPO_ROOT
from .test_deployed_stack import post

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Deployed

pytestmark = pytest.mark.deployed

PREVIOUS_RELEASE = "bfbecf8"
STACK_NAME = "swf-upgrade"
SECRET = new_secret()


@dataclass
class Upgrade:
    outputs_before: dict[str, str]
    outputs_after: dict[str, str]
    physical_before: dict[str, str]
    physical_after: dict[str, str]
    changes: list[dict[str, Any]]
    replacing: list[str]
    published_before: dict[str, Any]  # svix-id -> (headers, body) sent through the previous release
    status_after: str
    previous_stateful: frozenset[str]  # the stateful logical ids of the previous release's template


def physical_ids(deployed: Deployed) -> dict[str, str]:
    summaries = deployed.client("cloudformation").list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    return {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s.get("PhysicalResourceId")}


def previous_release_source(work_dir: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", PREVIOUS_RELEASE], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.fail(f"commit {PREVIOUS_RELEASE} is not in this clone (a shallow clone? git fetch --unshallow)")
    source = work_dir / "previous-release"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    return source


def deploy_or_fail(deployed: Deployed, project: Path, template: Path, log_path: Path, *, execute: bool = True) -> None:
    with log_path.open("ab") as log:
        try:
            sam_deploy(
                deployed.sam,
                project_dir=project,
                template=template,
                stack_name=STACK_NAME,
                endpoint_url=deployed.endpoint_url,
                region=REGION,
                log=log,
                execute=execute,
            )
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log_path.read_text(errors='replace')[-4000:]}")


def build_and_deploy_or_fail(deployed: Deployed, project: Path, build_dir: Path, log_path: Path) -> Path:
    """``sam build`` of ``project`` and its deploy as the upgrade's stack; return the built template."""
    with log_path.open("ab") as log:
        try:
            template = sam_build(
                deployed.sam,
                project_dir=project,
                build_dir=build_dir,
                endpoint_url=deployed.endpoint_url,
                region=REGION,
                log=log,
            )
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log_path.read_text(errors='replace')[-4000:]}")
    deploy_or_fail(deployed, project, template, log_path)
    return template


class Served:
    """The stack's deployed function (whatever version it is now) behind the local HTTP API."""

    def __init__(self, deployed: Deployed, outputs: dict[str, str], work_dir: Path) -> None:
        self.pool = FunctionPool.deployed(
            deployed.client("lambda"),
            outputs["IngestFunctionName"],
            work_dir=work_dir,
            rie=deployed.sam.runtime_interface_emulator,
            python=deployed.python,
            endpoint_url=deployed.endpoint_url,
        )
        self.gateway = LocalGateway(self.pool, port=free_port(), concurrent=True)
        threading.Thread(target=self.gateway.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def send(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return post(self.gateway.url, body, {**headers, "content-type": "application/json"})

    def close(self) -> None:
        self.gateway.shutdown()
        self.gateway.server_close()
        self.pool.close()


@pytest.fixture(scope="module")
def upgrade(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Upgrade:
    work_dir = tmp_path_factory.mktemp("upgrade")
    source = previous_release_source(work_dir)
    cloudformation = deployed.client("cloudformation")
    old_template = build_and_deploy_or_fail(deployed, source, work_dir / "previous-build", work_dir / "sam.log")
    outputs_before = stack_outputs(deployed.endpoint_url, STACK_NAME, REGION)
    physical_before = physical_ids(deployed)
    # the previous release's outputs: not this version's (it lacks the issue.* topics), so no LocalStack of them
    deployed.client("secretsmanager").put_secret_value(SecretId=outputs_before["WebhookSecretArn"], SecretString=SECRET)

    # events through the previous release's function
    published_before: dict[str, Any] = {}
    served = Served(deployed, outputs_before, work_dir / "previous-function")
    try:
        for event_type in ("user.created", "team.created", "stack.test"):
            body = sample_body(event_type)
            headers = sign_headers(SECRET, body)
            status, answer = served.send(body, headers)
            assert (status, answer["status"]) == (200, "published"), answer
            published_before[headers["svix-id"]] = (headers, body)
    finally:
        served.close()

    # this version's build, as a change set inspected before it runs
    new_template = deployed.work_dir / "build" / "template.yaml"
    deploy_or_fail(deployed, REPO_ROOT, new_template, work_dir / "sam.log", execute=False)
    [summary] = [
        s
        for s in cloudformation.list_change_sets(StackName=STACK_NAME)["Summaries"]
        if s["ExecutionStatus"] == "AVAILABLE"
    ]
    change_set = cloudformation.describe_change_set(ChangeSetName=summary["ChangeSetId"], StackName=STACK_NAME)
    changes = [c["ResourceChange"] for c in change_set["Changes"]]
    (work_dir / "change-set.json").write_text(json.dumps(changes, indent=1, default=str))
    replacing = replacements(load_template(old_template), load_template(new_template))
    cloudformation.execute_change_set(ChangeSetName=summary["ChangeSetId"], StackName=STACK_NAME)
    status_after = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    return Upgrade(
        outputs_before,
        stack_outputs(deployed.endpoint_url, STACK_NAME, REGION),
        physical_before,
        physical_ids(deployed),
        changes,
        replacing,
        published_before,
        status_after,
        frozenset(STATEFUL_LOGICAL_IDS & set(load_template(old_template)["Resources"])),
    )


def test_the_change_set_removes_and_replaces_no_stateful_resource(upgrade: Upgrade) -> None:
    assert upgrade.status_after == "UPDATE_COMPLETE"
    by_action: dict[str, set[str]] = {}
    for change in upgrade.changes:
        by_action.setdefault(change["Action"], set()).add(change["LogicalResourceId"])
    assert not by_action.get("Remove", set()) & STATEFUL_LOGICAL_IDS, by_action
    # what moto does not say, computed from the two templates: no replacement property of a stateful resource changes
    assert upgrade.replacing == []
    # the function and its layer do change: the change set is not empty
    assert "IngestFunction" in by_action.get("Modify", set()), by_action


def test_every_stateful_resource_and_topic_arn_is_the_same_after_the_upgrade(upgrade: Upgrade) -> None:
    # every stateful resource of the previous release was deployed, and keeps its physical id
    kept = STATEFUL_LOGICAL_IDS & set(upgrade.physical_before)
    assert kept == upgrade.previous_stateful
    assert {lid: upgrade.physical_after.get(lid) for lid in kept} == {lid: upgrade.physical_before[lid] for lid in kept}
    # and the ones this version adds (the issue.* topics) exist after it
    added = STATEFUL_LOGICAL_IDS - upgrade.previous_stateful
    assert added == {
        "IssueCreatedTopic",
        "IssueRegressedTopic",
        "IssueResolvedTopic",
        "IssueIgnoredTopic",
        "IssueMergedTopic",
    }
    assert added <= set(upgrade.physical_after)
    topic_outputs = {key for key in upgrade.outputs_before if key.endswith("TopicArn")}
    assert len(topic_outputs) >= 14
    assert {k: upgrade.outputs_after[k] for k in topic_outputs} == {k: upgrade.outputs_before[k] for k in topic_outputs}
    for key in ("EventsTableName", "WebhookSecretArn", "EncryptionKeyArn"):
        assert upgrade.outputs_after[key] == upgrade.outputs_before[key], key


def test_an_event_published_before_the_upgrade_is_still_a_duplicate_after_it(
    upgrade: Upgrade, deployed: Deployed, tmp_path: Path
) -> None:
    outputs = upgrade.outputs_after
    stack = deployed_stack(outputs, endpoint_url=deployed.endpoint_url, region=REGION, secret_value=SECRET)
    queue_url = subscribe_queue(stack, stack.topic_arns.values(), "upgrade-after")
    served = Served(deployed, outputs, tmp_path / "function")
    try:
        for event_id, (_, body) in upgrade.published_before.items():
            # Svix's retry of the same message: the same id and body, signed anew
            status, answer = served.send(body, sign_headers(SECRET, body, msg_id=event_id))
            assert (status, answer) == (200, {"status": "duplicate", "event_id": event_id})
        assert drain(queue_url, stack=stack, wait_seconds=2) == []
        # and the upgraded stack publishes new events to the same topics
        body = sample_body("user.created")
        status, answer = served.send(body, sign_headers(SECRET, body))
        assert (status, answer["status"]) == (200, "published")
        [message] = drain(queue_url, stack=stack, wait_seconds=5)
        assert message.body == body.decode()
    finally:
        served.close()
    table = deployed.client("dynamodb")
    for event_id in upgrade.published_before:
        item = table.get_item(TableName=outputs["EventsTableName"], Key={"event_id": {"S": event_id}})["Item"]
        assert item["status"]["S"] == "published"
