"""Every request of the adversarial corpus (``adversarial.py``) through ``lambda_handler`` on the moto server."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.samples import event_body
from stack_webhook_fanout_tools.devkit.signing import new_secret
from svix.webhooks import Webhook as SvixWebhook

from .adversarial import CORPUS, Case, Context, signed
from .support import client_events, invoke, outcome, provision_deployment, wait_past

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from .support import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corpus_stack(moto_endpoint: str) -> Iterator[tuple[Deployment, ModuleType]]:
    """One stack and one warm execution environment for the whole corpus (each case counts its own effects)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        deployment = provision_deployment(moto_endpoint, monkeypatch)
        yield deployment, deployment.load_handler()


def _answer(status: int, answer: dict[str, Any]) -> str:
    return outcome(answer) if status < 300 else str(answer.get("reason") or answer.get("error"))


def test_corpus_names_are_unique() -> None:
    names = [case.name for case in CORPUS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", [c for c in CORPUS if c.expected.status in (200, 401)], ids=lambda c: c.name)
def test_corpus_verdicts_agree_with_svix(case: Case) -> None:
    # given: the request as the function would receive it, and Svix's own library with the same secret
    secret = new_secret()
    request = case.build(Context(secret=secret, now=int(time.time())))
    body = event_body(request.event)

    # when
    try:
        SvixWebhook(secret).verify(body, request.event["headers"])
    except Exception:
        verified = False
    else:
        verified = True

    # then: what the corpus expects to be accepted is exactly what Svix accepts (a replay is refused on its
    # timestamp, which the corpus only makes stale by waiting, so its first sending verifies)
    expected_verified = case.expected.status == 200 or request.not_before is not None
    assert verified is expected_verified


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_adversarial_request_gets_its_expected_answer(corpus_stack: tuple[Deployment, ModuleType], case: Case) -> None:
    deployment, handler = corpus_stack
    deployment.publications()  # whatever an earlier, failed case left behind
    records_before = len(deployment.scan())

    # given: the case's request (and the deliveries it needs first, e.g. the original of a replay)
    request = case.build(Context(secret=deployment.secret, now=int(time.time())))
    for prior in request.before:
        status, answer = invoke(handler, prior)
        assert (status, outcome(answer)) == (200, "published"), answer
    if request.not_before is not None:
        wait_past(request.not_before)

    # when
    status, answer = invoke(handler, request.event)

    # then: the expected answer, and exactly the expected records and messages
    assert (status, _answer(status, answer)) == (case.expected.status, case.expected.answer), answer
    assert len(deployment.scan()) - records_before == case.expected.stored
    messages = deployment.publications()
    assert len(messages) == case.expected.published
    if case.expected.queue is not None:
        assert {queue for queue, _ in messages} == {case.expected.queue}
        # invalid_reason only for a body that is not a JSON object with a usable type: never for an unknown type
        assert {message.attributes.get("invalid_reason") for _, message in messages} == {case.expected.invalid_reason}
    published_event = request.before[-1] if request.before else request.event
    for _, message in messages:
        # verbatim: the exact bytes that were verified, under the id that was signed
        assert message.body.encode() == event_body(published_event)
        assert message.attributes["event_id"] == _signed_id(published_event)
        for name, value in request.attributes.items():
            assert message.attributes[name] == value


def _signed_id(event: dict[str, Any]) -> str:
    headers = {name.lower(): value for name, value in event["headers"].items()}
    return str(headers.get("svix-id") or headers["webhook-id"])


# --- what the emulator cannot show ------------------------------------------------------------------------------


def _sns_refuses_empty_messages(params: dict[str, Any], **_: Any) -> None:
    """SNS's own rule, which moto does not apply: Publish with an empty Message fails with InvalidParameter."""
    if params.get("Message") == "":
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "InvalidParameter", "Message": "Invalid parameter: Empty message"}}, "Publish"
        )


def test_validly_signed_empty_body_is_never_a_5xx(corpus_stack: tuple[Deployment, ModuleType]) -> None:
    # given: SNS refusing empty messages as it does in AWS, and a correctly signed empty body
    deployment, handler = corpus_stack
    events = client_events(handler, "sns")
    events.register("before-parameter-build.sns.Publish", _sns_refuses_empty_messages, "empty-message-rule")
    event = signed(Context(secret=deployment.secret, now=int(time.time())), b"")
    try:
        # when
        status, answer = invoke(handler, event)
    finally:
        events.unregister("before-parameter-build.sns.Publish", unique_id="empty-message-rule")

    # then: a 400 that no retry needs to repeat, and no claimed-but-unpublishable record left behind
    assert (status, answer) == (400, {"error": "bad_request", "reason": "empty_body"})
    assert deployment.record(event["headers"]["svix-id"]) is None
