"""What an upgrade must keep: the stateful resources, by logical id, and the properties whose change would make
CloudFormation replace them (a new ARN, an empty table) instead of updating them in place.

The properties are those the CloudFormation resource reference marks "Update requires: Replacement" for each type
(AWS::DynamoDB::Table, AWS::SNS::Topic, AWS::KMS::Key, AWS::SecretsManager::Secret). moto's change sets report
Add/Modify/Remove but no ``Replacement``: tests/deployed/test_upgrade.py computes replacement with
:func:`replacements` from the two templates and checks the physical ids on the emulator besides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, TOPIC_LOGICAL_IDS

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The resources whose identity is the product's contract: the topics' ARNs (subscribers), the table (the dedupe
#: window and the raw events), the secret (its value) and the key (what the retained table is encrypted with).
STATEFUL_LOGICAL_IDS: Final = frozenset(
    {"EventsTable", "EncryptionKey", "WebhookSecret", FALLBACK_TOPIC_LOGICAL_ID, *TOPIC_LOGICAL_IDS.values()}
)
REPLACEMENT_PROPERTIES: Final[Mapping[str, frozenset[str]]] = {
    "AWS::DynamoDB::Table": frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"}),
    "AWS::SNS::Topic": frozenset({"TopicName", "FifoTopic"}),
    "AWS::KMS::Key": frozenset({"KeySpec", "KeyUsage", "MultiRegion", "Origin"}),
    "AWS::SecretsManager::Secret": frozenset({"Name"}),
}


def replacements(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why deploying ``new`` over ``old`` would replace or delete a stateful resource (empty: it would not).

    A logical id that ``new`` drops is a deletion; a changed type, or a changed replacement property, a
    replacement. Both templates as CloudFormation sees them (the stateful resources are plain CloudFormation)."""
    reasons = []
    old_resources, new_resources = old.get("Resources", {}), new.get("Resources", {})
    for logical_id in sorted(STATEFUL_LOGICAL_IDS & set(old_resources)):
        before, after = old_resources[logical_id], new_resources.get(logical_id)
        if after is None:
            reasons.append(f"{logical_id}: removed (a new logical id is a new resource)")
            continue
        if after["Type"] != before["Type"]:
            reasons.append(f"{logical_id}: type {before['Type']} -> {after['Type']}")
            continue
        old_props, new_props = before.get("Properties", {}), after.get("Properties", {})
        changed = [p for p in sorted(REPLACEMENT_PROPERTIES[before["Type"]]) if old_props.get(p) != new_props.get(p)]
        if changed:
            reasons.append(f"{logical_id}: {', '.join(changed)} changed (requires replacement)")
    return reasons
