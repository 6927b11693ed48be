"""Provision the product's AWS resources on a local AWS emulator (a moto server on loopback).

moto's CloudFormation cannot deploy ``template.yaml`` (SAM's API, SNS subscriptions and secrets are skipped or fail),
so :func:`provision` creates the same resources over the AWS APIs, from the same definitions: the table's key
schema and TTL attribute are read from ``template.yaml``, the topics from
:data:`~stack_webhook_fanout.event_types.KNOWN_EVENT_TYPES` (which the template tests hold the template to).

Safety: every function here refuses an endpoint that is not on loopback and signs its requests with dummy static
credentials from a session that ignores the user's profile and config files, so nothing here can reach a real
AWS account, whatever the machine is configured with.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, overload
from urllib.parse import urlsplit

from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS, topic_slug

from .signing import new_secret

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_NAME_PREFIX: Final = "stack-webhook-fanout"
#: The port ``make dev`` runs the emulator on unless ``DEV_AWS_PORT`` says otherwise; ``events/env.json`` uses it.
DEFAULT_AWS_PORT: Final = 4566
#: The account moto answers as (unless ``MOTO_ACCOUNT_ID`` is set in the emulator's environment).
EMULATOR_ACCOUNT_ID: Final = "123456789012"
#: Static credentials for the emulator; moto accepts any.
DUMMY_ACCESS_KEY_ID: Final = "testing"
DUMMY_SECRET_ACCESS_KEY: Final = "testing"  # noqa: S105  (not a secret: the emulator's dummy credentials)


class NonLoopbackEndpointError(ValueError):
    """Local mode was given an endpoint that is not on this machine."""


def require_loopback_endpoint(endpoint_url: str) -> str:
    """Return ``endpoint_url`` if it is an http(s) URL on loopback (127.0.0.0/8, ``localhost``, ``::1``).

    Raise :class:`NonLoopbackEndpointError` otherwise: local mode must never talk to a real AWS endpoint.
    """
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise NonLoopbackEndpointError(
            f"refusing endpoint {endpoint_url!r}: local mode needs an http(s) URL of an emulator on this machine, "
            "such as http://127.0.0.1:4566"
        )
    if host == "localhost" or _is_loopback_ip(host):
        return endpoint_url
    raise NonLoopbackEndpointError(
        f"refusing endpoint {endpoint_url!r}: {host!r} is not a loopback address (127.0.0.0/8, localhost, ::1); "
        "local mode only talks to an emulator on this machine, never to AWS"
    )


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def emulator_session(region: str = DEFAULT_REGION) -> Any:
    """A boto3 session with dummy static credentials that reads no profile, config or credentials file."""
    import boto3
    import botocore.session

    # No environment variable for the profile (AWS_PROFILE is ignored) and empty config files: nothing the user
    # configured (SSO, credential_process, a default region or endpoint) can take part.
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=region,
    )


_CLIENTS_LOCK: Final = threading.Lock()


@functools.cache
def _shared_session(region: str) -> Any:
    return emulator_session(region)


@functools.cache
def _shared_client(service: str, endpoint_url: str, region: str) -> Any:
    return _shared_session(region).client(service, endpoint_url=endpoint_url)


@overload
def emulator_client(service: Literal["dynamodb"], endpoint_url: str, region: str = ...) -> DynamoDBClient: ...
@overload
def emulator_client(service: Literal["sns"], endpoint_url: str, region: str = ...) -> SNSClient: ...
@overload
def emulator_client(service: Literal["sqs"], endpoint_url: str, region: str = ...) -> SQSClient: ...
@overload
def emulator_client(
    service: Literal["secretsmanager"], endpoint_url: str, region: str = ...
) -> SecretsManagerClient: ...
def emulator_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A client of ``service`` on the emulator at ``endpoint_url`` (which must be on loopback).

    Clients are made once per service, endpoint and region and then shared (boto3 clients are thread-safe;
    creating one costs tens of milliseconds).
    """
    require_loopback_endpoint(endpoint_url)
    with _CLIENTS_LOCK:  # sessions are not thread-safe, so neither is creating clients from a shared one
        return _shared_client(service, endpoint_url, region)


@dataclass(frozen=True, slots=True)
class ResourceNames:
    """The names of the resources of one local stack, derived from its name prefix."""

    table: str
    secret: str
    topics: Mapping[str, str]
    fallback_topic: str


def resource_names(name_prefix: str = DEFAULT_NAME_PREFIX) -> ResourceNames:
    """``<prefix>-events``, ``<prefix>/webhook-secret``, ``<prefix>-<type slug>`` per type, ``<prefix>-fallback``."""
    return ResourceNames(
        table=f"{name_prefix}-events",
        secret=f"{name_prefix}/webhook-secret",
        topics={t: f"{name_prefix}-{topic_slug(t)}" for t in KNOWN_EVENT_TYPES},
        fallback_topic=f"{name_prefix}-fallback",
    )


@dataclass(frozen=True, slots=True)
class LocalStack:
    """A provisioned local stack: what the function needs to run against it and what ``make dev`` publishes.

    ``secret_value`` is kept out of ``repr`` so that printing a stack never shows the secret.
    """

    endpoint_url: str
    region: str
    name_prefix: str
    table_name: str
    secret_arn: str
    secret_value: str = field(repr=False)
    topic_arns: Mapping[str, str]
    fallback_topic_arn: str
    webhook_url: str | None = None

    def env(self) -> dict[str, str]:
        """The function's environment as :class:`~stack_webhook_fanout.config.Settings` reads it, plus
        ``AWS_ENDPOINT_URL`` (which boto3 honours) pointing every client at the emulator."""
        return {
            "EVENTS_TABLE_NAME": self.table_name,
            "WEBHOOK_SECRET_ARN": self.secret_arn,
            "TOPIC_ARNS": json.dumps(dict(self.topic_arns), separators=(",", ":")),
            "FALLBACK_TOPIC_ARN": self.fallback_topic_arn,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def process_env(self) -> dict[str, str]:
        """:meth:`env` plus the region and dummy credentials: what a process running the handler in place of
        Lambda sets (Lambda provides those itself). Unset ``AWS_PROFILE`` in that process too."""
        return {
            **self.env(),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        }

    def outputs(self) -> dict[str, Any]:
        """The outputs file of ``make dev``: exactly these keys (``WebhookUrl`` is None until a caller sets it)."""
        return {
            "WebhookUrl": self.webhook_url,
            "AwsEndpointUrl": self.endpoint_url,
            "Region": self.region,
            "WebhookSecret": self.secret_value,
            "WebhookSecretArn": self.secret_arn,
            "EventsTableName": self.table_name,
            "TopicArns": dict(self.topic_arns),
            "FallbackTopicArn": self.fallback_topic_arn,
        }

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> LocalStack:
        """The stack an outputs file of ``make dev`` describes (the inverse of :meth:`outputs`); its emulator
        endpoint must be on loopback."""
        return cls(
            endpoint_url=require_loopback_endpoint(str(outputs["AwsEndpointUrl"])),
            region=str(outputs["Region"]),
            name_prefix="",
            table_name=str(outputs["EventsTableName"]),
            secret_arn=str(outputs["WebhookSecretArn"]),
            secret_value=str(outputs["WebhookSecret"]),
            topic_arns={str(k): str(v) for k, v in dict(outputs["TopicArns"]).items()},
            fallback_topic_arn=str(outputs["FallbackTopicArn"]),
            webhook_url=None if outputs.get("WebhookUrl") is None else str(outputs["WebhookUrl"]),
        )

    def with_webhook_url(self, webhook_url: str) -> LocalStack:
        return replace(self, webhook_url=webhook_url)

    def records(self) -> list[dict[str, Any]]:
        """Every item of the events table (strongly consistent scan), as plain values, sorted by event id."""
        from stack_webhook_fanout.event_store import plain_item

        dynamodb = self.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(plain_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda record: str(record.get("event_id")))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @property
    def all_topic_arns(self) -> tuple[str, ...]:
        """Every topic: the known types' in :data:`KNOWN_EVENT_TYPES` order, then the fallback."""
        return (*(self.topic_arns[t] for t in KNOWN_EVENT_TYPES), self.fallback_topic_arn)

    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    def client(self, service: str) -> Any:
        """A client of ``service`` on this stack's emulator, with dummy credentials."""
        return emulator_client(service, self.endpoint_url, self.region)  # type: ignore[call-overload]


def planned_stack(
    endpoint_url: str = f"http://127.0.0.1:{DEFAULT_AWS_PORT}",
    *,
    region: str = DEFAULT_REGION,
    name_prefix: str = DEFAULT_NAME_PREFIX,
    secret_value: str = "",
) -> LocalStack:
    """The stack :func:`provision` creates with these arguments, known without an emulator.

    The secret is named, not given by ARN (Secrets Manager appends a random suffix to ARNs; ``GetSecretValue``
    takes either). ``events/env.json`` is written from this.
    """
    names = resource_names(name_prefix)

    def topic_arn(name: str) -> str:
        return f"arn:aws:sns:{region}:{EMULATOR_ACCOUNT_ID}:{name}"

    return LocalStack(
        endpoint_url=endpoint_url,
        region=region,
        name_prefix=name_prefix,
        table_name=names.table,
        secret_arn=names.secret,
        secret_value=secret_value,
        topic_arns={t: topic_arn(n) for t, n in names.topics.items()},
        fallback_topic_arn=topic_arn(names.fallback_topic),
    )


@dataclass(frozen=True, slots=True)
class TableDefinition:
    """What the emulator's table takes from the template."""

    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    ttl_attribute: str | None


class TemplateDriftError(ValueError):
    """``template.yaml`` and the code disagree about what the stack holds."""


def table_definition(template_path: Path = Path("template.yaml")) -> TableDefinition:
    """Read the events table's key schema, attribute types and TTL attribute from ``template.yaml``.

    Also check that the template declares exactly one topic per known type plus the fallback, so that the
    emulator never serves a stack the template would not deploy; raise :class:`TemplateDriftError` if not.
    """
    from . import cfn_template

    template = cfn_template.load_template(template_path)
    expected_topics = {*TOPIC_LOGICAL_IDS.values(), FALLBACK_TOPIC_LOGICAL_ID}
    declared_topics = cfn_template.topic_logical_ids(template)
    if declared_topics != expected_topics:
        raise TemplateDriftError(
            f"{template_path} declares topics {sorted(declared_topics - expected_topics)} that the code does not "
            f"know and lacks {sorted(expected_topics - declared_topics)} (see stack_webhook_fanout.event_types)"
        )
    key_schema, attribute_definitions = cfn_template.table_key_schema(template)
    return TableDefinition(
        key_schema=[dict(k) for k in key_schema],
        attribute_definitions=[dict(a) for a in attribute_definitions],
        ttl_attribute=cfn_template.ttl_attribute(template),
    )


def provision(
    endpoint_url: str,
    *,
    region: str = DEFAULT_REGION,
    name_prefix: str = DEFAULT_NAME_PREFIX,
    secret_value: str | None = None,
    template_path: Path = Path("template.yaml"),
) -> LocalStack:
    """Create the table, the webhook secret and every topic on the emulator at ``endpoint_url``.

    ``secret_value`` defaults to a fresh ``whsec_`` value. Running it again against the same emulator and prefix
    reuses what exists (the secret gets the new value). Raises :class:`NonLoopbackEndpointError` before any
    request when the endpoint is not on loopback.
    """
    require_loopback_endpoint(endpoint_url)
    table = table_definition(template_path)
    names = resource_names(name_prefix)
    secret_value = new_secret() if secret_value is None else secret_value

    create_table(emulator_client("dynamodb", endpoint_url, region), names.table, table)
    secret_arn = _create_secret(emulator_client("secretsmanager", endpoint_url, region), names.secret, secret_value)
    sns = emulator_client("sns", endpoint_url, region)
    topic_arns = {t: sns.create_topic(Name=name)["TopicArn"] for t, name in names.topics.items()}
    fallback_topic_arn = sns.create_topic(Name=names.fallback_topic)["TopicArn"]
    return LocalStack(
        endpoint_url=endpoint_url,
        region=region,
        name_prefix=name_prefix,
        table_name=names.table,
        secret_arn=secret_arn,
        secret_value=secret_value,
        topic_arns=topic_arns,
        fallback_topic_arn=fallback_topic_arn,
    )


def create_table(client: DynamoDBClient, name: str, table: TableDefinition) -> None:
    """Create a pay-per-request table (unless it exists) with the template's key schema and TTL attribute."""
    with contextlib.suppress(client.exceptions.ResourceInUseException):  # provisioned before on this emulator
        client.create_table(
            TableName=name,
            KeySchema=table.key_schema,  # type: ignore[arg-type]
            AttributeDefinitions=table.attribute_definitions,  # type: ignore[arg-type]
            BillingMode="PAY_PER_REQUEST",
        )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    if table.ttl_attribute:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
        )


def _create_secret(client: SecretsManagerClient, name: str, value: str) -> str:
    try:
        return client.create_secret(Name=name, SecretString=value)["ARN"]
    except client.exceptions.ResourceExistsException:
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def subscribe_queue(
    stack: LocalStack,
    topic_arns: Iterable[str],
    queue_name: str,
    filter_policy: Mapping[str, Any] | None = None,
) -> str:
    """Create an SQS queue, subscribe it to each topic with raw delivery (and ``filter_policy`` on message
    attributes, if given); return its URL. Messages then carry the verbatim body and the SNS attributes."""
    sqs = stack.client("sqs")
    sns = stack.client("sns")
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topics = list(topic_arns)
    # What a real account needs for SNS to deliver (moto does not enforce it, but the queue reads as it should).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topics}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
        attributes["FilterPolicyScope"] = "MessageAttributes"
    for topic_arn in topics:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
    return queue_url


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A message taken off a queue: the raw-delivered body and its message attributes as plain strings."""

    body: str
    attributes: Mapping[str, str]
    message_id: str


def drain(
    queue_url: str,
    *,
    stack: LocalStack | None = None,
    wait_seconds: int = 0,
    max_messages: int | None = None,
) -> list[QueueMessage]:
    """Receive and delete every message on the queue until a receive comes back empty.

    The first receive waits up to ``wait_seconds`` (long polling; 0 returns at once); later ones do not wait.
    The client is the stack's, or one made for the queue URL's own host (which must be on loopback).
    Stops early once ``max_messages`` were taken, if given.
    """
    if stack is not None:
        sqs = stack.client("sqs")
    else:
        parts = urlsplit(queue_url)
        sqs = emulator_client("sqs", f"{parts.scheme}://{parts.netloc}")
    taken: list[QueueMessage] = []
    wait = wait_seconds
    while max_messages is None or len(taken) < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = {
                name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
            }
            taken.append(QueueMessage(body=message["Body"], attributes=attributes, message_id=message["MessageId"]))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        wait = 0
    return taken


def wait_until_ready(endpoint_url: str, *, timeout_seconds: float = 30.0, interval_seconds: float = 0.1) -> None:
    """Poll the emulator until it answers an AWS call; raise TimeoutError if it does not in time."""
    import botocore.exceptions
    from botocore.config import Config

    require_loopback_endpoint(endpoint_url)
    config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    sqs: SQSClient = emulator_session().client("sqs", endpoint_url=endpoint_url, config=config)
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            sqs.list_queues()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the emulator at {endpoint_url} did not answer within {timeout_seconds} s") from exc
            time.sleep(interval_seconds)
        else:
            return
