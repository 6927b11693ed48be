"""template.yaml against the code's contract: topics, the function's environment, outputs, table, secret, API.

The event-type list (``stack_webhook_fanout.event_types``) is the single source of truth; these tests fail when
the template and the list drift apart, and build the function's settings from the template's environment with
the function's own parser, so a variable the code needs cannot be missing from the template.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
from stack_webhook_fanout_tools.devkit.cfn_template import (
    Template,
    function_environment,
    properties,
    resource,
    table_key_schema,
    topic_logical_ids,
    ttl_attribute,
)

from stack_webhook_fanout.config import Settings
from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS
from stack_webhook_fanout.webhook_secret import parse_secret_string

from .conftest import REPO_ROOT

pytestmark = pytest.mark.template

ALL_TOPICS = {*TOPIC_LOGICAL_IDS.values(), FALLBACK_TOPIC_LOGICAL_ID}
DUMMY_ARN_PREFIX = "arn:aws:sns:us-east-1:123456789012:"
PLACEHOLDER = re.compile(r"\$\{([^}!]+)\}")
SVIX_RETRY_WINDOW_HOURS = 28  # shared/reference/stack-webhooks.md: retries over about 28 hours


def _render(value: Any, template: Template) -> str:
    """Evaluate an environment value the way CloudFormation would, with dummy ARNs for resources.

    Parameters take their defaults (so the default deployment is what is checked); ``Fn::If`` takes the branch of
    the default parameters, where every condition of this template is true.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            parameter = template.get("Parameters", {}).get(arg)
            return str(parameter["Default"]) if parameter is not None else DUMMY_ARN_PREFIX + arg
        if key == "Fn::Sub" and isinstance(arg, str):
            return PLACEHOLDER.sub(lambda m: _render({"Ref": m.group(1)}, template), arg)
        if key == "Fn::If":
            return _render(arg[1], template)
    raise AssertionError(f"unexpected environment value {value!r}")


def test_topics_are_the_event_types_plus_fallback(template: Template) -> None:
    # given the event-type list, when the template's topics are listed, then they are exactly one per type + fallback
    assert topic_logical_ids(template) == ALL_TOPICS


def test_topics_are_encrypted_and_named_by_cloudformation(template: Template) -> None:
    for logical_id in ALL_TOPICS:
        props = properties(template, logical_id, "AWS::SNS::Topic")
        assert props["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}, logical_id
        assert "TopicName" not in props, f"{logical_id}: let CloudFormation name topics (no replacement clashes)"


def test_topic_arns_maps_every_known_type_to_its_own_topic(template: Template) -> None:
    raw = function_environment(template, "IngestFunction")["TOPIC_ARNS"]
    assert set(raw) == {"Fn::Sub"}, "TOPIC_ARNS must be a !Sub"
    assert isinstance(raw["Fn::Sub"], str), "TOPIC_ARNS must be a one-string !Sub (no variable map)"

    # when every ${X} is replaced by a dummy ARN ending in X, the string is a JSON object
    topic_arns = json.loads(PLACEHOLDER.sub(lambda m: DUMMY_ARN_PREFIX + m.group(1), raw["Fn::Sub"]))

    # then it maps exactly the known types, each to its own topic, and names no other resource
    assert list(topic_arns) == list(KNOWN_EVENT_TYPES)
    assert topic_arns == {t: DUMMY_ARN_PREFIX + TOPIC_LOGICAL_IDS[t] for t in KNOWN_EVENT_TYPES}
    assert set(PLACEHOLDER.findall(raw["Fn::Sub"])) == set(TOPIC_LOGICAL_IDS.values())


def test_function_environment_is_the_code_contract(template: Template) -> None:
    env = function_environment(template, "IngestFunction")
    assert set(env) == {
        "EVENTS_TABLE_NAME",
        "WEBHOOK_SECRET_ARN",
        "TOPIC_ARNS",
        "FALLBACK_TOPIC_ARN",
        "RETENTION_DAYS",
        "CLAIM_LEASE_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "LOG_LEVEL",
        "AWS_ENDPOINT_URL",
    }
    assert env["EVENTS_TABLE_NAME"] == {"Ref": "EventsTable"}
    assert env["WEBHOOK_SECRET_ARN"] == {
        "Fn::If": ["CreateWebhookSecret", {"Ref": "WebhookSecret"}, {"Ref": "ExistingWebhookSecretArn"}]
    }
    assert env["FALLBACK_TOPIC_ARN"] == {"Ref": FALLBACK_TOPIC_LOGICAL_ID}
    assert env["RETENTION_DAYS"] == {"Ref": "RetentionDays"}
    # the service dimension of the metrics is the stack's name: two stacks in one account count apart
    assert env["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "StackWebhookFanout"
    assert env["POWERTOOLS_LOG_LEVEL"] == env["LOG_LEVEL"] == {"Ref": "LogLevel"}
    # empty in AWS: boto3 then uses the real endpoints; declared only so `sam local --env-vars` may set it
    assert env["AWS_ENDPOINT_URL"] == ""


def test_function_settings_parse_from_the_template_environment(template: Template) -> None:
    # given the environment CloudFormation would set with default parameters
    env = {name: _render(value, template) for name, value in function_environment(template).items()}

    # when the function reads its settings from it, then nothing is missing or malformed
    settings = Settings.from_env(env)

    assert settings.topic_arns == {t: DUMMY_ARN_PREFIX + TOPIC_LOGICAL_IDS[t] for t in KNOWN_EVENT_TYPES}
    assert settings.fallback_topic_arn == DUMMY_ARN_PREFIX + FALLBACK_TOPIC_LOGICAL_ID
    assert settings.retention_days == 30
    assert settings.claim_lease_seconds == 15


def test_function_properties(template: Template) -> None:
    props = properties(template, "IngestFunction", "AWS::Serverless::Function")
    assert props["CodeUri"] == "functions/ingest/"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 10, "Svix gives up after about 15 s"
    assert props["MemorySize"] == {"Ref": "FunctionMemorySize"}
    # X-Ray is billed per trace and the code records no subsegments: off unless the TracingMode parameter says so
    assert props["Tracing"] == {"Ref": "TracingMode"}
    tracing = template["Parameters"]["TracingMode"]
    assert (tracing["Default"], tracing["AllowedValues"]) == ("Disabled", ["Disabled", "Active"])
    assert props["Layers"] == [{"Ref": "DependenciesLayer"}]
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": "IngestFunctionLogGroup"}}
    # a claim must outlive the invocation that holds it
    assert int(function_environment(template)["CLAIM_LEASE_SECONDS"]) > props["Timeout"]


def test_http_api_route_and_webhook_url(template: Template) -> None:
    assert resource(template, "WebhookHttpApi")["Type"] == "AWS::Serverless::HttpApi"
    events = properties(template, "IngestFunction")["Events"]
    assert events == {
        "StackWebhook": {
            "Type": "HttpApi",
            "Properties": {
                "ApiId": {"Ref": "WebhookHttpApi"},
                "Method": "POST",
                "Path": "/webhooks/stack",
                "PayloadFormatVersion": "2.0",
            },
        }
    }
    url = template["Outputs"]["WebhookUrl"]["Value"]
    assert url == {"Fn::Sub": "https://${WebhookHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/webhooks/stack"}


def test_http_api_throttling_and_access_logs(template: Template) -> None:
    props = properties(template, "WebhookHttpApi")
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }
    access_logs = props["AccessLogSettings"]
    assert access_logs["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = json.loads(access_logs["Format"])  # a JSON line per request
    required = {"requestId", "ip", "routeKey", "status", "responseLength", "integrationError", "latency"}
    assert required <= set(log_format)
    assert all(str(v).startswith("$context.") for v in log_format.values())
    # no request or response content: no bodies, headers, query strings or authorizer claims
    assert not re.search(r"body|header|querystring|authorizer|\$input", access_logs["Format"], re.IGNORECASE)


@pytest.mark.parametrize("logical_id", ["HttpApiAccessLogGroup", "IngestFunctionLogGroup"])
def test_log_groups_have_retention_and_encryption(template: Template, logical_id: str) -> None:
    props = properties(template, logical_id, "AWS::Logs::LogGroup")
    assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert props["KmsKeyId"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}


def test_events_table(template: Template) -> None:
    key_schema, attribute_definitions = table_key_schema(template)
    assert key_schema == [{"AttributeName": "event_id", "KeyType": "HASH"}]
    assert attribute_definitions == [{"AttributeName": "event_id", "AttributeType": "S"}]
    assert ttl_attribute(template) == "expires_at"

    table = resource(template, "EventsTable", "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Ref": "EncryptionKey"},
    }
    assert "TableName" not in props
    # the table is the durable record, and the key that encrypts it must outlive it
    for logical_id in ("EventsTable", "EncryptionKey"):
        assert resource(template, logical_id)["DeletionPolicy"] == "Retain"
        assert resource(template, logical_id)["UpdateReplacePolicy"] == "Retain"


def test_webhook_secret_is_a_conditional_placeholder(template: Template) -> None:
    assert template["Conditions"]["CreateWebhookSecret"] == {"Fn::Equals": [{"Ref": "ExistingWebhookSecretArn"}, ""]}
    secret = resource(template, "WebhookSecret", "AWS::SecretsManager::Secret")
    assert secret["Condition"] == "CreateWebhookSecret"
    props = secret["Properties"]
    assert props["KmsKeyId"] == {"Ref": "EncryptionKey"}
    assert "GenerateSecretString" not in props
    # the placeholder must never be taken for a signing secret: the function answers 503 until it is replaced
    usable, _ = parse_secret_string(props["SecretString"])
    assert usable == []
    assert "whsec_" not in props["SecretString"]
    assert template["Parameters"]["ExistingWebhookSecretArn"]["Default"] == ""


def test_kms_key(template: Template) -> None:
    props = properties(template, "EncryptionKey", "AWS::KMS::Key")
    assert props["EnableKeyRotation"] is True
    alias = properties(template, "EncryptionKeyAlias", "AWS::KMS::Alias")
    assert alias["TargetKeyId"] == {"Ref": "EncryptionKey"}
    statements = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"]}
    # SNS may use the key for this stack's topics only (CloudFormation names them "<stack name>-<logical id>-...")
    sns = statements["SnsUsesKeyForThisStacksTopics"]
    assert sns["Principal"] == {"Service": "sns.amazonaws.com"}
    assert set(sns["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert sns["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "kms:EncryptionContext:aws:sns:topicArn": {
                "Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*"
            }
        },
    }
    # CloudWatch may use it to publish this stack's alarms to the encrypted alarm topic, and for nothing else
    cloudwatch = statements["CloudWatchPublishesThisStacksAlarmsToTheEncryptedAlarmTopic"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
            }
        },
    }


def test_every_topic_the_stack_creates_is_encrypted_with_its_key_and_named_under_the_stack(template: Template) -> None:
    topics = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"}
    assert set(topics) == {*ALL_TOPICS, "AlarmNotificationTopic"}
    for logical_id, topic in topics.items():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}, logical_id
        # no TopicName: CloudFormation's generated name starts with the stack's, which the key policy relies on
        assert "TopicName" not in topic["Properties"], logical_id


def test_every_alarm_is_named_under_the_stack(template: Template) -> None:
    # the key policy lets CloudWatch use the key for alarms named "<stack name>-*" only
    alarms = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        assert alarm["Properties"]["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), alarm


def test_layer(template: Template) -> None:
    layer = resource(template, "DependenciesLayer", "AWS::Serverless::LayerVersion")
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/dependencies/"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert props["RetentionPolicy"] == "Delete"


def test_every_topic_has_an_exported_arn_output(template: Template) -> None:
    outputs = template["Outputs"]
    for logical_id in ALL_TOPICS:
        output = outputs[f"{logical_id}Arn"]
        assert output["Value"] == {"Ref": logical_id}
        assert output["Export"] == {"Name": {"Fn::Sub": f"${{AWS::StackName}}-{logical_id}Arn"}}


def test_every_output_is_described_and_exported_under_the_stack_name(template: Template) -> None:
    outputs = template["Outputs"]
    assert {"WebhookUrl", "EventsTableName", "WebhookSecretArn", "IngestFunctionName"} <= set(outputs)
    for name, output in outputs.items():
        assert output.get("Description"), name
        assert output["Export"] == {"Name": {"Fn::Sub": f"${{AWS::StackName}}-{name}"}}, name
    assert outputs["WebhookSecretArn"]["Value"] == function_environment(template)["WEBHOOK_SECRET_ARN"]


def test_parameters_are_described_and_constrained(template: Template) -> None:
    parameters = template["Parameters"]
    expected_defaults = {
        "ThrottlingRateLimit": 500,
        "ThrottlingBurstLimit": 250,
        "RetentionDays": 30,
        "ExistingWebhookSecretArn": "",
        "LogLevel": "INFO",
        "LogRetentionDays": 30,
        "FunctionMemorySize": 512,
        "AlarmEmail": "",
        "AlarmTopicArn": "",
        "TracingMode": "Disabled",
    }
    assert {name: p["Default"] for name, p in parameters.items()} == expected_defaults
    for name, parameter in parameters.items():
        assert parameter.get("Description"), name
        assert {"MinValue", "AllowedValues", "AllowedPattern"} & set(parameter), f"{name} has no constraint"
    # a record must outlive Svix's retries, or the last retries would be published again
    assert parameters["RetentionDays"]["MinValue"] * 24 > SVIX_RETRY_WINDOW_HOURS


def test_checkov_suppressions_each_carry_a_one_line_reason(template: Template) -> None:
    for logical_id, res in template["Resources"].items():
        for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
            assert skip.get("comment"), (logical_id, skip)
            assert "\n" not in skip["comment"], (logical_id, skip)


def test_samconfig() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default, prod = config["default"], config["prod"]
    assert default["global"]["parameters"]["stack_name"] == "stack-webhook-fanout"
    assert default["global"]["parameters"]["region"]
    assert prod["global"]["parameters"]["stack_name"] != "stack-webhook-fanout"
    for env in (default, prod):
        deploy = env["deploy"]["parameters"]
        assert deploy["resolve_s3"] is True
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["confirm_changeset"] is True
        assert env["build"]["parameters"]["parallel"] is True
        # `sam build --cached` keys the layer on layers/dependencies/ only and would ship a stale own package
        assert env["build"]["parameters"]["cached"] is False
        assert env["validate"]["parameters"]["lint"] is True
