"""An upgrade keeps every ARN and every record: the stateful resources' policies, and their logical ids and
replacement properties against the previous release's template (commit bfbecf8, release 0.1.0). The deploy of
that release and the upgrade over it, on the emulator: tests/deployed/test_upgrade.py."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
import yaml
from stack_webhook_fanout_tools.deploy.upgrade_safety import REPLACEMENT_PROPERTIES, STATEFUL_LOGICAL_IDS, replacements
from stack_webhook_fanout_tools.devkit.cfn_template import load_template

from .conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from stack_webhook_fanout_tools.devkit.cfn_template import Template

pytestmark = pytest.mark.template

#: main before release 0.2.0's work: the last commit of release 0.1.0.
PREVIOUS_RELEASE = "bfbecf8"


def previous_release_template(tmp_path: Path) -> Template:
    """The previous release's template.yaml, from the repository's history (a clone needs it: not shallow)."""
    result = subprocess.run(
        ["git", "show", f"{PREVIOUS_RELEASE}:template.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"commit {PREVIOUS_RELEASE} is not in this clone (a shallow clone? git fetch --unshallow)")
    path = tmp_path / "template.yaml"
    path.write_bytes(result.stdout)
    return load_template(path)


def test_every_stateful_resource_exists_and_is_never_lost_to_a_replacement(template: Template) -> None:
    for logical_id in STATEFUL_LOGICAL_IDS:
        resource = template["Resources"][logical_id]
        assert resource["Type"] in REPLACEMENT_PROPERTIES, logical_id
        # a replacement would leave the old one behind, not delete it with its data or subscriptions
        assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_deletion_policies_keep_the_table_the_key_and_the_topics(template: Template) -> None:
    deletion = {lid: template["Resources"][lid]["DeletionPolicy"] for lid in STATEFUL_LOGICAL_IDS}
    # the secret goes with the stack (and when ExistingWebhookSecretArn replaces it): Stack's dashboard holds its
    # value, Secrets Manager keeps a deleted secret recoverable for a while (template.yaml says why)
    assert deletion.pop("WebhookSecret") == "Delete"
    assert set(deletion.values()) == {"Retain"}
    # every topic of the template but the conditional alarm topic is a subscribers' topic
    topics = {lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"}
    assert topics - STATEFUL_LOGICAL_IDS == {"AlarmNotificationTopic"}


def test_no_stateful_resource_is_replaced_or_removed_coming_from_the_previous_release(
    template: Template, tmp_path: Path
) -> None:
    previous = previous_release_template(tmp_path)
    assert {lid for lid in previous["Resources"] if lid in STATEFUL_LOGICAL_IDS} <= STATEFUL_LOGICAL_IDS
    assert replacements(previous, template) == []


def test_the_replacement_check_sees_a_renamed_topic_a_new_key_schema_and_a_named_secret(
    template: Template, tmp_path: Path
) -> None:
    changed = yaml.safe_load(yaml.safe_dump(dict(template)))
    resources = changed["Resources"]
    resources["UserCreatedTopicRenamed"] = resources.pop("UserCreatedTopic")
    resources["EventsTable"]["Properties"]["KeySchema"] = [{"AttributeName": "id", "KeyType": "HASH"}]
    resources["WebhookSecret"]["Properties"]["Name"] = "fixed-name"
    assert replacements(template, changed) == [
        "EventsTable: KeySchema changed (requires replacement)",
        "UserCreatedTopic: removed (a new logical id is a new resource)",
        "WebhookSecret: Name changed (requires replacement)",
    ]
