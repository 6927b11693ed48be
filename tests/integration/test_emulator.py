"""``devkit.emulator``: what ``provision`` creates, from the template's own definitions, and only on loopback."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.emulator import (
    DUMMY_ACCESS_KEY_ID,
    NonLoopbackEndpointError,
    drain,
    emulator_client,
    emulator_session,
    planned_stack,
    provision,
    require_loopback_endpoint,
    subscribe_queue,
)

from stack_webhook_fanout.config import Settings
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import TEMPLATE_PATH

if TYPE_CHECKING:
    from pathlib import Path

    from stack_webhook_fanout_tools.devkit.emulator import LocalStack

OUTPUT_KEYS = {
    "WebhookUrl",
    "AwsEndpointUrl",
    "Region",
    "WebhookSecret",
    "WebhookSecretArn",
    "EventsTableName",
    "TopicArns",
    "FallbackTopicArn",
}


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "http://10.0.0.5:4566",
        "http://192.0.2.1:4566",
        "http://[2001:db8::1]:4566",
        "http://localhost.example.com:4566",
        "http://127.0.0.1.nip.io:4566",
        "http://0.0.0.0:4566",
        "127.0.0.1:4566",
        "ftp://127.0.0.1:4566",
        "",
    ],
)
def test_provision_refuses_an_endpoint_off_loopback(endpoint: str) -> None:
    # given an endpoint that is not this machine (192.0.2.1 would hang if anything tried to reach it)
    # when / then: refused before any request, saying why
    with pytest.raises(NonLoopbackEndpointError, match="refusing endpoint"):
        provision(endpoint, template_path=TEMPLATE_PATH)
    with pytest.raises(NonLoopbackEndpointError):
        emulator_client("sqs", endpoint)


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:4566", "http://127.8.9.10:5000", "http://localhost:4566", "http://[::1]:4566"]
)
def test_require_loopback_endpoint_accepts_loopback(endpoint: str) -> None:
    assert require_loopback_endpoint(endpoint) == endpoint


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    # A profile that does not exist: provision must not read it (nor any of the user's AWS configuration).
    monkeypatch.setenv("AWS_PROFILE", f"no-such-profile-{uuid.uuid4().hex}")
    return provision(moto_endpoint, name_prefix=f"emu-{uuid.uuid4().hex[:10]}", template_path=TEMPLATE_PATH)


@pytest.mark.integration
def test_provision_creates_the_table_from_the_templates_key_schema_and_ttl(stack: LocalStack) -> None:
    template = cfn_template.load_template(TEMPLATE_PATH)
    key_schema, attribute_definitions = cfn_template.table_key_schema(template)
    dynamodb = stack.client("dynamodb")

    table = dynamodb.describe_table(TableName=stack.table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.table_name)["TimeToLiveDescription"]

    assert table["KeySchema"] == key_schema
    assert table["AttributeDefinitions"] == attribute_definitions
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == cfn_template.ttl_attribute(template)


@pytest.mark.integration
def test_provision_creates_one_topic_per_known_type_and_a_fallback(stack: LocalStack) -> None:
    # every page: ListTopics returns 100 topics at a time, and the session's emulator holds other tests' stacks
    pages = stack.client("sns").get_paginator("list_topics").paginate()
    listed = {t["TopicArn"] for page in pages for t in page["Topics"]}

    assert set(stack.topic_arns) == set(KNOWN_EVENT_TYPES)
    assert len(set(stack.all_topic_arns)) == len(KNOWN_EVENT_TYPES) + 1
    assert set(stack.all_topic_arns) <= listed
    assert stack.fallback_topic_arn not in stack.topic_arns.values()


@pytest.mark.integration
def test_provision_stores_a_fresh_whsec_secret(stack: LocalStack) -> None:
    value = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn)["SecretString"]

    assert value == stack.secret_value
    assert value.startswith("whsec_")
    assert stack.secret_value not in repr(stack)


@pytest.mark.integration
def test_provision_gives_the_settings_and_outputs_the_function_and_make_dev_need(stack: LocalStack) -> None:
    env = stack.env()
    settings = Settings.from_env(env)
    outputs = stack.with_webhook_url("http://127.0.0.1:3000/webhooks/stack").outputs()

    assert env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert settings.table_name == stack.table_name
    assert settings.secret_arn == stack.secret_arn
    assert dict(settings.topic_arns) == dict(stack.topic_arns)
    assert settings.fallback_topic_arn == stack.fallback_topic_arn
    assert set(outputs) == OUTPUT_KEYS
    assert set(stack.outputs()) == OUTPUT_KEYS
    assert stack.outputs()["WebhookUrl"] is None
    assert outputs["WebhookUrl"] == "http://127.0.0.1:3000/webhooks/stack"
    assert outputs["WebhookSecret"] == stack.secret_value
    assert outputs["TopicArns"] == dict(stack.topic_arns)
    assert json.loads(json.dumps(outputs)) == outputs


@pytest.mark.integration
def test_provision_again_reuses_the_resources_and_sets_the_new_secret(stack: LocalStack) -> None:
    again = provision(stack.endpoint_url, name_prefix=stack.name_prefix, template_path=TEMPLATE_PATH)

    assert again.table_name == stack.table_name
    assert again.secret_arn == stack.secret_arn
    assert dict(again.topic_arns) == dict(stack.topic_arns)
    assert again.secret_value != stack.secret_value
    stored = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn)["SecretString"]
    assert stored == again.secret_value


@pytest.mark.integration
def test_planned_stack_matches_what_provision_creates(stack: LocalStack) -> None:
    # events/env.json is written from planned_stack(): it must name what provision really creates
    planned = planned_stack(stack.endpoint_url, name_prefix=stack.name_prefix, secret_value=stack.secret_value)
    secrets = stack.client("secretsmanager")

    assert planned.table_name == stack.table_name
    assert dict(planned.topic_arns) == dict(stack.topic_arns)
    assert planned.fallback_topic_arn == stack.fallback_topic_arn
    assert secrets.describe_secret(SecretId=planned.secret_arn)["ARN"] == stack.secret_arn


@pytest.mark.integration
def test_emulator_session_ignores_the_users_profile_config_and_credentials(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: a user whose AWS configuration points elsewhere, with a profile that does not exist
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-3\nendpoint_url = https://example.invalid\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")

    # when
    session = emulator_session()
    sqs = session.client("sqs", endpoint_url=moto_endpoint)
    sqs.list_queues()

    # then: the dummy credentials and the default region, whatever the machine says
    assert session.get_credentials().access_key == DUMMY_ACCESS_KEY_ID
    assert sqs.meta.region_name == "us-east-1"
    assert sqs.meta.endpoint_url == moto_endpoint


@pytest.mark.integration
def test_subscribe_queue_applies_the_filter_policy_with_raw_delivery(stack: LocalStack) -> None:
    # given: a queue on every topic that only wants one user's events
    queue_url = subscribe_queue(
        stack, stack.all_topic_arns, f"{stack.name_prefix}-filtered", filter_policy={"user_id": ["u-1"]}
    )
    sns = stack.client("sns")

    # when: two messages, one per user
    for user_id, body in (("u-1", '{"n":1}'), ("u-2", '{"n":2}')):
        sns.publish(
            TopicArn=stack.topic_arns["user.updated"],
            Message=body,
            MessageAttributes={"user_id": {"DataType": "String", "StringValue": user_id}},
        )

    # then: only the matching one, verbatim, with its attributes; the queue is empty afterwards
    messages = drain(queue_url)
    assert [(m.body, dict(m.attributes)) for m in messages] == [('{"n":1}', {"user_id": "u-1"})]
    assert drain(queue_url, stack=stack) == []
