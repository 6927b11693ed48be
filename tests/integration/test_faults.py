"""Faults around real AWS calls: the sender gets a retryable answer, and its retries publish exactly once."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import event_body, resign_event

from stack_webhook_fanout.event_store import Claim, EventStore

from .support import header, signed_event_file, wait_past

if TYPE_CHECKING:
    from types import ModuleType

    from .support import Deployment

pytestmark = pytest.mark.integration

FAULT_ID = "integration-test-fault"


def _connection_error(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/unreachable")


def _redelivery(event: dict[str, Any], secret: str) -> dict[str, Any]:
    """Svix's retry of ``event``: the same svix-id, signed again at a later time."""
    return resign_event(event, secret, keep_id=True, timestamp=int(time.time()) + 1)


def _dynamodb_events(handler: ModuleType) -> Any:
    return handler.SERVICE._store._client.meta.events


def _sns_events(handler: ModuleType) -> Any:
    return handler.SERVICE._publisher._client.meta.events


def test_dynamodb_failure_answers_503_and_a_retry_publishes_once(deployment: Deployment) -> None:
    # given: DynamoDB unreachable from this execution environment
    secret = deployment.stack.secret_value
    event = signed_event_file("user.created", secret)
    handler = deployment.load_handler()
    _dynamodb_events(handler).register("before-call.dynamodb.UpdateItem", _connection_error, unique_id=FAULT_ID)

    # when
    status, answer = deployment.invoke(handler, event)

    # then: retryable, nothing stored, nothing published
    assert status == 503, answer
    assert answer == {"error": "dependency_unavailable", "service": "dynamodb"}
    assert deployment.scan() == []
    assert deployment.delivered() == []

    # when: DynamoDB is back and Svix retries
    _dynamodb_events(handler).unregister("before-call.dynamodb.UpdateItem", unique_id=FAULT_ID)
    status, answer = deployment.invoke(handler, _redelivery(event, secret))

    # then: published exactly once
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["user.created"]


def test_dynamodb_on_a_closed_port_answers_503_and_a_retry_publishes_once(deployment: Deployment) -> None:
    # given: an execution environment whose DynamoDB endpoint refuses connections
    secret = deployment.stack.secret_value
    event = signed_event_file("team.created", secret)
    broken = deployment.load_handler(AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{free_port()}")

    # when
    status, answer = deployment.invoke(broken, event)

    # then
    assert status == 503, answer
    assert answer["service"] == "dynamodb"
    assert deployment.scan() == []
    assert deployment.delivered() == []

    # when: the retry reaches a healthy environment
    deployment.monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    status, answer = deployment.invoke(deployment.load_handler(), _redelivery(event, secret))

    # then
    assert status == 200, answer
    assert [name for name, _ in deployment.delivered()] == ["team.created"]


def test_sns_failure_answers_503_releases_the_claim_and_a_retry_publishes_once(deployment: Deployment) -> None:
    # given: SNS failing
    secret = deployment.stack.secret_value
    event = signed_event_file("team_membership.created", secret)
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()
    _sns_events(handler).register("before-call.sns.Publish", _connection_error, unique_id=FAULT_ID)

    # when
    status, answer = deployment.invoke(handler, event)

    # then: retryable; the event is stored but its claim given up, so the retry need not wait for the lease
    assert status == 503, answer
    assert answer == {"error": "dependency_unavailable", "service": "sns"}
    assert deployment.delivered() == []
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert record["lease_expires_at"] == 0
    assert "claim_token" not in record

    # when: SNS is back and Svix retries at once
    _sns_events(handler).unregister("before-call.sns.Publish", unique_id=FAULT_ID)
    status, answer = deployment.invoke(handler, _redelivery(event, secret))

    # then: published exactly once, on the second claim
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["team_membership.created"]
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "published"
    assert record["attempts"] == 2


def test_mark_published_failure_still_answers_200_with_one_publication(deployment: Deployment) -> None:
    # given: DynamoDB fails only the update that records the publication
    secret = deployment.stack.secret_value
    event = signed_event_file("user.deleted", secret)
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()
    failed_marks = []

    def fail_the_mark(params: dict[str, Any], **_: Any) -> None:
        if {"S": "published"} in params.get("ExpressionAttributeValues", {}).values():
            failed_marks.append(params["Key"])
            _connection_error()

    _dynamodb_events(handler).register("before-parameter-build.dynamodb.UpdateItem", fail_the_mark, unique_id=FAULT_ID)

    # when
    status, answer = deployment.invoke(handler, event)

    # then: the message went out, so the sender is told so (a 5xx would make it publish again)
    assert failed_marks == [{"event_id": {"S": event_id}}]
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["user.deleted"]
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"

    # when: the sender redelivers anyway while the claim's lease is live
    _dynamodb_events(handler).unregister("before-parameter-build.dynamodb.UpdateItem", unique_id=FAULT_ID)
    status, answer = deployment.invoke(deployment.load_handler(), _redelivery(event, secret))

    # then: not published a second time
    assert status == 409, answer
    assert deployment.delivered() == []


def _crashed_claim(deployment: Deployment, event: dict[str, Any], lease_seconds: int) -> Claim:
    """What an invocation that died after its claim and before publishing leaves behind."""
    body = event_body(event)
    store = EventStore(deployment.stack.client("dynamodb"), deployment.stack.table_name, lease_seconds=lease_seconds)
    claim = store.claim(
        header(event, "svix-id"),
        event_type="team.updated",
        body=body.decode(),
        body_sha256=hashlib.sha256(body).hexdigest(),
        event_timestamp=header(event, "svix-timestamp"),
    )
    assert isinstance(claim, Claim)
    return claim


def test_retry_during_a_crashed_claims_lease_answers_409(deployment: Deployment) -> None:
    # given: a claim left behind by a crashed invocation, its lease (the default 15 s) still running
    secret = deployment.stack.secret_value
    event = signed_event_file("team.updated", secret)
    _crashed_claim(deployment, event, lease_seconds=15)

    # when
    status, answer = deployment.invoke(deployment.load_handler(), _redelivery(event, secret))

    # then: retryable, nothing published yet
    assert status == 409, answer
    assert answer == {"error": "in_progress"}
    assert deployment.delivered() == []


def test_retry_after_a_crashed_claims_lease_publishes_once(deployment: Deployment) -> None:
    # given: a claim left behind by a crashed invocation with a 1 s lease, which has expired
    secret = deployment.stack.secret_value
    event = signed_event_file("team.updated", secret)
    event_id = header(event, "svix-id")
    _crashed_claim(deployment, event, lease_seconds=1)
    record = deployment.record(event_id)
    assert record is not None
    wait_past(record["lease_expires_at"])
    handler = deployment.load_handler(CLAIM_LEASE_SECONDS="1")

    # when
    status, answer = deployment.invoke(handler, _redelivery(event, secret))

    # then: this retry takes the claim over and publishes, exactly once
    assert status == 200, answer
    assert answer["status"] == "published"
    assert [name for name, _ in deployment.delivered()] == ["team.updated"]
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "published"
    assert record["attempts"] == 2

    # and a later redelivery is a duplicate
    status, answer = deployment.invoke(handler, _redelivery(event, secret))
    assert (status, answer["status"]) == (200, "duplicate")
    assert deployment.delivered() == []


def test_twenty_concurrent_deliveries_of_one_id_publish_once(deployment: Deployment) -> None:
    # given: 20 execution environments (Lambda runs one request per environment at a time) and one delivery
    event = signed_event_file("project_permission.created", deployment.stack.secret_value)
    handlers = [deployment.load_handler() for _ in range(20)]
    start = threading.Barrier(len(handlers))
    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def deliver(handler: ModuleType) -> None:
        start.wait()
        try:
            answer = deployment.invoke(handler, event)
        except BaseException as exc:  # surfaced below, with the thread's answer missing
            with lock:
                errors.append(exc)
            return
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver, args=(h,)) for h in handlers]

    # when: all at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one publication; every other delivery a duplicate or a retryable 409
    assert errors == []
    assert len(answers) == 20
    outcomes = sorted((status, answer.get("status") or answer.get("error")) for status, answer in answers)
    assert outcomes.count((200, "published")) == 1, outcomes
    assert set(outcomes) <= {(200, "published"), (200, "duplicate"), (409, "in_progress")}, outcomes
    assert [name for name, _ in deployment.delivered()] == ["project_permission.created"]
    record = deployment.record(header(event, "svix-id"))
    assert record is not None
    assert record["status"] == "published"
    assert record["attempts"] == 1
