"""Faults around the function's real AWS calls, each followed by retries as Svix makes them.

For every fault: the answer the sender gets, and after its retries the EXACT number of publications (every topic
has a queue subscribed, so draining all queues counts every message). Svix retries a non-2xx answer with the
same svix-id and body, signed again later (at once, 5 s, 5 min, 30 min, ...): here the time between retries is
shortened by one- or two-second claim leases and cache ages, never by long sleeps. The README's Guarantees section
has the resulting table.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import event_body

from .support import (
    FUNCTION_ERROR_STATUS,
    AcceptedThenServerError,
    CallCounter,
    DynamoDBThrottle,
    FirstPublishAttemptUnconfirmed,
    SnsThrottle,
    client_error,
    client_events,
    client_of,
    connect_timeout,
    connection_refused,
    header,
    invoke,
    killed,
    on_update,
    outcome,
    read_timeout,
    redeliver,
    wait_past,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from stack_webhook_fanout_tools.devkit.emulator import QueueMessage

    from .support import Deployment

pytestmark = pytest.mark.integration

FAULT = "reliability-fault"
#: A lease short enough to wait out, long enough that a retry sent at once surely finds it live.
SHORT_LEASE = "2"


def _published(deployment: Deployment) -> list[tuple[str, QueueMessage]]:
    return deployment.publications()


def _assert_published_once(deployment: Deployment, event: dict[str, Any], queue: str) -> None:
    messages = _published(deployment)
    assert [name for name, _ in messages] == [queue]
    message = messages[0][1]
    assert message.body.encode() == event_body(event)
    assert message.attributes["event_id"] == header(event, "svix-id")


def _assert_nothing_stored_or_published(deployment: Deployment) -> None:
    assert deployment.scan() == []
    assert _published(deployment) == []


# --- DynamoDB ---------------------------------------------------------------------------------------------------


def test_dynamodb_unavailable_answers_503_until_it_is_back_then_publishes_once(deployment: Deployment) -> None:
    # given: DynamoDB unreachable from the function
    event = deployment.signed("user.created")
    handler = deployment.load_handler()
    client_events(handler, "dynamodb").register("before-call.dynamodb.UpdateItem", connection_refused, FAULT)

    # when: the first delivery and Svix's immediate retry
    first = invoke(handler, event)
    second = invoke(handler, redeliver(event, deployment.secret))

    # then: both retryable, nothing stored, nothing published
    assert first == (503, {"error": "dependency_unavailable", "service": "dynamodb"})
    assert second == first
    _assert_nothing_stored_or_published(deployment)

    # when: DynamoDB is back for the next retries
    client_events(handler, "dynamodb").unregister("before-call.dynamodb.UpdateItem", unique_id=FAULT)
    third = invoke(handler, redeliver(event, deployment.secret))
    fourth = invoke(handler, redeliver(event, deployment.secret))

    # then: published exactly once, the later retry acknowledged as a duplicate
    assert (third[0], outcome(third[1])) == (200, "published")
    assert (fourth[0], outcome(fourth[1])) == (200, "duplicate")
    _assert_published_once(deployment, event, "user.created")


def test_dynamodb_on_a_closed_port_answers_503_and_a_healthy_environment_publishes_once(
    deployment: Deployment,
) -> None:
    # given: an execution environment whose DynamoDB endpoint refuses connections (botocore retries it itself)
    event = deployment.signed("team.created")
    broken = deployment.load_handler(AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{free_port()}")

    # when
    status, answer = invoke(broken, event)

    # then
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "dynamodb"})
    _assert_nothing_stored_or_published(deployment)

    # when: the retry lands in another, healthy environment
    deployment.monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    status, answer = invoke(deployment.load_handler(), redeliver(event, deployment.secret))

    # then
    assert (status, outcome(answer)) == (200, "published")
    _assert_published_once(deployment, event, "team.created")


def test_dynamodb_throttled_answers_503_after_botocores_retries_then_publishes_once(deployment: Deployment) -> None:
    # given: DynamoDB answering every request with ProvisionedThroughputExceededException (HTTP 400), which
    # botocore parses and retries by its own policy before giving up
    event = deployment.signed("team.updated")
    handler = deployment.load_handler()
    throttle = DynamoDBThrottle()
    client_events(handler, "dynamodb").register("before-send.dynamodb.UpdateItem", throttle, FAULT)
    # botocore normalises the client's retry settings to the total number of attempts per call
    attempts_per_call = client_of(handler, "dynamodb").meta.config.retries["total_max_attempts"]

    # when
    status, answer = invoke(handler, event)

    # then: the claim was tried as often as the client's retry policy allows, then the sender is told to retry
    assert throttle.sends == attempts_per_call > 1
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "dynamodb"})
    _assert_nothing_stored_or_published(deployment)

    # when: the throttling has passed by Svix's next retry
    client_events(handler, "dynamodb").unregister("before-send.dynamodb.UpdateItem", unique_id=FAULT)
    status, answer = invoke(handler, redeliver(event, deployment.secret))

    # then
    assert (status, outcome(answer)) == (200, "published")
    assert throttle.sends == attempts_per_call
    _assert_published_once(deployment, event, "team.updated")


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_dynamodb_throttling_errors_answer_503_and_a_retry_publishes_once(deployment: Deployment, code: str) -> None:
    # given: the claim failing with a throttling error once botocore's own retries are spent
    event = deployment.signed("team.deleted")
    handler = deployment.load_handler()
    client_events(handler, "dynamodb").register(
        "before-call.dynamodb.UpdateItem", client_error(code, "UpdateItem"), FAULT
    )

    # when
    status, answer = invoke(handler, event)

    # then
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "dynamodb"})
    _assert_nothing_stored_or_published(deployment)

    # when: Svix retries after the throttling passed
    client_events(handler, "dynamodb").unregister("before-call.dynamodb.UpdateItem", unique_id=FAULT)
    status, answer = invoke(handler, redeliver(event, deployment.secret))

    # then
    assert (status, outcome(answer)) == (200, "published")
    _assert_published_once(deployment, event, "team.deleted")


def test_claim_written_but_its_answer_lost_blocks_retries_until_the_lease_then_publishes_once(
    deployment: Deployment,
) -> None:
    # given: the claim reaches DynamoDB and is written, but its answer never comes back (a read timeout)
    event = deployment.signed("team_permission.created")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    client_events(handler, "dynamodb").register("after-call.dynamodb.UpdateItem", read_timeout, FAULT)

    # when
    status, answer = invoke(handler, event)

    # then: retryable; the record exists, claimed by nobody alive, nothing published
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "dynamodb"})
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert _published(deployment) == []
    client_events(handler, "dynamodb").unregister("after-call.dynamodb.UpdateItem", unique_id=FAULT)

    # when: Svix retries at once, inside the orphaned claim's lease
    assert time.time() < record["lease_expires_at"], "the machine took longer than the lease to retry"
    status, answer = invoke(handler, redeliver(event, deployment.secret))

    # then: retryable 409, still nothing published
    assert (status, outcome(answer)) == (409, "in_progress")
    assert _published(deployment) == []

    # when: Svix's next retry comes after the lease
    wait_past(record["lease_expires_at"])
    status, answer = invoke(handler, redeliver(event, deployment.secret))

    # then: taken over and published exactly once
    assert (status, outcome(answer)) == (200, "published")
    _assert_published_once(deployment, event, "team_permission.created")
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("published", 2)


# --- SNS --------------------------------------------------------------------------------------------------------


SNS_FAULTS: dict[str, Callable[..., None]] = {
    "connection_refused": connection_refused,
    # a timeout before the request is sent; a read timeout means it was sent (test_sns_answer_lost_*)
    "connect_timeout": connect_timeout,
    "throttled": client_error("Throttled", "Publish"),
    "kms_throttled": client_error("KMSThrottling", "Publish"),
}


@pytest.mark.parametrize("fault", sorted(SNS_FAULTS))
def test_sns_publish_refused_answers_503_releases_the_claim_and_a_retry_publishes_once(
    deployment: Deployment, fault: str
) -> None:
    # given: SNS failing before the message is accepted
    event = deployment.signed("team_membership.created")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()
    client_events(handler, "sns").register("before-call.sns.Publish", SNS_FAULTS[fault], FAULT)

    # when: the delivery and Svix's immediate retry
    first = invoke(handler, event)
    second = invoke(handler, redeliver(event, deployment.secret))

    # then: both retryable; the event is stored but its claim given up, so retries need not wait for a lease
    assert first == (503, {"error": "dependency_unavailable", "service": "sns"})
    assert second == first
    assert _published(deployment) == []
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["lease_expires_at"], record["attempts"]) == ("claimed", 0, 2)
    assert "claim_token" not in record

    # when: SNS is back by the next retry
    client_events(handler, "sns").unregister("before-call.sns.Publish", unique_id=FAULT)
    third = invoke(handler, redeliver(event, deployment.secret))

    # then: published exactly once, on the third claim
    assert (third[0], outcome(third[1])) == (200, "published")
    _assert_published_once(deployment, event, "team_membership.created")
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("published", 3)


def test_sns_on_a_closed_port_answers_503_and_a_healthy_environment_publishes_once(deployment: Deployment) -> None:
    # given: an environment whose SNS endpoint refuses connections (botocore retries it itself, then gives up)
    event = deployment.signed("project_permission.deleted")
    broken = deployment.load_handler(AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{free_port()}")

    # when
    status, answer = invoke(broken, event)

    # then
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "sns"})
    assert _published(deployment) == []

    # when: the retry reaches a healthy environment
    deployment.monkeypatch.delenv("AWS_ENDPOINT_URL_SNS")
    status, answer = invoke(deployment.load_handler(), redeliver(event, deployment.secret))

    # then
    assert (status, outcome(answer)) == (200, "published")
    _assert_published_once(deployment, event, "project_permission.deleted")


def test_sns_and_the_release_failing_answer_503_and_the_lease_delays_the_single_publication(
    deployment: Deployment,
) -> None:
    # given: SNS failing, and DynamoDB failing the claim's release too
    event = deployment.signed("team_permission.deleted")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    client_events(handler, "sns").register("before-call.sns.Publish", connection_refused, FAULT)
    client_events(handler, "dynamodb").register(
        "before-parameter-build.dynamodb.UpdateItem", on_update("release", connection_refused), FAULT
    )

    # when
    status, answer = invoke(handler, event)

    # then: retryable; the claim stays held until its lease expires
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "sns"})
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert "claim_token" in record
    client_events(handler, "sns").unregister("before-call.sns.Publish", unique_id=FAULT)
    client_events(handler, "dynamodb").unregister("before-parameter-build.dynamodb.UpdateItem", unique_id=FAULT)

    # when: Svix retries at once, then after the lease
    assert time.time() < record["lease_expires_at"], "the machine took longer than the lease to retry"
    early = invoke(handler, redeliver(event, deployment.secret))
    wait_past(record["lease_expires_at"])
    late = invoke(handler, redeliver(event, deployment.secret))

    # then
    assert (early[0], outcome(early[1])) == (409, "in_progress")
    assert (late[0], outcome(late[1])) == (200, "published")
    _assert_published_once(deployment, event, "team_permission.deleted")


@pytest.mark.parametrize("fault", ["answer_lost", "server_error"])
def test_sns_may_have_accepted_the_message_keeps_the_claim_and_publishes_twice_with_one_event_id(
    deployment: Deployment, fault: str
) -> None:
    # given: SNS accepts the message but the function gets no success: its answer is lost (a read timeout after the
    # request went through), or it is a 500 (SNS stored and delivered the message, then answered 500, and 500 again
    # to botocore's retries). Either way the function cannot tell whether SNS holds the message
    event = deployment.signed("user.deleted")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    server_error = AcceptedThenServerError()
    hook_event, hook = {
        "answer_lost": ("after-call.sns.Publish", read_timeout),
        "server_error": ("before-send.sns.Publish", server_error),
    }[fault]
    client_events(handler, "sns").register(hook_event, hook, FAULT)

    # when
    status, answer = invoke(handler, event)
    client_events(handler, "sns").unregister(hook_event, unique_id=FAULT)
    at_once = invoke(handler, redeliver(event, deployment.secret))

    # then: 503 as for any SNS failure, the message already out, and the claim kept (not released as after a
    # refusal): Svix's immediate retry gets 409, and past the lease the record reads "publication unknown" (a claim
    # token held), not "unpublished"
    if fault == "server_error":
        assert server_error.attempts > 1  # botocore retried the 500 itself
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "sns"})
    assert (at_once[0], outcome(at_once[1])) == (409, "in_progress")
    first = _published(deployment)
    assert [name for name, _ in first] == ["user.deleted"]
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    assert record["claim_token"]
    assert record["lease_expires_at"] > 0

    # when: Svix retries after the lease until it gets a 2xx
    wait_past(record["lease_expires_at"])
    retry = invoke(handler, redeliver(event, deployment.secret))
    later = invoke(handler, redeliver(event, deployment.secret))

    # then: a second publication, the duplicate the README lists for this case: same body, same event_id
    assert (retry[0], outcome(retry[1])) == (200, "published")
    assert (later[0], outcome(later[1])) == (200, "duplicate")
    messages = first + _published(deployment)
    assert [name for name, _ in messages] == ["user.deleted", "user.deleted"]
    assert {m.attributes["event_id"] for _, m in messages} == {event_id}
    assert {m.body.encode() for _, m in messages} == {event_body(event)}
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("published", 2)


@pytest.mark.parametrize("answer", ["lost", "server_error"])
def test_a_publish_botocore_retried_after_an_unconfirmed_attempt_is_disclosed_on_the_record(
    deployment: Deployment, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given: SNS takes the first attempt of the Publish, then its answer is lost or a 500; botocore retries inside
    # the same call and the retry succeeds. The function cannot know whether the first attempt took effect
    event = deployment.signed("user.deleted")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()
    fault = FirstPublishAttemptUnconfirmed(answer)
    client_events(handler, "sns").register("before-send.sns.Publish", fault, FAULT)

    # when
    with caplog.at_level("INFO"):
        status, answer_body = invoke(handler, event)
    client_events(handler, "sns").unregister("before-send.sns.Publish", unique_id=FAULT)

    # then: published and answered 200, two copies on the topic after one claim, and the record says one attempt
    # SNS may have taken besides the one it answered: the second copy is disclosed (docs/guarantees.md)
    assert fault.attempts == 2
    assert (status, outcome(answer_body)) == (200, "published")
    messages = _published(deployment)
    assert [name for name, _ in messages] == ["user.deleted", "user.deleted"]
    assert {m.attributes["event_id"] for _, m in messages} == {event_id}
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["unconfirmed_publish_attempts"]) == ("published", 1, 1)
    # and the function's log says so, on a warning line of its own
    [warning] = [r for r in caplog.records if hasattr(r, "unconfirmed_attempts")]
    assert (warning.levelname, warning.unconfirmed_attempts) == ("WARNING", 1)

    # and a publish whose every attempt was answered carries no such count
    clean = deployment.signed("user.deleted")
    assert (invoke(handler, clean)[0]) == 200
    clean_record = deployment.record(header(clean, "svix-id"))
    assert clean_record is not None
    assert "unconfirmed_publish_attempts" not in clean_record


# --- throughput exceeded (a bulk import) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("dynamodb", "ProvisionedThroughputExceededException"),
        ("dynamodb", "ThrottlingException"),
        ("dynamodb", "RequestLimitExceeded"),
        ("sns", "Throttled"),
    ],
)
def test_throughput_exceeded_answers_503_with_retry_after_leaves_no_claim_and_a_retry_publishes_once(
    deployment: Deployment, service: str, code: str
) -> None:
    # given: DynamoDB or SNS answering every attempt (botocore's retries included) that its throughput is exceeded,
    # as during a bulk import (docs/bulk-import.md)
    event = deployment.signed("user.created")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler()
    throttle = DynamoDBThrottle(code=code) if service == "dynamodb" else SnsThrottle()
    operation = "dynamodb.UpdateItem" if service == "dynamodb" else "sns.Publish"
    client_events(handler, service).register(f"before-send.{operation}", throttle, FAULT)

    # when
    answer = handler.lambda_handler(event, LocalContext())

    # then: a 503 that tells the sender when to come back. botocore retries DynamoDB's codes itself; SNS's
    # "Throttled" is not among its standard mode's retryable codes, so that is one attempt
    assert throttle.sends == (
        client_of(handler, service).meta.config.retries["total_max_attempts"] if service == "dynamodb" else 1
    )
    assert answer["statusCode"] == 503
    assert answer["headers"]["retry-after"].isdigit()
    assert json.loads(answer["body"]) == {"error": "dependency_unavailable", "service": service}
    assert _published(deployment) == []
    # and no claim held: a DynamoDB claim was never written, an SNS refusal gives it up at once
    record = deployment.record(event_id)
    if service == "dynamodb":
        assert record is None
    else:
        assert record is not None
        assert (record["status"], record["lease_expires_at"]) == ("claimed", 0)
        assert "claim_token" not in record

    # when: the sender's next retry comes once the throughput is back
    client_events(handler, service).unregister(f"before-send.{operation}", unique_id=FAULT)
    status, answer_body = invoke(handler, redeliver(event, deployment.secret))

    # then: published once, at once (no lease to wait out)
    assert (status, outcome(answer_body)) == (200, "published")
    _assert_published_once(deployment, event, "user.created")


# --- the record after publishing ----------------------------------------------------------------------------------


def test_mark_published_failing_answers_200_so_svix_stops_and_one_publication_stands(deployment: Deployment) -> None:
    # given: DynamoDB failing only the update that records the publication
    event = deployment.signed("user.updated")
    event_id = header(event, "svix-id")
    handler = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    client_events(handler, "dynamodb").register(
        "before-parameter-build.dynamodb.UpdateItem", on_update("mark", connection_refused), FAULT
    )

    # when
    status, answer = invoke(handler, event)

    # then: the message went out, so the sender gets a 2xx (a 5xx would make it publish again) and never retries
    assert (status, outcome(answer)) == (200, "published")
    _assert_published_once(deployment, event, "user.updated")
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    client_events(handler, "dynamodb").unregister("before-parameter-build.dynamodb.UpdateItem", unique_id=FAULT)

    # when: the same message is redelivered anyway (a manual "resend" from the dashboard), inside and after the lease
    assert time.time() < record["lease_expires_at"], "the machine took longer than the lease to redeliver"
    inside = invoke(handler, redeliver(event, deployment.secret))
    wait_past(record["lease_expires_at"])
    after = invoke(handler, redeliver(event, deployment.secret))

    # then: inside the lease nothing happens; after it the unrecorded event is published again, same event_id
    assert (inside[0], outcome(inside[1])) == (409, "in_progress")
    assert (after[0], outcome(after[1])) == (200, "published")
    messages = _published(deployment)
    assert [(name, m.attributes["event_id"]) for name, m in messages] == [("user.updated", event_id)]


# --- Secrets Manager --------------------------------------------------------------------------------------------


def test_secrets_manager_unavailable_at_cold_start_answers_503_then_recovers(deployment: Deployment) -> None:
    # given: a new execution environment that cannot read the secret (every attempt counted); a failed read is
    # remembered for the refresh interval (1 s here, 10 s by default) so that requests cannot hammer the service
    event = deployment.signed("stack.test")
    handler = deployment.load_handler(SECRET_REFRESH_INTERVAL_SECONDS="1")
    calls = CallCounter()

    def down(**kwargs: Any) -> None:
        calls(**kwargs)
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/unreachable")

    client_events(handler, "secretsmanager").register("before-call.secrets-manager.GetSecretValue", down, FAULT)

    # when: the delivery and Svix's immediate retry
    before_first = time.time()
    first = invoke(handler, event)
    after_first = time.time()
    second = invoke(handler, redeliver(event, deployment.secret))

    # then: both retryable, one read attempted, nothing stored, nothing published
    assert time.time() < before_first + 1, "the machine took longer than the refresh interval to retry"
    assert first == (503, {"error": "dependency_unavailable", "service": "secretsmanager"})
    assert second == first
    assert calls.calls == 1
    _assert_nothing_stored_or_published(deployment)

    # when: Secrets Manager is back by the next retry, after the refresh interval (Svix's next is 5 s later)
    client_events(handler, "secretsmanager").unregister("before-call.secrets-manager.GetSecretValue", unique_id=FAULT)
    counter = CallCounter()
    client_events(handler, "secretsmanager").register("before-call.secrets-manager.GetSecretValue", counter, FAULT)
    wait_past(after_first + 1.05)
    status, answer = invoke(handler, redeliver(event, deployment.secret))

    # then: read once more, and published exactly once
    assert (status, outcome(answer)) == (200, "published")
    assert counter.calls == 1
    _assert_published_once(deployment, event, "stack.test")


def test_secrets_manager_unavailable_later_serves_the_cached_secret_until_its_max_age_then_fails_closed(
    deployment: Deployment,
) -> None:
    # given: a warm environment whose secret was read just now; max age 2 s (read again after 1 s), interval 1 s
    handler = deployment.load_handler(SECRET_MAX_AGE_SECONDS="2", SECRET_REFRESH_INTERVAL_SECONDS="1")
    warm = deployment.signed("team.created")
    assert outcome(invoke(handler, warm)[1]) == "published"
    read_at = time.time()

    # when: Secrets Manager goes down (every call counted): inside half the max age, then after it, then past it
    calls = CallCounter()

    def down(**kwargs: Any) -> None:
        calls(**kwargs)
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/unreachable")

    client_events(handler, "secretsmanager").register("before-call.secrets-manager.GetSecretValue", down, FAULT)
    inside = invoke(handler, deployment.signed("team.updated"))
    calls_inside = calls.calls
    wait_past(read_at + 1.05)
    stale = invoke(handler, deployment.signed("team.deleted"))
    forged = deployment.signed("team.deleted", secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM=")
    forged_answer = invoke(handler, forged)
    calls_stale = calls.calls
    assert time.time() < read_at + 2, "the machine took longer than the max age to send three requests"
    wait_past(read_at + 2.05)
    expired_event = deployment.signed("user.created")
    expired = [invoke(handler, redeliver(expired_event, deployment.secret)) for _ in range(20)]
    calls_expired = calls.calls

    # then: inside half the max age no call; after it one failed read and the cached secret keeps verifying, and a
    # forged request is still refused (401)
    assert calls_inside == 0
    assert (inside[0], outcome(inside[1])) == (200, "published")
    assert (stale[0], outcome(stale[1])) == (200, "published")
    assert forged_answer[0] == 401
    assert calls_stale == 1
    # and past the max age every request fails closed (503, retried by the sender), reading at most once a second
    assert {status for status, _ in expired} == {503}
    assert expired[0][1] == {"error": "dependency_unavailable", "service": "secretsmanager"}
    assert calls_expired - calls_stale <= 2
    assert deployment.record(header(expired_event, "svix-id")) is None
    assert deployment.published_types() == {"team.created": 1, "team.updated": 1, "team.deleted": 1}

    # when: Secrets Manager is back, and Svix retries after the interval
    client_events(handler, "secretsmanager").unregister("before-call.secrets-manager.GetSecretValue", unique_id=FAULT)
    wait_past(time.time() + 1.05)
    status, answer = invoke(handler, redeliver(expired_event, deployment.secret))

    # then: published once
    assert (status, outcome(answer)) == (200, "published")
    assert deployment.published_types() == {"user.created": 1}


@pytest.mark.parametrize("code", ["AccessDeniedException", "DecryptionFailure"])
def test_secret_read_denied_revokes_the_cached_secret_at_once(deployment: Deployment, code: str) -> None:
    # given: a warm environment whose secret was read just now (max age 300 s: the default)
    handler = deployment.load_handler(SECRET_REFRESH_INTERVAL_SECONDS="1")
    assert outcome(invoke(handler, deployment.signed("team.created"))[1]) == "published"

    # when: the function's role loses the right to read the secret (or its key), and a delivery signed with some
    # other secret makes the function read it again (after the refresh interval)
    client_events(handler, "secretsmanager").register(
        "before-call.secrets-manager.GetSecretValue", client_error(code, "GetSecretValue"), FAULT
    )
    wait_past(time.time() + 1.05)
    probe = invoke(handler, deployment.signed("team.updated", secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM="))
    event = deployment.signed("team.deleted")
    answer = invoke(handler, event)

    # then: the cached secret is dropped well inside its max age: deliveries signed with it get a retryable 503
    assert probe == (503, {"error": "secret_not_configured"})
    assert answer == (503, {"error": "secret_not_configured"})
    assert deployment.record(header(event, "svix-id")) is None
    assert deployment.published_types() == {"team.created": 1}


# --- the function stopped mid-way -------------------------------------------------------------------------------


def test_crash_between_claim_and_publish_leaves_a_lease_then_a_retry_publishes_once(deployment: Deployment) -> None:
    # given: an environment that dies right when it would publish (its claim written), and the environment
    # Svix's retries will reach
    event = deployment.signed("project_permission.created")
    event_id = header(event, "svix-id")
    crashing = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    client_events(crashing, "sns").register("before-call.sns.Publish", killed, FAULT)
    healthy = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)

    # when
    status, answer = invoke(crashing, event)

    # then: the sender sees API Gateway's 5xx; a live claim is left behind; nothing published
    assert status == FUNCTION_ERROR_STATUS, answer
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("claimed", 1)
    assert "claim_token" in record
    assert _published(deployment) == []

    # when: Svix retries at once (inside the lease), then later (after it), then once more
    assert time.time() < record["lease_expires_at"], "the machine took longer than the lease to retry"
    early = invoke(healthy, redeliver(event, deployment.secret))
    wait_past(record["lease_expires_at"])
    late = invoke(healthy, redeliver(event, deployment.secret))
    again = invoke(healthy, redeliver(event, deployment.secret))

    # then: 409 while the lease lives, then the claim is taken over and published exactly once
    assert (early[0], outcome(early[1])) == (409, "in_progress")
    assert (late[0], outcome(late[1])) == (200, "published")
    assert (again[0], outcome(again[1])) == (200, "duplicate")
    _assert_published_once(deployment, event, "project_permission.created")
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("published", 2)


def test_timeout_after_publish_before_mark_publishes_exactly_twice_with_the_same_event_id(
    deployment: Deployment,
) -> None:
    # given: an environment whose invocation hits its deadline after SNS accepted the message, while it records
    # the publication (the runtime stops it: the mark is never sent)
    event = deployment.signed("team_membership.deleted")
    event_id = header(event, "svix-id")
    timing_out = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)
    client_events(timing_out, "dynamodb").register(
        "before-parameter-build.dynamodb.UpdateItem", on_update("mark", killed), FAULT
    )
    healthy = deployment.load_handler(CLAIM_LEASE_SECONDS=SHORT_LEASE)

    # when
    status, answer = invoke(timing_out, event)

    # then: the sender sees a 5xx although the message is out; the record stays claimed
    assert status == FUNCTION_ERROR_STATUS, answer
    record = deployment.record(event_id)
    assert record is not None
    assert record["status"] == "claimed"
    first = _published(deployment)
    assert [name for name, _ in first] == ["team_membership.deleted"]

    # when: Svix retries at once (inside the lease), after it, and once more
    assert time.time() < record["lease_expires_at"], "the machine took longer than the lease to retry"
    early = invoke(healthy, redeliver(event, deployment.secret))
    wait_past(record["lease_expires_at"])
    late = invoke(healthy, redeliver(event, deployment.secret))
    again = invoke(healthy, redeliver(event, deployment.secret))

    # then: exactly one more publication, identical, with the same event_id attribute for subscribers to drop it
    assert (early[0], outcome(early[1])) == (409, "in_progress")
    assert (late[0], outcome(late[1])) == (200, "published")
    assert (again[0], outcome(again[1])) == (200, "duplicate")
    second = _published(deployment)
    messages = [m for _, m in first + second]
    assert [name for name, _ in first + second] == ["team_membership.deleted", "team_membership.deleted"]
    assert [m.attributes["event_id"] for m in messages] == [event_id, event_id]
    assert [m.body.encode() for m in messages] == [event_body(event), event_body(event)]
    # event_timestamp is the svix-timestamp of the delivery attempt that was published: each copy has its own
    attributes = [{k: v for k, v in m.attributes.items() if k != "event_timestamp"} for m in messages]
    assert attributes[0] == attributes[1]
