"""Property-based tests over whole API Gateway events: any headers, any body.

Through ``http_api.handle_http_event`` (the function's entry point minus the Powertools decorators) with the real
boto3 clients on an in-process moto backend, for speed. The verdict of ``svix.webhooks.Webhook`` (Svix's own
library) on the body API Gateway delivers is the oracle of "carried a valid signature".

1. Whatever the request: never a 5xx, and nothing stored or published unless the signature is valid.
2. A valid signature over any body: 200, and exactly the verified bytes are stored and published, once, to the
   topic of the event's type when it is a JSON object with a known type (whatever its data), to the fallback topic
   otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from moto import mock_aws
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_data
from stack_webhook_fanout_tools.devkit.signing import new_secret
from svix.webhooks import Webhook as SvixWebhook

from stack_webhook_fanout.bootstrap import build_service
from stack_webhook_fanout.config import Settings
from stack_webhook_fanout.event_store import plain_item, stored_body
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES, topic_slug
from stack_webhook_fanout.http_api import handle_http_event
from stack_webhook_fanout.topics import SNS_MAX_MESSAGE_BYTES

from .support import FALLBACK, TEMPLATE_PATH

if TYPE_CHECKING:
    from collections.abc import Iterator

    from stack_webhook_fanout.ingest import IngestService

REGION = "us-east-1"
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SAFE_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:$@+-"


@dataclass(repr=False)
class Backend:
    """The service under test and what it writes to, all on one in-process moto backend."""

    service: IngestService
    secret: str
    dynamodb: Any
    sqs: Any
    table: str
    queues: dict[str, str]
    topic_queue: dict[str, str]

    def __repr__(self) -> str:
        return f"Backend(table={self.table!r})"

    def records(self) -> list[dict[str, Any]]:
        return [plain_item(i) for i in self.dynamodb.scan(TableName=self.table, ConsistentRead=True)["Items"]]

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """Every message on every queue as (queue name, SQS message), taking them off the queues."""
        taken: list[tuple[str, dict[str, Any]]] = []
        for name, url in self.queues.items():
            while True:
                batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
                messages = batch.get("Messages", [])
                if not messages:
                    break
                taken.extend((name, m) for m in messages)
                self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
        return taken

    def clear(self) -> None:
        for record in self.records():
            self.dynamodb.delete_item(TableName=self.table, Key={"event_id": {"S": record["event_id"]}})
        self.messages()


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            mp.setenv(name, value)
        with mock_aws():
            yield _provision()


def _provision() -> Backend:
    clients = {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "sns", "sqs", "secretsmanager")}
    template = cfn_template.load_template(TEMPLATE_PATH)
    key_schema, attribute_definitions = cfn_template.table_key_schema(template)
    table = "props-events"
    clients["dynamodb"].create_table(
        TableName=table,
        KeySchema=list(key_schema),
        AttributeDefinitions=list(attribute_definitions),
        BillingMode="PAY_PER_REQUEST",
    )
    secret = new_secret()
    secret_arn = clients["secretsmanager"].create_secret(Name="props/secret", SecretString=secret)["ARN"]
    sns, sqs = clients["sns"], clients["sqs"]
    topics = {t: sns.create_topic(Name=f"props-{topic_slug(t)}")["TopicArn"] for t in KNOWN_EVENT_TYPES}
    fallback = sns.create_topic(Name="props-fallback")["TopicArn"]
    queues: dict[str, str] = {}
    topic_queue: dict[str, str] = {}
    for name, topic in [*topics.items(), (FALLBACK, fallback)]:
        url = sqs.create_queue(QueueName=f"props-{topic_slug(name)}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        queues[name] = url
        topic_queue[topic] = name
    service = build_service(
        Settings(table_name=table, secret_arn=secret_arn, topic_arns=topics, fallback_topic_arn=fallback),
        clients={k: clients[k] for k in ("dynamodb", "sns", "secretsmanager")},
    )
    return Backend(
        service=service,
        secret=secret,
        dynamodb=clients["dynamodb"],
        sqs=sqs,
        table=table,
        queues=queues,
        topic_queue=topic_queue,
    )


# --- signing and the oracle -------------------------------------------------------------------------------------


def v1_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """A ``v1`` entry over raw bytes (Svix signs text; bytes let non-UTF-8 bodies carry a well-formed MAC too)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def delivered_body(event: dict[str, Any]) -> bytes | None:
    """The bytes API Gateway hands the function, or None when the event cannot carry any."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            return None
    try:
        return body.encode()
    except UnicodeEncodeError:
        return None


def svix_verifies(secret: str, event: dict[str, Any]) -> bool:
    """Svix's own verdict on the request (any exception is a rejection, as it would be for a Svix user)."""
    if event["requestContext"]["http"]["method"] != "POST":
        return False
    body = delivered_body(event)
    if body is None:
        return False
    try:
        SvixWebhook(secret).verify(body, event["headers"])
    except Exception:
        return False
    return True


def expected_queue(body: bytes) -> str:
    """Where a verified body belongs, by the routing rule: a JSON object whose ``type`` is a known Stack type goes to
    that type's topic whatever its data holds; anything else to the fallback."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return FALLBACK
    if isinstance(document, dict) and isinstance(document.get("type"), str) and document["type"] in KNOWN_EVENT_TYPES:
        return str(document["type"])
    return FALLBACK


def api_event(headers: dict[str, str], body: str, *, base64_encoded: bool, method: str = "POST") -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/stack",
        "rawPath": "/webhooks/stack",
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": "/webhooks/stack"}, "requestId": str(uuid.uuid4())},
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


# --- strategies -------------------------------------------------------------------------------------------------


def random_case(name: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(name), max_size=len(name))
    return flips.map(lambda f: "".join(c.upper() if up else c for c, up in zip(name, f, strict=True)))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@st.composite
def stack_like_bodies(draw: st.DrawFn) -> bytes:
    """A sample event of any type, sometimes with fields added or replaced by arbitrary JSON."""
    event_type = draw(st.sampled_from(SAMPLE_TYPES))
    data: Any = sample_data(event_type)
    changes = draw(st.dictionaries(st.sampled_from([*data, "extra", "id"]), JSON_VALUES, max_size=2))
    data.update(changes)
    document: dict[str, Any] = {"type": draw(st.one_of(st.just(event_type), st.text(max_size=20))), "data": data}
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode()


def sized_body(size: int) -> bytes:
    return b'{"type":"stack.test","data":{"message":"' + b"a" * max(0, size - 43) + b'"}}'


BODIES = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    stack_like_bodies(),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'{"type":null}', b"\xff\xfe\x00", b"[" * 3000 + b"]" * 3000]),
    st.integers(SNS_MAX_MESSAGE_BYTES - 400, SNS_MAX_MESSAGE_BYTES + 400).map(sized_body),
)
SAFE_IDS = st.text(alphabet=SAFE_ID_ALPHABET, min_size=1, max_size=40).map(lambda s: "msg_" + s)
EVENT_IDS = st.one_of(SAFE_IDS, st.text(max_size=300))
# Seconds from now; the 5-minute tolerance boundary itself is left out (the clock moves while a test runs).
TIMESTAMP_OFFSETS = st.one_of(
    st.just(0), st.integers(-290, 290), st.just(0), st.integers(310, 10**9), st.integers(-(10**9), -310)
)
JUNK_VALUES = st.sampled_from(
    [
        "",
        " ",
        "v1",
        "v1,",
        "v1,!!!",
        "v1,=",
        "v1a,AAAA",
        "v2,AAAA",
        "v1,AAAA v1,BBBB",
        "v1,AAAA  v1,BBBB",
        "v1,a,b",
        "\r\n",
        "msg_1\r\nx-injected: 1",
        "9" * 5000,
        "-1",
        "1e9",
        "0x10",
        "\u0661\u0667\u0660\u0660",
        "\x00",
        "whsec_",
    ]
)
HEADER_NAMES = st.one_of(
    st.sampled_from([*SVIX_HEADERS, *STANDARD_HEADERS, "content-type"]).flatmap(random_case),
    st.text(max_size=30),
)
HEADER_VALUES = st.one_of(
    st.text(max_size=60),
    JUNK_VALUES,
    st.integers(1_000, 50_000).map(lambda n: "A" * n),
)


@st.composite
def any_requests(draw: st.DrawFn, secret: str) -> dict[str, Any]:
    """An HTTP API event with any mix of a real, a wrong or no signature, junk headers and any body encoding."""
    body = draw(BODIES)
    msg_id = draw(EVENT_IDS)
    timestamp = str(int(time.time()) + draw(TIMESTAMP_OFFSETS))
    # Weighted towards a real signature, so that the junk around it decides the verdict often enough.
    signature_mode = draw(
        st.sampled_from(["none", "valid", "valid", "valid", "wrong_secret", "tampered", "extra_entry"])
    )
    names = draw(st.sampled_from([SVIX_HEADERS, STANDARD_HEADERS]))
    signed: dict[str, str] = {}
    if signature_mode != "none":
        key = secret if signature_mode != "wrong_secret" else new_secret()
        signature = v1_signature(key, msg_id, timestamp, body)
        if signature_mode == "tampered":
            body = body + b" "
        if signature_mode == "extra_entry":
            signature = draw(st.sampled_from(["v1,AAAA ", "v2,AAAA ", "v1,!!! ", "v1a,AAAA "])) + signature
        values = (msg_id, timestamp, signature)
        signed = {draw(random_case(name)): value for name, value in zip(names, values, strict=True)}
    extra = draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3))
    headers = {**signed, **extra} if draw(st.booleans()) else {**extra, **signed}
    transport = draw(st.sampled_from(["text", "text", "base64", "base64", "junk_base64"]))
    if transport == "text":
        text, encoded = body.decode("utf-8", errors="surrogateescape"), False
    elif transport == "base64":
        text, encoded = base64.b64encode(body).decode(), True
    else:
        text, encoded = draw(st.text(max_size=40)), True
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT"]))
    return api_event(headers, text, base64_encoded=encoded, method=method)


@st.composite
def validly_signed_requests(draw: st.DrawFn, secret: str) -> tuple[dict[str, Any], bytes, str]:
    """A correctly signed delivery of any UTF-8 body small enough for one SNS message, however transported."""
    body = draw(st.one_of(st.text(max_size=400).map(str.encode), stack_like_bodies()))
    msg_id = draw(SAFE_IDS)
    timestamp = str(int(time.time()) + draw(st.integers(-290, 290)))
    names = draw(st.sampled_from([SVIX_HEADERS, STANDARD_HEADERS]))
    values = (msg_id, timestamp, v1_signature(secret, msg_id, timestamp, body))
    headers = {draw(random_case(name)): value for name, value in zip(names, values, strict=True)}
    if draw(st.booleans()):
        event = api_event(headers, base64.b64encode(body).decode(), base64_encoded=True)
    else:
        event = api_event(headers, body.decode(), base64_encoded=False)
    return event, body, msg_id


# --- the properties ---------------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_request_is_never_a_5xx_and_nothing_unverified_is_stored_or_published(
    backend: Backend, data: st.DataObject
) -> None:
    # given: a clean backend and any request
    backend.clear()
    event = data.draw(any_requests(backend.secret))
    verified = svix_verifies(backend.secret, event)

    # when
    response = handle_http_event(backend.service, event)

    # then
    status = response["statusCode"]
    records, messages = backend.records(), backend.messages()
    hypothesis_event(f"verified={verified} status={status}")
    assert status < 500, response
    if not verified:
        assert status in {400, 401, 405, 413}, response
        assert records == []
        assert messages == []
    elif status == 200:
        assert len(records) == 1
        assert len(messages) == 1
    else:
        # verified but refused: an id that cannot be an attribute (400) or too large for SNS (413)
        assert status in {400, 413}, response
        assert records == []
        assert messages == []


@PROPERTY_SETTINGS
@given(data=st.data())
def test_validly_signed_body_is_stored_and_published_verbatim_exactly_once(
    backend: Backend, data: st.DataObject
) -> None:
    # given: a clean backend and a correctly signed delivery of any non-empty body
    backend.clear()
    event, body, msg_id = data.draw(validly_signed_requests(backend.secret))
    # an empty body is refused with a 400 (SNS cannot carry it): test_adversarial covers it
    assume(0 < len(body) < SNS_MAX_MESSAGE_BYTES - 1024)

    # when
    response = handle_http_event(backend.service, event)

    # then: accepted, stored once with the verified bytes, published once to where its content belongs
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["status"] == "published"
    records = backend.records()
    assert [(r["event_id"], stored_body(r), r["body_sha256"]) for r in records] == [
        (msg_id, body, hashlib.sha256(body).hexdigest())
    ]
    messages = backend.messages()
    assert [name for name, _ in messages] == [expected_queue(body)]
    message = messages[0][1]
    assert message["Body"].encode() == body
    assert message["MessageAttributes"]["event_id"]["StringValue"] == msg_id

    # and a redelivery (re-signed later) is a duplicate that publishes nothing
    later = str(int(event["headers"][_header_name(event, "timestamp")]) + 1)
    again = {_header_name(event, "timestamp"): later, _header_name(event, "id"): msg_id}
    again[_header_name(event, "signature")] = v1_signature(backend.secret, msg_id, later, body)
    redelivery = {**event, "headers": again}
    response = handle_http_event(backend.service, redelivery)
    assert (response["statusCode"], json.loads(response["body"])["status"]) == (200, "duplicate")
    assert backend.messages() == []


def _header_name(event: dict[str, Any], suffix: str) -> str:
    (name,) = [n for n in event["headers"] if n.lower().endswith(f"-{suffix}")]
    return name


def test_base64_flagged_body_with_non_ascii_text_is_a_400(backend: Backend) -> None:
    # given: an event flagged base64 whose body is not ASCII (API Gateway never sends one; a malformed event does)
    backend.clear()
    msg_id, timestamp = "msg_nonascii", str(int(time.time()))
    headers = {"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": "v1,AAAA"}
    event = api_event(headers, "\u00e9t\u00e9", base64_encoded=True)

    # when
    response = handle_http_event(backend.service, event)

    # then: a malformed request, refused as such, nothing stored
    assert (response["statusCode"], json.loads(response["body"])) == (
        400,
        {"error": "bad_request", "reason": "body_not_base64"},
    )
    assert backend.records() == []
