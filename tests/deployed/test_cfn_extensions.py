"""The resource types devkit.cfn_extensions adds to moto's CloudFormation create what they declare, with the
properties the services then report (not only a CREATE_COMPLETE), on the tier's extended emulator."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conftest import Deployed

pytestmark = pytest.mark.deployed


def test_added_resource_types_create_what_they_declare(deployed: Deployed) -> None:
    name = f"ext-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Subscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "Topic"},
                    "Protocol": "sqs",
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "RawMessageDelivery": True,
                    "FilterPolicy": {"event_type": ["user.created"]},
                },
            },
            "Secret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {"Name": f"{name}/secret", "SecretString": "placeholder", "Description": "d"},
            },
            "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/{name}/access"}},
            "Filter": {
                "Type": "AWS::Logs::MetricFilter",
                "Properties": {
                    "LogGroupName": {"Ref": "Group"},
                    "FilterPattern": '{ $.status = "429" }',
                    "MetricTransformations": [
                        {"MetricNamespace": "NS", "MetricName": "Throttled", "MetricValue": "1", "Unit": "Count"}
                    ],
                },
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": f"{name}-errors",
                    "Metrics": [
                        {
                            "Id": "a",
                            "ReturnData": False,
                            "MetricStat": {
                                "Period": 300,
                                "Stat": "Sum",
                                "Metric": {
                                    "Namespace": "AWS/Lambda",
                                    "MetricName": "Errors",
                                    "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                                },
                            },
                        },
                        {"Id": "e", "Expression": "FILL(a, 0)", "Label": "errors", "ReturnData": True},
                    ],
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "EvaluationPeriods": 1,
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [{"Ref": "Topic"}],
                },
            },
            "Api": {
                "Type": "AWS::ApiGatewayV2::Api",
                "Properties": {
                    "Body": {
                        "openapi": "3.0.1",
                        "info": {"title": name, "version": "1"},
                        "paths": {
                            "/webhooks/stack": {
                                "post": {
                                    "x-amazon-apigateway-integration": {
                                        "type": "aws_proxy",
                                        "httpMethod": "POST",
                                        "uri": "arn:aws:lambda:us-east-1:123456789012:function:f",
                                        "payloadFormatVersion": "2.0",
                                    }
                                }
                            }
                        },
                    }
                },
            },
            "Stage": {
                "Type": "AWS::ApiGatewayV2::Stage",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "StageName": "$default",
                    "AutoDeploy": True,
                    "DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100},
                },
            },
        },
        "Outputs": {
            "SecretArn": {"Value": {"Ref": "Secret"}},
            "AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}},
            "ApiId": {"Value": {"Ref": "Api"}},
        },
    }
    cloudformation = deployed.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    sns = deployed.client("sns")
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=_physical_id(cloudformation, name, "Topic"))[
        "Subscriptions"
    ]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert json.loads(attributes["FilterPolicy"]) == {"event_type": ["user.created"]}

    secret = deployed.client("secretsmanager").describe_secret(SecretId=outputs["SecretArn"])
    assert secret["Name"] == f"{name}/secret"
    assert deployed.client("secretsmanager").get_secret_value(SecretId=outputs["SecretArn"])["SecretString"] == (
        "placeholder"
    )

    [metric_filter] = deployed.client("logs").describe_metric_filters(logGroupName=f"/{name}/access")["metricFilters"]
    assert metric_filter["filterPattern"] == '{ $.status = "429" }'
    assert metric_filter["metricTransformations"][0]["metricName"] == "Throttled"
    assert metric_filter["metricTransformations"][0]["metricNamespace"] == "NS"

    [alarm] = deployed.client("cloudwatch").describe_alarms(AlarmNames=[f"{name}-errors"])["MetricAlarms"]
    assert alarm["AlarmArn"] == outputs["AlarmArn"]
    assert [m["Id"] for m in alarm["Metrics"]] == ["a", "e"]
    assert alarm["Metrics"][1]["Expression"] == "FILL(a, 0)"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [_physical_id(cloudformation, name, "Topic")]

    apigateway = deployed.client("apigatewayv2")
    api = apigateway.get_api(ApiId=outputs["ApiId"])
    assert api["Name"] == name
    assert [r["RouteKey"] for r in apigateway.get_routes(ApiId=outputs["ApiId"])["Items"]] == ["POST /webhooks/stack"]
    stage = apigateway.get_stage(ApiId=outputs["ApiId"], StageName="$default")
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50


def _physical_id(cloudformation: object, stack_name: str, logical_id: str) -> str:
    resource = cloudformation.describe_stack_resource(  # type: ignore[attr-defined]
        StackName=stack_name, LogicalResourceId=logical_id
    )
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])
