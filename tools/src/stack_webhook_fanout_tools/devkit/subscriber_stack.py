"""The example subscriber (``examples/subscriber/template.yaml``) on the local emulator, read from its template.

moto cannot deploy that template (SNS subscriptions, imports), so :func:`provision_subscriber` creates what it
declares over the AWS APIs: the entity guard's table (key schema and TTL attribute from the template), the dead-letter
queue, the queue with the template's redrive policy and visibility timeout, the subscriptions' dead-letter queue, and
one subscription per ``AWS::SNS::Subscription`` of the template with its attributes (raw delivery, filter policy with
the parameter's default, redrive policy). :func:`subscriber_environment` is the function's environment as the
template sets it, pointed at the emulator. ``make dev-subscriber`` and the tests use both, so they run what the
template deploys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from stack_webhook_fanout.event_types import TOPIC_LOGICAL_IDS

from . import cfn_template
from .emulator import TableDefinition, create_table

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from .emulator import LocalStack

TABLE_LOGICAL_ID: Final = "GuardTable"
QUEUE_LOGICAL_ID: Final = "EventsQueue"
SUBSCRIPTION_DLQ_LOGICAL_ID: Final = "SubscriptionDeadLetterQueue"
_SUBSCRIPTION_DLQ_ARN: Final = {"Fn::GetAtt": [SUBSCRIPTION_DLQ_LOGICAL_ID, "Arn"]}
FUNCTION_LOGICAL_ID: Final = "ConsumerFunction"
_IMPORT_PREFIX: Final = "${SourceStackName}-"
_TYPES_OF_LOGICAL_IDS: Final = {logical_id: t for t, logical_id in TOPIC_LOGICAL_IDS.items()}


@dataclass(frozen=True, slots=True)
class LocalSubscriber:
    """A provisioned example subscriber: its name (the guard's key prefix), queues and table."""

    name: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    #: Where SNS keeps what it could not deliver to the queue (every subscription's RedrivePolicy).
    subscription_dead_letter_queue_url: str
    table_name: str
    max_receive_count: int
    visibility_timeout: int


def imported_event_type(topic_arn: Any) -> str:
    """The event type whose topic an ``!ImportValue {"Fn::Sub": "${SourceStackName}-<LogicalId>Arn"}`` names."""
    name = str(topic_arn["Fn::ImportValue"]["Fn::Sub"])
    if not (name.startswith(_IMPORT_PREFIX) and name.endswith("TopicArn")):
        raise cfn_template.TemplateError(f"not an import of a source stack topic: {name!r}")
    return _TYPES_OF_LOGICAL_IDS[name.removeprefix(_IMPORT_PREFIX).removesuffix("Arn")]


def resolved_filter_policy(template: Mapping[str, Any], policy: Mapping[str, Any]) -> dict[str, Any]:
    """The filter policy with each ``Ref`` to a CommaDelimitedList parameter replaced by its default."""
    resolved: dict[str, Any] = {}
    for key, value in policy.items():
        if isinstance(value, dict) and set(value) == {"Ref"}:
            parameter = template["Parameters"][value["Ref"]]
            if parameter["Type"] != "CommaDelimitedList":
                raise cfn_template.TemplateError(f"filter policy key {key!r} refers to a {parameter['Type']}")
            resolved[key] = [item.strip() for item in str(parameter["Default"]).split(",")]
        else:
            resolved[key] = value
    return resolved


def _is_parameter_ref(template: Mapping[str, Any], value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in (template.get("Parameters") or {})


def _parameter_default(template: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def provision_subscriber(
    stack: LocalStack,
    template_path: Path,
    *,
    name: str,
    visibility_timeout: int | None = None,
    max_receive_count: int | None = None,
) -> LocalSubscriber:
    """Create the subscriber's table, queues and subscriptions on ``stack``'s emulator, named after ``name``.

    ``visibility_timeout`` and ``max_receive_count`` override the template's values (tests shorten the wait for a
    redelivery instead of sleeping three minutes).
    """
    template = cfn_template.load_template(template_path)
    sqs, sns = stack.client("sqs"), stack.client("sns")

    key_schema, attribute_definitions = cfn_template.table_key_schema(template, TABLE_LOGICAL_ID)
    table_name = f"{name}-guard"
    create_table(
        stack.client("dynamodb"),
        table_name,
        TableDefinition(
            key_schema=[dict(k) for k in key_schema],
            attribute_definitions=[dict(a) for a in attribute_definitions],
            ttl_attribute=cfn_template.ttl_attribute(template, TABLE_LOGICAL_ID),
        ),
    )

    queue = cfn_template.properties(template, QUEUE_LOGICAL_ID, "AWS::SQS::Queue")
    redrive = queue["RedrivePolicy"]
    receives = max_receive_count or int(_parameter_default(template, redrive["maxReceiveCount"]))
    visibility = visibility_timeout or int(queue["VisibilityTimeout"])
    dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_letter_arn = _queue_arn(stack, dead_letter_url)
    queue_url = sqs.create_queue(
        QueueName=f"{name}-events",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": receives}),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(stack, queue_url)
    subscription_dead_letter_url = sqs.create_queue(QueueName=f"{name}-subscription-dlq")["QueueUrl"]
    subscription_dead_letter_arn = _queue_arn(stack, subscription_dead_letter_url)

    for subscription in cfn_template.resources_of_type(template, "AWS::SNS::Subscription").values():
        properties = subscription["Properties"]
        attributes = {
            "RawMessageDelivery": str(properties["RawMessageDelivery"]).lower(),
            "FilterPolicyScope": properties["FilterPolicyScope"],
            "FilterPolicy": json.dumps(resolved_filter_policy(template, properties["FilterPolicy"])),
        }
        if properties.get("RedrivePolicy") == {"deadLetterTargetArn": _SUBSCRIPTION_DLQ_ARN}:
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": subscription_dead_letter_arn})
        elif "RedrivePolicy" in properties:
            raise cfn_template.TemplateError(f"unexpected subscription RedrivePolicy: {properties['RedrivePolicy']}")
        sns.subscribe(
            TopicArn=stack.topic_arns[imported_event_type(properties["TopicArn"])],
            Protocol=properties["Protocol"],
            Endpoint=queue_arn,
            Attributes=attributes,
        )
    return LocalSubscriber(
        name=name,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dead_letter_url,
        subscription_dead_letter_queue_url=subscription_dead_letter_url,
        table_name=table_name,
        max_receive_count=receives,
        visibility_timeout=visibility,
    )


def subscriber_environment(stack: LocalStack, subscriber: LocalSubscriber, template_path: Path) -> dict[str, str]:
    """The consumer function's environment as its template sets it (references resolved to the local resources),
    plus the emulator endpoint, region and dummy credentials."""
    template = cfn_template.load_template(template_path)
    declared = cfn_template.function_environment(template, FUNCTION_LOGICAL_ID)
    local = {"GUARD_TABLE_NAME": subscriber.table_name, "SUBSCRIBER_NAME": subscriber.name}
    environment: dict[str, str] = {}
    for variable, value in declared.items():
        if variable in local:
            environment[variable] = local[variable]
        elif isinstance(value, str | int) or _is_parameter_ref(template, value):
            environment[variable] = str(_parameter_default(template, value))
        else:
            raise cfn_template.TemplateError(f"{FUNCTION_LOGICAL_ID} variable {variable} has no local value: {value}")
    process = stack.process_env()
    return {
        **environment,
        "AWS_ENDPOINT_URL": process["AWS_ENDPOINT_URL"],
        "AWS_REGION": process["AWS_REGION"],
        "AWS_DEFAULT_REGION": process["AWS_DEFAULT_REGION"],
        "AWS_ACCESS_KEY_ID": process["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": process["AWS_SECRET_ACCESS_KEY"],
        "AWS_LAMBDA_FUNCTION_NAME": f"{subscriber.name}-consumer",
    }


def _queue_arn(stack: LocalStack, queue_url: str) -> str:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]
