"""The emulator's update rule (devkit.cfn_extensions): a resource whose only changes are CloudFormation attributes
(DeletionPolicy, UpdateReplacePolicy, Metadata) is not updated, as in CloudFormation; any other change is. On the
emulator: tests/deployed/test_upgrade.py."""

from __future__ import annotations

from stack_webhook_fanout_tools.devkit.cfn_extensions import attribute_only_changes

TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": {"Ref": "Key"}}}


def test_policy_and_metadata_changes_alone_update_nothing_but_property_changes_do() -> None:
    old = {"Resources": {"A": TOPIC, "B": TOPIC, "C": TOPIC, "D": TOPIC, "Gone": TOPIC}}
    new = {
        "Resources": {
            "A": {**TOPIC, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
            "B": {**TOPIC, "Metadata": {"note": "x"}},
            "C": {**TOPIC, "DeletionPolicy": "Retain", "Properties": {"DisplayName": "c"}},
            "D": TOPIC,
            "New": {**TOPIC, "DeletionPolicy": "Retain"},
        }
    }
    assert attribute_only_changes(old, new) == {"A", "B"}
