"""Shared fixtures of the unit tier: dummy AWS credentials, in-process moto resources, clocks, fault hooks, and
signed requests built with the project's own signing helper.

Nothing here talks to a network: every AWS request of the tier is answered by in-process moto (``mock_aws``), and the
credentials are dummies whatever the user's shell holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from stack_webhook_fanout.bootstrap import build_service
from stack_webhook_fanout.config import Settings
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES, topic_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from stack_webhook_fanout.ingest import IngestService

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = REPO_ROOT / "events"
REGION = "us-east-1"
TABLE_NAME = "unit-events"
SECRET_NAME = "unit/stack-webhook-secret"
#: A type this release does not know, routed to the fallback topic (``events/session.created.json``).
UNKNOWN_EXAMPLE_TYPE = "session.created"


def load_example_bodies() -> dict[str, str]:
    """The verbatim body of every known type and of ``session.created`` (a type this release does not know), taken
    from ``events/<type>.json``: API Gateway events whose ``body`` is the Stack body as a string."""
    bodies: dict[str, str] = {}
    for event_type in (*KNOWN_EVENT_TYPES, UNKNOWN_EXAMPLE_TYPE):
        event = json.loads((EVENTS_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
        assert not event.get("isBase64Encoded"), f"events/{event_type}.json: expected a text body"
        bodies[event_type] = event["body"]
    return bodies


# --- environment ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _dummy_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no endpoint or profile from the user's shell: the unit tier can never reach AWS."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SNS",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto for every AWS service, for the duration of one test."""
    with mock_aws():
        yield


# --- clocks and fault hooks -----------------------------------------------------------------------------------


@dataclass
class FakeClock:
    """A clock the test moves by hand (seconds)."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wall_clock() -> FakeClock:
    """A second clock, for code that reads a monotonic (``clock``) and a wall clock the test moves apart."""
    return FakeClock(now=1_900_000_000.0)


@dataclass
class CallCounter:
    """Counts the calls a client really makes to one operation (a botocore ``before-call`` hook)."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(params)

    @property
    def count(self) -> int:
        return len(self.calls)


@dataclass
class Fault:
    """Makes one operation of one client fail with ``error`` (before the request is sent) while ``active``."""

    error: Exception
    when: Callable[[dict[str, Any]], bool] | None = None
    active: bool = True
    raised: int = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.active and (self.when is None or self.when(params)):
            self.raised += 1
            raise self.error


@pytest.fixture
def hook() -> Iterator[Callable[[Any, str, Callable[..., Any]], None]]:
    """``hook(client, "before-call.dynamodb.UpdateItem", handler)``: a botocore event handler on a real client (or
    botocore session), removed when the test ends (the clients outlive the test)."""
    registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def register(target: Any, event_name: str, handler: Callable[..., Any]) -> None:
        events = target.meta.events if hasattr(target, "meta") else target  # a client, or a botocore session
        events.register(event_name, handler)
        registered.append((events, event_name, handler))

    yield register
    for events, event_name, handler in registered:
        events.unregister(event_name, handler)


@pytest.fixture
def count_calls(hook: Callable[..., None]) -> Callable[[Any, str, str], CallCounter]:
    """``count_calls(client, "secrets-manager", "GetSecretValue")`` -> a counter of that client's calls."""

    def register(client: Any, service_id: str, operation: str) -> CallCounter:
        counter = CallCounter()
        hook(client, f"before-call.{service_id}.{operation}", counter)
        return counter

    return register


@pytest.fixture
def inject_fault(hook: Callable[..., None]) -> Callable[..., Fault]:
    """``inject_fault(client, "dynamodb", "UpdateItem", error, when=None)``: a ``before-call`` hook that raises."""

    def register(
        client: Any,
        service_id: str,
        operation: str,
        error: Exception,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Fault:
        fault = Fault(error=error, when=when)
        hook(client, f"before-call.{service_id}.{operation}", fault)
        return fault

    return register


def client_error(code: str, operation: str, status: int = 400) -> ClientError:
    """A ClientError as botocore builds it from an AWS error response (with its HTTP status, as botocore's has)."""
    return ClientError(
        {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.fixture
def make_client_error() -> Callable[..., ClientError]:
    return client_error


# --- AWS resources ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _clients() -> dict[str, Any]:
    """One boto3 client per service for the whole session (creating clients is the slow part of a moto test).

    Created after ``moto`` is imported, so its stubber sees every request; explicit dummy credentials, so that they
    never come from the user's environment. Each test's ``mock_aws`` gives them fresh, empty backends.
    """
    return {
        name: boto3.client(
            name,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )
        for name in ("dynamodb", "secretsmanager", "sns", "sqs")
    }


@pytest.fixture
def dynamodb(aws: None, _clients: dict[str, Any]) -> Any:
    return _clients["dynamodb"]


@pytest.fixture
def events_table(dynamodb: Any) -> str:
    """The events table as the template declares it: key ``event_id``, TTL on ``expires_at``."""
    dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return TABLE_NAME


@pytest.fixture
def secretsmanager(aws: None, _clients: dict[str, Any]) -> Any:
    return _clients["secretsmanager"]


@pytest.fixture
def webhook_secret() -> str:
    return new_secret()


@pytest.fixture
def secret_arn(secretsmanager: Any, webhook_secret: str) -> str:
    """A secret holding one ``whsec_`` value."""
    return str(secretsmanager.create_secret(Name=SECRET_NAME, SecretString=webhook_secret)["ARN"])


@pytest.fixture
def sns(aws: None, _clients: dict[str, Any]) -> Any:
    return _clients["sns"]


@pytest.fixture
def sqs(aws: None, _clients: dict[str, Any]) -> Any:
    return _clients["sqs"]


@dataclass(frozen=True)
class Topics:
    by_type: dict[str, str]
    fallback: str

    @property
    def all(self) -> list[str]:
        return [*self.by_type.values(), self.fallback]


@pytest.fixture
def topics(sns: Any) -> Topics:
    """One topic per known type and the fallback topic."""
    by_type = {t: sns.create_topic(Name=f"unit-{topic_slug(t)}")["TopicArn"] for t in KNOWN_EVENT_TYPES}
    return Topics(by_type=by_type, fallback=sns.create_topic(Name="unit-fallback")["TopicArn"])


@dataclass(frozen=True)
class Delivery:
    topic_arn: str
    body: str
    attributes: dict[str, str]


@dataclass
class Sink:
    """An SQS queue subscribed to every topic (SNS envelopes, so each message says which topic it came from)."""

    sqs: Any
    queue_url: str

    def drain(self) -> list[Delivery]:
        deliveries: list[Delivery] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return deliveries
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {name: a["Value"] for name, a in envelope.get("MessageAttributes", {}).items()}
                deliveries.append(Delivery(envelope["TopicArn"], envelope["Message"], attributes))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def sink(sns: Any, sqs: Any, topics: Topics) -> Sink:
    queue_url = sqs.create_queue(QueueName="unit-sink")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic_arn in topics.all:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Sink(sqs=sqs, queue_url=queue_url)


def scan_items(dynamodb: Any, table: str = TABLE_NAME) -> list[dict[str, Any]]:
    return list(dynamodb.scan(TableName=table, ConsistentRead=True).get("Items", []))


@pytest.fixture
def stored_items(dynamodb: Any, events_table: str) -> Callable[[], list[dict[str, Any]]]:
    """``stored_items()``: every item of the events table, as DynamoDB returns them."""
    return lambda: scan_items(dynamodb, events_table)


@pytest.fixture
def settings(events_table: str, secret_arn: str, topics: Topics) -> Settings:
    return Settings(
        table_name=events_table,
        secret_arn=secret_arn,
        topic_arns=topics.by_type,
        fallback_topic_arn=topics.fallback,
    )


@pytest.fixture
def service(settings: Settings, dynamodb: Any, sns: Any, secretsmanager: Any, sink: Sink) -> IngestService:
    """The real ingest service wired by ``bootstrap.build_service`` over in-process moto clients."""
    return build_service(settings, clients={"dynamodb": dynamodb, "sns": sns, "secretsmanager": secretsmanager})


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, str]:
    """The Lambda function's environment for ``settings``, set in ``os.environ``."""
    env = {
        "EVENTS_TABLE_NAME": settings.table_name,
        "WEBHOOK_SECRET_ARN": settings.secret_arn,
        "TOPIC_ARNS": json.dumps(dict(settings.topic_arns)),
        "FALLBACK_TOPIC_ARN": settings.fallback_topic_arn,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# --- signed requests -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def example_bodies() -> dict[str, str]:
    return load_example_bodies()


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]

    @property
    def event_id(self) -> str:
        return self.headers["svix-id"]

    def apigw_event(self, **kwargs: Any) -> dict[str, Any]:
        """This request as an API Gateway HTTP API v2 event (``devkit.apigw``)."""
        headers = {"content-type": "application/json", **self.headers}
        return http_api_event(self.body, headers, **kwargs)


@pytest.fixture
def signed(webhook_secret: str) -> Callable[..., SignedRequest]:
    """``signed(body, secret=..., msg_id=..., timestamp=...)``: a body with valid svix headers (the secret fixture's
    value unless another is given)."""

    def make(
        body: bytes | str,
        *,
        secret: str | list[str] | None = None,
        msg_id: str | None = None,
        timestamp: int | None = None,
    ) -> SignedRequest:
        raw = body.encode() if isinstance(body, str) else body
        headers = sign_headers(secret or webhook_secret, raw, msg_id=msg_id, timestamp=timestamp)
        return SignedRequest(body=raw, headers=headers)

    return make
