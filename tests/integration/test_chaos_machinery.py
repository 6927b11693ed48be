"""The chaos tier's machinery without the deployment: the fault proxy's view of botocore's requests and its
actions (in front of the session's moto server), and the Svix-like sender's rule and schedule."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from stack_webhook_fanout_tools.devkit.fault_proxy import Action, Decision, FaultProxy, Operation, Step, classify
from stack_webhook_fanout_tools.devkit.signing import new_secret
from stack_webhook_fanout_tools.devkit.svix_sender import SVIX_SCHEDULE_SECONDS, Message, SvixSender

from stack_webhook_fanout.event_store import EventStore
from stack_webhook_fanout.publisher import SnsPublisher

pytestmark = pytest.mark.integration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def client(service: str, endpoint: str) -> Any:
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=1, connect_timeout=1)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def test_the_proxy_names_each_call_of_the_ingest_flow(proxy: FaultProxy) -> None:
    dynamodb, sns = client("dynamodb", proxy.endpoint), client("sns", proxy.endpoint)
    dynamodb.create_table(
        TableName="events",
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="t")["TopicArn"]
    store = EventStore(dynamodb, "events")
    # the product's own writes and publish, as the function makes them
    claim = store.claim("msg_1", event_type="user.created", body="{}", body_sha256="x", event_timestamp="1")
    assert not isinstance(claim, Exception)
    message_id = SnsPublisher(sns).publish(topic, "{}", {"event_id": {"DataType": "String", "StringValue": "msg_1"}})
    store.mark_published(claim, topic_arn=topic, message_id=message_id)  # type: ignore[arg-type]
    second = store.claim("msg_2", event_type="user.created", body="{}", body_sha256="x", event_timestamp="1")
    store.release(second)  # type: ignore[arg-type]

    seen = [(e.operation.step, e.operation.event_id) for e in proxy.exchanges]
    assert [s for s in seen if s[0] is not Step.OTHER] == [
        (Step.CLAIM, "msg_1"),
        (Step.PUBLISH, "msg_1"),
        (Step.MARK, "msg_1"),
        (Step.CLAIM, "msg_2"),
        (Step.RELEASE, "msg_2"),
    ]
    assert {e.upstream_status for e in proxy.exchanges} == {200}


def test_a_secret_read_is_named_too() -> None:
    operation = classify({"x-amz-target": "secretsmanager.GetSecretValue"}, b'{"SecretId": "s"}')
    assert operation == Operation("secretsmanager", "GetSecretValue", Step.SECRET, None)


def run_with(proxy: FaultProxy, action: Action, call: Callable[[], Any]) -> tuple[Any, list[Action]]:
    proxy.rule = lambda operation: Decision(action) if operation.step is not Step.OTHER else Decision()
    try:
        outcome: Any = call()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        outcome = exc
    return outcome, [e.action for e in proxy.exchanges if e.operation.step is not Step.OTHER]


def test_throttling_and_5xx_are_the_services_errors_that_botocore_retries(proxy: FaultProxy) -> None:
    sns = client("sns", proxy.endpoint)
    topic = sns.create_topic(Name="throttled")["TopicArn"]
    throttled, actions = run_with(proxy, Action.THROTTLE, lambda: sns.publish(TopicArn=topic, Message="m"))
    assert isinstance(throttled, botocore.exceptions.ClientError)
    assert throttled.response["Error"]["Code"] == "Throttling"
    assert actions == [Action.THROTTLE] * 3  # the first attempt and botocore's two retries
    dynamodb = client("dynamodb", proxy.endpoint)
    failed, _ = run_with(
        proxy,
        Action.ERROR_BEFORE,
        lambda: dynamodb.update_item(
            TableName="none", Key={"event_id": {"S": "e"}}, UpdateExpression="SET a = :a ADD attempts :one"
        ),
    )
    assert isinstance(failed, botocore.exceptions.ClientError)
    assert failed.response["Error"]["Code"] == "InternalServerError"
    assert failed.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_an_error_after_forwarding_means_the_call_happened(proxy: FaultProxy) -> None:
    sns = client("sns", proxy.endpoint)
    topic = sns.create_topic(Name="taken")["TopicArn"]
    outcome, actions = run_with(proxy, Action.ERROR_AFTER, lambda: sns.publish(TopicArn=topic, Message="m"))
    assert isinstance(outcome, botocore.exceptions.ClientError)
    assert actions == [Action.ERROR_AFTER] * 3
    # every attempt reached the emulator: three publications although the caller saw three 500s
    assert [e.upstream_status for e in proxy.exchanges if e.operation.step is Step.PUBLISH] == [200, 200, 200]


def test_a_held_request_gets_no_answer_until_the_caller_gives_up(proxy: FaultProxy) -> None:
    sns = client("sns", proxy.endpoint)
    topic = sns.create_topic(Name="held")["TopicArn"]
    started = time.monotonic()
    outcome, actions = run_with(proxy, Action.HANG_BEFORE, lambda: sns.publish(TopicArn=topic, Message="m"))
    assert isinstance(outcome, botocore.exceptions.ReadTimeoutError)
    assert actions == [Action.HANG_BEFORE] * 3
    assert time.monotonic() - started >= 3  # three read timeouts of 1 s
    assert all(e.upstream_status is None for e in proxy.exchanges if e.operation.step is Step.PUBLISH)


def test_an_interrupted_call_happened_and_its_callback_ran_before_the_connection_closed(proxy: FaultProxy) -> None:
    sns = client("sns", proxy.endpoint)
    topic = sns.create_topic(Name="interrupted")["TopicArn"]
    ran: list[float] = []
    proxy.rule = lambda op: (
        Decision(Action.INTERRUPT_AFTER, after_forward=lambda: ran.append(time.monotonic()))
        if op.step is Step.PUBLISH and not ran
        else Decision()
    )
    # the first attempt's connection closes unanswered; botocore retries (a second publication)
    sns.publish(TopicArn=topic, Message="m")
    assert len(ran) == 1
    publishes = [e for e in proxy.exchanges if e.operation.step is Step.PUBLISH]
    assert [(e.action, e.upstream_status) for e in publishes] == [(Action.INTERRUPT_AFTER, 200), (Action.FORWARD, 200)]


class _Scripted(BaseHTTPRequestHandler):
    """Answers each attempt of a message with the next status of its script (and records when it came)."""

    protocol_version = "HTTP/1.1"
    scripts: dict[str, list[int]] = {}  # noqa: RUF012 - set per test
    seen: list[tuple[str, float, str]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        msg_id = self.headers["svix-id"]
        _Scripted.seen.append((msg_id, time.monotonic(), self.headers["svix-signature"]))
        status = _Scripted.scripts[msg_id].pop(0) if _Scripted.scripts[msg_id] else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_sender_keeps_svixs_rule_and_schedule_compressed() -> None:
    # 5 s, 5 min, 30 min, 2 h ... between attempts, after the first at once; docs.svix.com/retries
    assert SVIX_SCHEDULE_SECONDS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    _Scripted.scripts = {"msg_ok": [], "msg_late": [500, 302, 409], "msg_never": [503] * 8}
    _Scripted.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stack"
        sender = SvixSender(url, new_secret(), compression=3000, workers=3)
        deliveries = sender.run([Message(m, b"{}") for m in _Scripted.scripts], spread_seconds=0)
    finally:
        server.shutdown()
        server.server_close()
    ok, late, never = deliveries
    assert (len(ok.attempts), ok.succeeded) == (1, True)
    # a 3xx is a failure as much as a 5xx or a 409
    assert [a.status for a in late.attempts] == [500, 302, 409, 200]
    assert late.succeeded
    assert [a.status for a in never.attempts] == [503] * 8
    assert not never.succeeded
    # the waits between attempts follow the schedule, divided by the compression
    times = [t for m, t, _ in _Scripted.seen if m == "msg_late"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[1] >= 5 / 3000
    assert gaps[2] >= 300 / 3000
    # each attempt is signed anew, with the same id
    signatures = [s for m, _, s in _Scripted.seen if m == "msg_late"]
    assert all(s.startswith("v1,") for s in signatures)
    assert json.loads(json.dumps([d.message.msg_id for d in deliveries])) == list(_Scripted.scripts)
