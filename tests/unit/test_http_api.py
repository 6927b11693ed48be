"""``http_api.py`` + ``ingest.py`` over in-process moto: every answer of the status table in issue 2, and for each
rejection that nothing was stored (the table is scanned) and nothing published (a queue subscribed to every topic
stays empty). Faults are injected with botocore ``before-call`` hooks on the real clients."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError
from stack_webhook_fanout_tools.devkit.signing import new_secret

from stack_webhook_fanout.errors import BadRequestError
from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.event_store import EventStore, plain_item, stored_body
from stack_webhook_fanout.event_time import decode_ksuid_ms, event_created_at_ms
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.http_api import handle_http_event, request_from_event
from stack_webhook_fanout.ingest import IngestService
from stack_webhook_fanout.observability import logger
from stack_webhook_fanout.publisher import SnsPublisher
from stack_webhook_fanout.topics import SNS_MAX_MESSAGE_BYTES, TopicRouter, message_attributes, message_size
from stack_webhook_fanout.webhook_secret import WebhookSecretSource

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BODY = '{"type":"team.deleted","data":{"id":"ad962777-8244-496a-b6a2-e0c6a449c79e"}}'


def answer(result: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    return result["statusCode"], json.loads(result["body"]), result["headers"]


@pytest.fixture
def post(service: IngestService) -> Callable[..., tuple[int, dict[str, Any], dict[str, str]]]:
    """``post(signed_request | apigw_event)``: the answer of ``handle_http_event`` as (status, body, headers)."""

    def send(request: Any, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        event = request if isinstance(request, dict) else request.apigw_event(**kwargs)
        return answer(handle_http_event(service, event))

    return send


@pytest.fixture
def nothing_happened(stored_items: Callable[[], list[Any]], sink: Any) -> Callable[[], None]:
    """Assert that nothing was stored and nothing published."""

    def check() -> None:
        assert stored_items() == []
        assert sink.drain() == []

    return check


# --- request_from_event ---------------------------------------------------------------------------------------------


def event_of(body: str | None, *, b64: bool = False, method: str = "POST", headers: Any = None) -> dict[str, Any]:
    return {
        "headers": headers if headers is not None else {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": b64,
        "requestContext": {"http": {"method": method}},
    }


def test_request_from_event_text_body() -> None:
    assert request_from_event(event_of(BODY)).body == BODY.encode()


def test_request_from_event_base64_body_is_decoded() -> None:
    raw = b"\x00\xff" + BODY.encode()
    assert request_from_event(event_of(base64.b64encode(raw).decode(), b64=True)).body == raw


def test_request_from_event_base64_flag_false_keeps_the_text() -> None:
    encoded = base64.b64encode(BODY.encode()).decode()
    assert request_from_event(event_of(encoded)).body == encoded.encode()


@pytest.mark.parametrize("body", ["not base64!", "YWJj=", "YW Jj", "YWJjZA"])
def test_request_from_event_invalid_base64_is_bad_request(body: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        request_from_event(event_of(body, b64=True))
    assert raised.value.reason == "body_not_base64"


def test_request_from_event_header_names_are_lower_cased() -> None:
    request = request_from_event(event_of(BODY, headers={"Svix-Id": "msg_1", "SVIX-TIMESTAMP": "1", "X-Other": "v"}))
    assert dict(request.headers) == {"svix-id": "msg_1", "svix-timestamp": "1", "x-other": "v"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "post"])
def test_request_from_event_other_method_is_not_allowed(method: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        request_from_event(event_of(BODY, method=method))
    assert raised.value.reason == "method_not_allowed"


def test_request_from_event_missing_parts_mean_an_empty_post() -> None:
    request = request_from_event({})
    assert (request.body, dict(request.headers)) == (b"", {})


@pytest.mark.parametrize("context", [None, {}, {"http": None}, {"http": "POST"}, "x"])
def test_request_from_event_missing_or_odd_request_context_means_post(context: Any) -> None:
    event = {**event_of(BODY), "requestContext": context}
    assert request_from_event(event).body == BODY.encode()


@pytest.mark.parametrize("headers", [["svix-id"], "svix-id: 1", 5])
def test_request_from_event_headers_not_a_map_is_bad_request(headers: Any) -> None:
    with pytest.raises(BadRequestError) as raised:
        request_from_event(event_of(BODY, headers=headers))
    assert raised.value.reason == "headers_not_a_map"


def test_handle_headers_not_a_map_is_400(post: Any, nothing_happened: Any) -> None:
    status, body, _ = post(event_of(BODY, headers=["svix-id"]))
    assert (status, body) == (400, {"error": "bad_request", "reason": "headers_not_a_map"})
    nothing_happened()


def test_request_from_event_body_not_text_is_bad_request() -> None:
    with pytest.raises(BadRequestError) as raised:
        request_from_event(event_of({"type": "x"}))  # type: ignore[arg-type]
    assert raised.value.reason == "body_not_text"


def test_request_from_event_body_with_lone_surrogate_is_bad_request() -> None:
    with pytest.raises(BadRequestError) as raised:
        request_from_event(event_of('{"type":"\udc80"}'))
    assert raised.value.reason == "body_not_utf8"


# --- published, duplicate, in progress ------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", [*KNOWN_EVENT_TYPES, "session.created"])
def test_handle_published_to_its_topic(
    post: Any, signed: Any, example_bodies: dict[str, str], topics: Any, sink: Any, stored_items: Any, event_type: str
) -> None:
    # given a signed delivery of an example event
    request = signed(example_bodies[event_type])
    # when it is handled
    status, body, _ = post(request)
    # then 200 with the event id, and the verbatim body on the type's topic (the fallback for an unknown type)
    assert status == 200
    assert body["status"] == "published"
    assert body["event_id"] == request.event_id
    deliveries = sink.drain()
    assert len(deliveries) == 1
    expected_topic = topics.by_type.get(event_type, topics.fallback)
    assert deliveries[0].topic_arn == expected_topic
    assert deliveries[0].body == example_bodies[event_type]
    assert deliveries[0].attributes["event_type"] == event_type
    assert deliveries[0].attributes["event_id"] == request.event_id
    assert deliveries[0].attributes["event_timestamp"] == request.headers["svix-timestamp"]
    # and the record says where it went
    [item] = [plain_item(i) for i in stored_items()]
    assert (item["event_id"], item["status"], item["topic_arn"]) == (request.event_id, "published", expected_topic)
    assert item["message_id"] == body["message_id"]


def test_handle_published_attributes_equal_message_attributes(
    post: Any, signed: Any, example_bodies: dict[str, str], sink: Any
) -> None:
    request = signed(example_bodies["team_permission.created"])
    post(request)
    [delivery] = sink.drain()
    created_at = decode_ksuid_ms(request.event_id)  # the signer's ids are Svix KSUIDs of the current time
    assert created_at is not None
    expected = message_attributes(
        parse_event(request.body), request.event_id, request.headers["svix-timestamp"], event_created_at=created_at
    )
    assert delivery.attributes == {name: value["StringValue"] for name, value in expected.items()}


def test_handle_base64_encoded_body_is_published_verbatim(
    post: Any, signed: Any, example_bodies: dict[str, str], sink: Any
) -> None:
    request = signed(example_bodies["user.created"])
    status, _, _ = post(request, force_base64=True)
    assert status == 200
    assert [d.body.encode() for d in sink.drain()] == [request.body]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1,2,3]", "not_an_object"),
        ("plain text, signed", "not_json"),
        ('{"type":"has space","data":{}}', "invalid_type"),
        ('{"data":{}}', "missing_type"),
    ],
)
def test_handle_verified_invalid_body_goes_to_the_fallback(
    post: Any, signed: Any, topics: Any, sink: Any, body: str, reason: str
) -> None:
    status, answer_body, _ = post(signed(body))
    assert (status, answer_body["status"]) == (200, "published")
    [delivery] = sink.drain()
    assert delivery.topic_arn == topics.fallback
    assert delivery.body == body
    assert delivery.attributes["invalid_reason"] == reason


@pytest.mark.parametrize(
    "body",
    [
        '{"type":"user.created","data":{"id":"u_1"}}',  # no signed_up_at_millis: the User model rejects it
        '{"type":"team.created","data":{"id":"t_1","created_at_millis":"yesterday"}}',
        '{"type":"team.deleted"}',
    ],
)
def test_handle_known_type_is_routed_on_its_verified_type_whatever_its_data(
    post: Any, signed: Any, topics: Any, sink: Any, body: str
) -> None:
    # given a signed body of a known type whose data the typed models reject
    status, answer_body, _ = post(signed(body))
    # then it is published to its type's topic, verbatim, with no invalid_reason: subscribers validate
    assert (status, answer_body["status"]) == (200, "published")
    [delivery] = sink.drain()
    event_type = json.loads(body)["type"]
    assert delivery.topic_arn == topics.by_type[event_type]
    assert delivery.body == body
    assert "invalid_reason" not in delivery.attributes


def test_handle_verified_empty_body_is_a_400_and_nothing_is_stored(
    post: Any, signed: Any, nothing_happened: Any
) -> None:
    # SNS refuses an empty message, so a retry could never succeed: refuse it, claim nothing
    status, answer_body, _ = post(signed(""))
    assert (status, answer_body) == (400, {"error": "bad_request", "reason": "empty_body"})
    nothing_happened()


def test_handle_deeply_nested_body_is_published_to_the_fallback(post: Any, signed: Any, topics: Any, sink: Any) -> None:
    body = '{"type":"user.created","data":' + "[" * 100_000 + "]" * 100_000 + "}"
    status, _, _ = post(signed(body))
    assert status == 200
    [delivery] = sink.drain()
    assert (delivery.topic_arn, delivery.attributes["invalid_reason"]) == (topics.fallback, "not_json")


def test_handle_duplicate_is_acknowledged_and_not_published_again(
    post: Any, signed: Any, example_bodies: dict[str, str], sink: Any
) -> None:
    request = signed(example_bodies["user.deleted"])
    assert post(request)[0] == 200
    status, body, _ = post(request)
    assert (status, body) == (200, {"status": "duplicate", "event_id": request.event_id})
    assert len(sink.drain()) == 1


def test_handle_duplicate_with_another_body_keeps_the_first(
    post: Any, signed: Any, example_bodies: dict[str, str], sink: Any, stored_items: Any
) -> None:
    first = signed(example_bodies["team.created"])
    post(first)
    second = signed(example_bodies["team.updated"], msg_id=first.event_id)
    status, body, _ = post(second)
    assert (status, body["status"]) == (200, "duplicate")
    assert [d.body for d in sink.drain()] == [example_bodies["team.created"]]
    assert stored_body(plain_item(stored_items()[0])) == example_bodies["team.created"].encode()


def test_handle_in_progress_is_409_with_retry_after(
    post: Any, signed: Any, dynamodb: Any, settings: Any, sink: Any, stored_items: Any
) -> None:
    # given another invocation holds a live claim on the id
    request = signed(BODY)
    EventStore(dynamodb, settings.table_name).claim(
        request.event_id, event_type="team.deleted", body=BODY, body_sha256="x", event_timestamp="1"
    )
    before = stored_items()
    # then this delivery is told to retry, and changes nothing
    status, body, headers = post(request)
    assert (status, body) == (409, {"error": "in_progress"})
    assert headers["retry-after"] == "5"
    assert sink.drain() == []
    assert stored_items() == before


# --- rejections: nothing stored, nothing published ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            lambda r: {**r.headers, "svix-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
            "no_matching_signature",
        ),
        (lambda r: {k: v for k, v in r.headers.items() if k != "svix-signature"}, "missing_headers"),
        (lambda r: {k: v for k, v in r.headers.items() if k != "svix-id"}, "missing_headers"),
        (lambda r: {**r.headers, "svix-timestamp": ""}, "missing_headers"),
        (lambda r: {**r.headers, "svix-timestamp": "yesterday"}, "invalid_timestamp"),
        (lambda r: {**r.headers, "svix-signature": "v1a," + r.headers["svix-signature"][3:]}, "no_matching_signature"),
        (lambda r: {**r.headers, "svix-signature": "v1"}, "malformed_signature"),
        (lambda r: {**r.headers, "svix-signature": "v1,abcde"}, "malformed_signature"),
        (lambda r: {**r.headers, "svix-id": r.headers["svix-id"] + "x"}, "no_matching_signature"),
        (lambda r: {}, "missing_headers"),
    ],
)
def test_handle_bad_signature_is_401_with_reason(
    post: Any, signed: Any, nothing_happened: Any, tamper: Callable[[Any], dict[str, str]], reason: str
) -> None:
    request = signed(BODY)
    event = request.apigw_event()
    event["headers"] = {"content-type": "application/json", **tamper(request)}
    status, body, _ = post(event)
    assert (status, body) == (401, {"error": "invalid_signature", "reason": reason})
    nothing_happened()


def test_handle_tampered_body_is_401(post: Any, signed: Any, nothing_happened: Any) -> None:
    event = signed(BODY).apigw_event()
    event["body"] = BODY.replace("ad96", "ad97")
    status, body, _ = post(event)
    assert (status, body) == (401, {"error": "invalid_signature", "reason": "no_matching_signature"})
    nothing_happened()


@pytest.mark.parametrize(("offset", "reason"), [(-400, "timestamp_too_old"), (400, "timestamp_too_new")])
def test_handle_stale_or_future_timestamp_is_401(
    post: Any, signed: Any, nothing_happened: Any, offset: int, reason: str
) -> None:
    status, body, _ = post(signed(BODY, timestamp=int(time.time()) + offset))
    assert (status, body["reason"]) == (401, reason)
    nothing_happened()


def test_handle_wrong_secret_is_401(post: Any, signed: Any, nothing_happened: Any) -> None:
    status, body, _ = post(signed(BODY, secret=new_secret()))
    assert (status, body["reason"]) == (401, "no_matching_signature")
    nothing_happened()


def test_handle_body_not_utf8_is_401(post: Any, signed: Any, nothing_happened: Any) -> None:
    request = signed(BODY)
    event = request.apigw_event(force_base64=True)
    event["body"] = base64.b64encode(b"\xff" + request.body).decode()
    status, body, _ = post(event)
    assert (status, body["reason"]) == (401, "body_not_utf8")
    nothing_happened()


def test_handle_body_over_256_kib_is_413(post: Any, signed: Any, nothing_happened: Any) -> None:
    body = '{"type":"stack.test","data":{"message":"' + "x" * SNS_MAX_MESSAGE_BYTES + '"}}'
    status, answer_body, _ = post(signed(body))
    assert (status, answer_body) == (413, {"error": "payload_too_large", "limit_bytes": SNS_MAX_MESSAGE_BYTES})
    nothing_happened()


def test_handle_body_over_256_kib_is_413_before_verification(post: Any, signed: Any, nothing_happened: Any) -> None:
    # an unsigned oversized body costs no HMAC and no secret read
    request = signed("x" * (SNS_MAX_MESSAGE_BYTES + 1))
    event = request.apigw_event()
    event["headers"] = {"content-type": "application/json"}
    assert post(event)[0] == 413
    nothing_happened()


def sized_body(total: int, msg_id: str, timestamp: int) -> str:
    """A stack.test body whose SNS message size (body + attributes) is exactly ``total``."""
    template = '{"type":"stack.test","data":{"message":"%s"}}'
    # the id's creation time is an attribute too, when it has one
    created_at = event_created_at_ms(msg_id, timestamp * 1000)
    attributes = message_attributes(parse_event(template % "x"), msg_id, str(timestamp), event_created_at=created_at)
    overhead = message_size(b"", attributes)
    padding = total - overhead - len(template % "")
    body = template % ("x" * padding)
    attributes = message_attributes(parse_event(body), msg_id, str(timestamp), event_created_at=created_at)
    assert message_size(body.encode(), attributes) == total
    return body


def test_handle_body_that_fits_alone_but_not_with_its_attributes_is_413(
    post: Any, signed: Any, nothing_happened: Any
) -> None:
    timestamp, msg_id = int(time.time()), "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u"
    body = sized_body(SNS_MAX_MESSAGE_BYTES + 1, msg_id, timestamp)
    assert len(body) < SNS_MAX_MESSAGE_BYTES
    status, answer_body, _ = post(signed(body, msg_id=msg_id, timestamp=timestamp))
    assert (status, answer_body["error"]) == (413, "payload_too_large")
    nothing_happened()


def test_handle_body_exactly_at_the_limit_with_its_attributes_is_published(post: Any, signed: Any, sink: Any) -> None:
    timestamp, msg_id = int(time.time()), "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u"
    body = sized_body(SNS_MAX_MESSAGE_BYTES, msg_id, timestamp)
    status, _, _ = post(signed(body, msg_id=msg_id, timestamp=timestamp))
    assert status == 200
    assert [d.body for d in sink.drain()] == [body]


@pytest.mark.parametrize("msg_id", ["msg 1", "msg/../1", "msg_1\n", "msg_é", "m" * 257, "msg_1;drop"])
def test_handle_unsafe_svix_id_is_400(post: Any, signed: Any, nothing_happened: Any, msg_id: str) -> None:
    # given a correctly signed delivery whose id cannot be a key or an attribute
    status, body, _ = post(signed(BODY, msg_id=msg_id))
    assert (status, body) == (400, {"error": "bad_request", "reason": "invalid_event_id"})
    nothing_happened()


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_handle_other_method_is_405(post: Any, signed: Any, nothing_happened: Any, method: str) -> None:
    status, body, _ = post(signed(BODY), method=method)
    assert (status, body) == (405, {"error": "bad_request", "reason": "method_not_allowed"})
    nothing_happened()


def test_handle_invalid_base64_is_400(post: Any, signed: Any, nothing_happened: Any) -> None:
    event = signed(BODY).apigw_event(force_base64=True)
    event["body"] = "***not base64***"
    status, body, _ = post(event)
    assert (status, body) == (400, {"error": "bad_request", "reason": "body_not_base64"})
    nothing_happened()


@pytest.mark.parametrize("value", ["REPLACE_ME", "whsec_", "  "])
def test_handle_secret_placeholder_is_503(
    post: Any, signed: Any, secretsmanager: Any, secret_arn: str, nothing_happened: Any, value: str
) -> None:
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=value)
    status, body, headers = post(signed(BODY))
    assert (status, body) == (503, {"error": "secret_not_configured"})
    assert headers["retry-after"] == "5"
    nothing_happened()


def test_handle_missing_secret_is_503(
    signed: Any, secretsmanager: Any, secret_arn: str, service: IngestService, nothing_happened: Any
) -> None:
    secretsmanager.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
    status, body, _ = answer(handle_http_event(service, signed(BODY).apigw_event()))
    assert (status, body) == (503, {"error": "secret_not_configured"})
    nothing_happened()


@pytest.mark.parametrize(
    ("service_id", "operation", "service_name"),
    [
        ("dynamodb", "UpdateItem", "dynamodb"),
        ("secrets-manager", "GetSecretValue", "secretsmanager"),
    ],
)
@pytest.mark.parametrize("kind", ["client-error", "unreachable"])
def test_handle_dependency_failure_is_503(
    post: Any,
    signed: Any,
    dynamodb: Any,
    secretsmanager: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    nothing_happened: Any,
    service_id: str,
    operation: str,
    service_name: str,
    kind: str,
) -> None:
    client = {"dynamodb": dynamodb, "secrets-manager": secretsmanager}[service_id]
    error = (
        make_client_error("InternalServerError", operation)
        if kind == "client-error"
        else EndpointConnectionError(endpoint_url=f"https://{service_id}")
    )
    fault = inject_fault(client, service_id, operation, error)
    status, body, headers = post(signed(BODY))
    assert (status, body) == (503, {"error": "dependency_unavailable", "service": service_name})
    assert headers["retry-after"] == "5"
    assert fault.raised == 1
    nothing_happened()


def test_handle_unexpected_exception_is_500(
    post: Any, signed: Any, secretsmanager: Any, inject_fault: Callable[..., Any], nothing_happened: Any
) -> None:
    # given a failure of a kind no handler expects (a bug), raised from inside the secret source's real call
    inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", RuntimeError("boom"))
    status, body, headers = post(signed(BODY))
    assert (status, body) == (500, {"error": "internal_error"})
    assert "retry-after" not in headers
    nothing_happened()


# --- publish and mark failures --------------------------------------------------------------------------------------


def is_mark_published(params: dict[str, Any]) -> bool:
    return b":published" in params["body"]


def test_handle_mark_failure_after_publish_still_answers_200_published_once(
    post: Any,
    signed: Any,
    dynamodb: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    sink: Any,
    stored_items: Any,
) -> None:
    # given DynamoDB fails only the "mark published" update
    fault = inject_fault(
        dynamodb, "dynamodb", "UpdateItem", make_client_error("InternalServerError", "UpdateItem"), is_mark_published
    )
    request = signed(BODY)
    status, body, _ = post(request)
    # then the sender is told it worked (a 5xx would make it retry and publish twice) and it was published once
    assert (status, body["status"]) == (200, "published")
    assert fault.raised == 1
    assert [d.body for d in sink.drain()] == [BODY]
    # and the record stays claimed (its lease still blocks a redelivery)
    [item] = [plain_item(i) for i in stored_items()]
    assert item["status"] == "claimed"
    assert post(request)[0] == 409
    assert sink.drain() == []


@pytest.fixture
def outcome_documents() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the logger writes (its handler holds the stdout it saw at import), parsed."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    yield lambda: [json.loads(line) for line in stream.getvalue().split("\n") if line]
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.mark.parametrize("mark_failure", ["client-error", "claim-taken-over"])
def test_handle_publication_not_recorded_has_its_own_metric_and_still_answers_200(
    post: Any,
    signed: Any,
    dynamodb: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    sink: Any,
    outcome_documents: Callable[[], list[dict[str, Any]]],
    mark_failure: str,
) -> None:
    # given the "mark published" update fails (DynamoDB error), or finds the claim taken (condition fails)
    error = (
        make_client_error("InternalServerError", "UpdateItem")
        if mark_failure == "client-error"
        else make_client_error("ConditionalCheckFailedException", "UpdateItem")
    )
    inject_fault(dynamodb, "dynamodb", "UpdateItem", error, is_mark_published)
    # when a new event is delivered, then one that is marked normally
    status, body, _ = post(signed(BODY))
    assert (status, body["status"]) == (200, "published")
    # then its outcome line counts it as published and as not recorded, at warning level
    [line] = [d for d in outcome_documents() if "_aws" in d]
    assert line["outcome"] == "published"
    assert line["recorded"] is False
    assert line["level"] == "WARNING"
    assert (line["Published"], line["PublishedNotRecorded"]) == (1, 1)
    names = {m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert "PublishedNotRecorded" in names
    assert len(sink.drain()) == 1


def test_handle_publication_recorded_has_no_not_recorded_metric(
    post: Any, signed: Any, sink: Any, outcome_documents: Callable[[], list[dict[str, Any]]]
) -> None:
    assert post(signed(BODY))[0] == 200
    [line] = [d for d in outcome_documents() if "_aws" in d]
    assert line["recorded"] is True
    assert "PublishedNotRecorded" not in line


def test_handle_publish_refused_releases_the_claim_and_answers_503(
    post: Any,
    signed: Any,
    sns: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    sink: Any,
    stored_items: Any,
) -> None:
    fault = inject_fault(sns, "sns", "Publish", make_client_error("Throttled", "Publish"))
    request = signed(BODY)
    status, body, headers = post(request)
    assert (status, body) == (503, {"error": "dependency_unavailable", "service": "sns"})
    assert headers["retry-after"] == "5"
    assert sink.drain() == []
    # the record is kept (the verified body is stored) but released: lease 0, no token
    [item] = [plain_item(i) for i in stored_items()]
    assert (item["status"], item["lease_expires_at"]) == ("claimed", 0)
    assert "claim_token" not in item
    assert stored_body(item) == BODY.encode()
    # when the sender retries at once, with SNS back, it is published exactly once
    fault.active = False
    status, body, _ = post(request)
    assert (status, body["status"]) == (200, "published")
    assert [d.body for d in sink.drain()] == [BODY]
    [item] = [plain_item(i) for i in stored_items()]
    assert (item["status"], item["attempts"]) == ("published", 2)


def test_handle_publish_unreachable_is_503(
    post: Any, signed: Any, sns: Any, inject_fault: Callable[..., Any], sink: Any
) -> None:
    inject_fault(sns, "sns", "Publish", EndpointConnectionError(endpoint_url="https://sns"))
    assert post(signed(BODY))[:2] == (503, {"error": "dependency_unavailable", "service": "sns"})
    assert sink.drain() == []


# --- secret rotation through the ingest path ------------------------------------------------------------------------


@pytest.fixture
def rotating_service(
    settings: Any, dynamodb: Any, sns: Any, secretsmanager: Any, clock: Any, sink: Any
) -> IngestService:
    """The real service, wired by hand so that the secret source runs on the test's clock."""
    return IngestService(
        secrets=WebhookSecretSource(
            secretsmanager, settings.secret_arn, max_age_seconds=300, refresh_interval_seconds=10, clock=clock
        ),
        store=EventStore(dynamodb, settings.table_name),
        publisher=SnsPublisher(sns),
        router=TopicRouter(settings.topic_arns, settings.fallback_topic_arn),
    )


def test_ingest_picks_up_a_rotated_secret_after_a_failed_verification(
    rotating_service: IngestService,
    signed: Any,
    secretsmanager: Any,
    secret_arn: str,
    clock: Any,
    count_calls: Callable[..., Any],
    sink: Any,
) -> None:
    reads = count_calls(secretsmanager, "secrets-manager", "GetSecretValue")
    assert answer(handle_http_event(rotating_service, signed(BODY).apigw_event()))[0] == 200
    # given the endpoint secret was rotated in Stack and in Secrets Manager
    rotated = new_secret()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=rotated)
    # when deliveries signed with the new secret flood in within the refresh interval: 401, no extra reads
    for _ in range(100):
        clock.advance(0.05)
        event = signed(BODY, secret=rotated).apigw_event()
        assert answer(handle_http_event(rotating_service, event))[0] == 401
    assert reads.count == 1
    # then once the interval has passed, the next one refetches and is accepted
    clock.advance(10)
    assert answer(handle_http_event(rotating_service, signed(BODY, secret=rotated).apigw_event()))[0] == 200
    assert reads.count == 2
    assert len(sink.drain()) == 2


def test_ingest_stale_or_missing_headers_never_read_the_secret_again(
    rotating_service: IngestService,
    signed: Any,
    secretsmanager: Any,
    clock: Any,
    count_calls: Callable[..., Any],
) -> None:
    reads = count_calls(secretsmanager, "secrets-manager", "GetSecretValue")
    handle_http_event(rotating_service, signed(BODY).apigw_event())
    # failures that no secret could fix (stale timestamp, missing headers) do not trigger a refresh
    clock.advance(60)
    stale = signed(BODY, timestamp=int(time.time()) - 3600).apigw_event()
    assert answer(handle_http_event(rotating_service, stale))[1]["reason"] == "timestamp_too_old"
    assert answer(handle_http_event(rotating_service, {"body": BODY, "headers": {}}))[0] == 401
    assert reads.count == 1


def test_handle_publishes_the_canonical_timestamp_the_signature_covered(
    post: Any, signed: Any, example_bodies: dict[str, str], sink: Any, stored_items: Any
) -> None:
    # given a valid delivery whose timestamp header is spelled oddly (svix verifies whole seconds of float(header))
    request = signed(example_bodies["team.deleted"])
    canonical = request.headers["svix-timestamp"]
    request.headers["svix-timestamp"] = f" {canonical}.75\n"
    # when it is handled
    status, _, _ = post(request)
    # then the attribute and the record carry the whole seconds, not the header's spelling
    assert status == 200
    [delivery] = sink.drain()
    assert delivery.attributes["event_timestamp"] == canonical
    [item] = [plain_item(i) for i in stored_items()]
    assert item["event_timestamp"] == canonical
