"""Least privilege: no wildcard resources or actions, and exactly the permissions the function needs.

Checked twice: on template.yaml as written, and on the CloudFormation that SAM's translator generates from it
(the function's role, the API's invoke permission), so a SAM shortcut cannot hide a broad grant.

Two kinds of ``"*"`` are allowed, both by AWS's design, and nothing else:

* ``Resource: "*"`` in a KMS key policy. A key policy is attached to one key and ``"*"`` there means "this key";
  AWS accepts no other value. Its principals are still narrowed (account root, service principals with a
  source-account or encryption-context condition), and ``Action: "*"`` is refused there too.
* The AWS managed policies SAM attaches to the function's role: ``AWSLambdaBasicExecutionRole`` (logs) and, only when
  the ``TracingMode`` parameter is ``Active``, ``AWSXrayWriteOnlyAccess`` (X-Ray's PutTraceSegments, PutTelemetryRecords
  and sampling calls have no resource-level permissions). They are referenced by ARN, not written here; the test pins
  the list so that no other managed policy can slip in.

Which actions the function's policy grants is derived from the calls its code makes, in test_template_iam_calls.py;
this file checks what they are granted on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.cfn_template import Template, properties

from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, TOPIC_LOGICAL_IDS

from .conftest import transform

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.template

LOGS_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY_POLICY_ARN = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Yield (path, statement) for every IAM statement anywhere in a template: role, inline, SAM, key policies."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list) and all(isinstance(s, dict) and "Effect" in s for s in statements):
            for index, statement in enumerate(statements):
                yield (*path, "Statement", str(index)), statement
        for key, value in node.items():
            yield from policy_statements(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from policy_statements(value, (*path, str(index)))


def is_key_policy(path: tuple[str, ...]) -> bool:
    return "KeyPolicy" in path


def _assert_no_wildcards(template: dict[str, Any]) -> None:
    statements = list(policy_statements(template))
    assert statements, "no IAM statement found: the walker is broken"
    for path, statement in statements:
        where = "/".join(path)
        assert "NotAction" not in statement, where
        assert "NotResource" not in statement, where
        actions = as_list(statement.get("Action"))
        assert "*" not in actions, f"{where}: Action '*'"
        if statement.get("Effect") == "Allow" and not is_key_policy(path):
            assert "*" not in as_list(statement.get("Resource")), f"{where}: Resource '*'"
        if is_key_policy(path):
            assert statement.get("Principal") not in ("*", {"AWS": "*"}), f"{where}: any principal"


def test_no_wildcard_resources_or_actions_in_the_template(template: Template) -> None:
    _assert_no_wildcards(template)


def test_no_wildcard_resources_or_actions_in_the_generated_cloudformation(
    transformed_template: dict[str, Any],
) -> None:
    _assert_no_wildcards(transformed_template)


def test_generated_role_has_only_the_managed_policies_sam_attaches(transformed_template: dict[str, Any]) -> None:
    roles = {k: r for k, r in transformed_template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"IngestFunctionRole"}
    assert roles["IngestFunctionRole"]["Properties"]["ManagedPolicyArns"] == [LOGS_POLICY_ARN]
    # tracing is off by default: no tracing configuration, no X-Ray permission
    assert "TracingConfig" not in transformed_template["Resources"]["IngestFunction"]["Properties"]


def test_active_tracing_adds_its_configuration_and_only_the_xray_write_policy(sam_cli: Path) -> None:
    traced = transform(sam_cli, {"TracingMode": "Active"})
    assert traced["Resources"]["IngestFunction"]["Properties"]["TracingConfig"] == {"Mode": {"Ref": "TracingMode"}}
    policies = traced["Resources"]["IngestFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert sorted(policies) == sorted([LOGS_POLICY_ARN, XRAY_POLICY_ARN])
    _assert_no_wildcards(traced)


def test_function_policies_are_inline_statements_only(template: Template) -> None:
    # SAM policy templates and managed policy names hide what they grant (DynamoDBCrudPolicy grants Scan/Delete)
    for policy in properties(template, "IngestFunction")["Policies"]:
        assert isinstance(policy, dict), policy
        assert set(policy) == {"Version", "Statement"}, policy


def function_statements(template: Template) -> dict[str, dict[str, Any]]:
    statements = properties(template, "IngestFunction")["Policies"][0]["Statement"]
    return {s["Sid"]: s for s in statements}


def test_function_publishes_to_exactly_the_event_topics(template: Template) -> None:
    publish = [s for s in function_statements(template).values() if "sns:Publish" in as_list(s["Action"])]
    assert len(publish) == 1
    assert as_list(publish[0]["Action"]) == ["sns:Publish"]
    resources = publish[0]["Resource"]
    assert len(resources) == len({r["Ref"] for r in resources})  # no duplicates
    assert {r["Ref"] for r in resources} == {*TOPIC_LOGICAL_IDS.values(), FALLBACK_TOPIC_LOGICAL_ID}


def test_function_permissions_are_scoped_to_the_stacks_resources(template: Template) -> None:
    statements = function_statements(template)
    assert set(statements) == {
        "ReadWebhookSigningSecret",
        "RecordEventsOnce",
        "PublishToEventTopics",
        "UseStackKeyThroughItsServicesOnly",
    }
    for statement in statements.values():
        assert statement["Effect"] == "Allow"

    secret = statements["ReadWebhookSigningSecret"]
    assert as_list(secret["Action"]) == ["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == {
        "Fn::If": ["CreateWebhookSecret", {"Ref": "WebhookSecret"}, {"Ref": "ExistingWebhookSecretArn"}]
    }

    table = statements["RecordEventsOnce"]
    assert all(action.startswith("dynamodb:") for action in as_list(table["Action"]))
    assert table["Resource"] == {"Fn::GetAtt": ["EventsTable", "Arn"]}

    kms = statements["UseStackKeyThroughItsServicesOnly"]
    assert set(kms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert kms["Resource"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    via = kms["Condition"]["StringEquals"]["kms:ViaService"]
    assert {v["Fn::Sub"] for v in via} == {
        "secretsmanager.${AWS::Region}.amazonaws.com",
        "dynamodb.${AWS::Region}.amazonaws.com",
        "sns.${AWS::Region}.amazonaws.com",
    }


def test_key_policy_service_principals_are_conditioned(template: Template) -> None:
    for statement in properties(template, "EncryptionKey")["KeyPolicy"]["Statement"]:
        principal = statement["Principal"]
        if "Service" in principal:
            assert statement.get("Condition"), f"{statement['Sid']}: a service principal without a condition"
            assert not any(a.endswith(":*") for a in as_list(statement["Action"])), statement["Sid"]
        else:
            assert principal == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


def test_api_invoke_permission_is_scoped_to_the_route(transformed_template: dict[str, Any]) -> None:
    permissions = [r for r in transformed_template["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
    assert len(permissions) == 1
    props = permissions[0]["Properties"]
    assert props["Principal"] == "apigateway.amazonaws.com"
    source_arn, variables = props["SourceArn"]["Fn::Sub"]
    assert source_arn.endswith("/POST/webhooks/stack")
    assert variables["__ApiId__"] == {"Ref": "WebhookHttpApi"}
