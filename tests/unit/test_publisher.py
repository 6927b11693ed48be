"""``publisher.py`` over in-process moto: a failed publication says whether SNS may hold the message all the same
(an attempt was sent and its answer lost, or answered with a 5xx), botocore's own retries included. Faults are
raised from botocore ``before-send`` hooks on the real client, inside botocore's retry loop, as a network fault would
be."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from stack_webhook_fanout.errors import DependencyError
from stack_webhook_fanout.publisher import SnsPublisher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

URL = "https://sns.us-east-1.amazonaws.com"
BODY = '{"type":"stack.test","data":{"message":"hi"}}'


class Attempts:
    """A ``before-send`` hook raising ``errors[i]`` on the i-th attempt (the last one again after them)."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = errors
        self.count = 0

    def __call__(self, **_: Any) -> None:
        error = self.errors[min(self.count, len(self.errors) - 1)]
        self.count += 1
        raise error


@pytest.fixture
def publisher(sns: Any) -> SnsPublisher:
    return SnsPublisher(sns)


@pytest.fixture
def topic_arn(sns: Any) -> str:
    return str(sns.create_topic(Name="unit-publisher")["TopicArn"])


def publish_error(publisher: SnsPublisher, topic_arn: str) -> DependencyError:
    with pytest.raises(DependencyError) as raised:
        publisher.publish(topic_arn, BODY, {})
    return raised.value


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param((EndpointConnectionError(endpoint_url=URL),), id="connection-refused"),
    ],
)
def test_publish_failing_before_any_request_is_sent_did_not_succeed(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None], errors: tuple[Exception, ...]
) -> None:
    attempts = Attempts(*errors)
    hook(sns, "before-send.sns.Publish", attempts)
    error = publish_error(publisher, topic_arn)
    assert (error.service, error.detail, error.may_have_succeeded) == ("sns", "EndpointConnectionError", False)
    assert attempts.count > 1  # botocore retried it


class Answers:
    """A ``before-send`` hook answering the i-th attempt with SNS's error answer ``answers[i]`` = (status, code),
    the last one again after them: botocore parses it and applies its own retry policy, as with a real answer."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = answers
        self.count = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        status, code = self.answers[min(self.count, len(self.answers) - 1)]
        self.count += 1
        body = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>injected</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ).encode()
        return AWSResponse(request.url, status, {"content-type": "text/xml"}, _RawBody(body))


class _RawBody:
    """The ``raw`` of an :class:`AWSResponse`: what urllib3 would hand botocore."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.mark.parametrize(
    "answer",
    [(400, "Throttled"), (400, "InvalidParameter"), (403, "AuthorizationError"), (404, "NotFound")],
    ids=lambda a: f"{a[0]}-{a[1]}",
)
def test_publish_refused_by_sns_did_not_succeed(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None], answer: tuple[int, str]
) -> None:
    hook(sns, "before-send.sns.Publish", Answers(answer))
    error = publish_error(publisher, topic_arn)
    assert (error.detail, error.may_have_succeeded) == (answer[1], False)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param(((500, "InternalError"),), id="every-attempt-500"),
        pytest.param(((503, "ServiceUnavailable"),), id="every-attempt-503"),
        # the first attempt got a 500 (SNS may have stored the message), the retries were throttled: the last
        # answer, a refusal, does not undo the first
        pytest.param(((500, "InternalError"), (400, "Throttled")), id="500-then-throttled"),
    ],
)
def test_publish_answered_with_a_5xx_may_have_succeeded(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None], answers: tuple[tuple[int, str]]
) -> None:
    attempts = Answers(*answers)
    hook(sns, "before-send.sns.Publish", attempts)
    error = publish_error(publisher, topic_arn)
    assert (error.detail, error.may_have_succeeded) == (answers[-1][1], True)
    assert attempts.count > 1  # botocore retried it


def test_a_5xx_is_not_remembered_by_the_next_call(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None]
) -> None:
    current = [Answers((500, "InternalError"))]
    hook(sns, "before-send.sns.Publish", lambda **kwargs: current[0](**kwargs))
    assert publish_error(publisher, topic_arn).may_have_succeeded is True
    current[0] = Answers((400, "Throttled"))
    assert publish_error(publisher, topic_arn).may_have_succeeded is False


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param((ReadTimeoutError(endpoint_url=URL),), id="every-attempt-read-timeout"),
        pytest.param((ConnectionClosedError(endpoint_url=URL),), id="every-attempt-connection-closed"),
        # the first attempt's answer was lost, the retries were refused: the last error hides the first
        pytest.param(
            (ReadTimeoutError(endpoint_url=URL), EndpointConnectionError(endpoint_url=URL)), id="lost-then-refused"
        ),
    ],
)
def test_publish_whose_answer_was_lost_may_have_succeeded(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None], errors: tuple[Exception, ...]
) -> None:
    hook(sns, "before-send.sns.Publish", Attempts(*errors))
    assert publish_error(publisher, topic_arn).may_have_succeeded is True


def test_a_lost_answer_is_not_remembered_by_the_next_call(
    publisher: SnsPublisher, topic_arn: str, sns: Any, hook: Callable[..., None]
) -> None:
    lost = Attempts(ReadTimeoutError(endpoint_url=URL))
    refused = Attempts(EndpointConnectionError(endpoint_url=URL))
    current = [lost]
    hook(sns, "before-send.sns.Publish", lambda **kwargs: current[0](**kwargs))
    assert publish_error(publisher, topic_arn).may_have_succeeded is True
    current[0] = refused
    assert publish_error(publisher, topic_arn).may_have_succeeded is False


def test_publish_succeeds_and_returns_the_message_id(publisher: SnsPublisher, topic_arn: str) -> None:
    assert publisher.publish(topic_arn, BODY, {})
