"""The example subscriber's entity guard end to end on the emulator: scripted sequences of Stack events, with ids
that Svix's ``ksuid`` package made at chosen times, signed and delivered through the real ingest function, published
to SNS, delivered to the subscriber's queue through the subscriptions its template declares, and handled by its
``app.py`` in the order the test delivers them. The decisions are read from the consumer's log lines."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.sqs_event_source import BatchOutcome

from .subscriber_support import ShortContext, body, decisions, log_lines, make_subscriber, svix_id

if TYPE_CHECKING:
    from .subscriber_support import Consumer, Subscriber
    from .support import FedStack

pytestmark = pytest.mark.integration

USER = "3241a285-8329-4d69-8f3d-316e08cf140c"  # the samples' user
PERSONAL_DATA = ("jane@example.com", "jane@gmail.com", "Jane Doe")


def fresh_subscriber(
    fed: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Subscriber, Consumer]:
    """A new subscriber and one environment of its consumer; the log lines captured from here on are theirs."""
    subscriber = make_subscriber(fed, monkeypatch)
    consumer = subscriber.consumer()
    capsys.readouterr()
    return subscriber, consumer


def test_an_update_before_its_create_then_a_late_update_after_the_delete(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the subscriber, and a user's life delivered out of order: updated (5 s) before created (0 s), then
    # deleted (20 s), then an update (10 s) and a membership (8 s) created before the deletion
    subscriber, consumer = fresh_subscriber(fed_stack, monkeypatch, capsys)
    script = [
        ("user.updated", 5, {"display_name": "B"}),
        ("user.created", 0, {"display_name": "A"}),
        ("user.deleted", 20, {}),
        ("user.updated", 10, {"display_name": "C"}),
        ("team_membership.created", 8, {"user_id": USER}),
    ]

    # when: each is delivered and consumed in that order
    sent = [subscriber.deliver_and_consume(consumer, t, s, **data) for t, s, data in script]

    # then: the newer state won every time; only the update and the deletion reached the business logic
    assert decisions(log_lines(capsys.readouterr().out)) == [
        (sent[0].event_id, "applied"),
        (sent[1].event_id, "stale"),
        (sent[2].event_id, "applied"),
        (sent[3].event_id, "stale"),
        (sent[4].event_id, "stale"),
    ]
    assert consumer.effects == [(sent[0].event_id, False), (sent[2].event_id, False)]


def test_a_late_update_after_a_newer_update_and_the_same_change_resent_under_a_new_id(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subscriber, consumer = fresh_subscriber(fed_stack, monkeypatch, capsys)
    # given: a team updated at 1 s and at 3 s, the 3 s change resent by Stack under a new id at 4 s
    script = [
        ("team.updated", 3, {"display_name": "Newer"}),
        ("team.updated", 1, {"display_name": "Older"}),
        ("team.updated", 4, {"display_name": "Newer"}),
    ]

    sent = [subscriber.deliver_and_consume(consumer, t, s, **data) for t, s, data in script]

    lines = log_lines(capsys.readouterr().out)
    assert decisions(lines) == [
        (sent[0].event_id, "applied"),
        (sent[1].event_id, "stale"),
        (sent[2].event_id, "duplicate"),
    ]
    assert consumer.effects == [(sent[0].event_id, False)]
    # and: each line says why, and that the event was ordered by its time (no personal data)
    assert all(line["ordered"] is True and line["reason"] for line in lines if "decision" in line)
    assert not any(secret in json.dumps(lines) for secret in PERSONAL_DATA)


@pytest.mark.parametrize(
    ("arrival", "expected"),
    [((0, 1, 2), ["applied", "applied", "applied"]), ((2, 0, 1), ["applied", "stale", "stale"])],
)
def test_a_membership_added_removed_and_added_again(
    fed_stack: FedStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arrival: tuple[int, ...],
    expected: list[str],
) -> None:
    subscriber, consumer = fresh_subscriber(fed_stack, monkeypatch, capsys)
    user_id = str(uuid.uuid4())
    script = [
        ("team_membership.created", 0),
        ("team_membership.deleted", 1),
        ("team_membership.created", 2),
    ]

    sent = [subscriber.deliver_and_consume(consumer, *script[i], user_id=user_id) for i in arrival]

    # then: the re-add (created last) holds: the last business logic call was an add
    assert [d for _, d in decisions(log_lines(capsys.readouterr().out))] == expected
    types = {d.event_id: d.event_type for d in sent}
    assert types[consumer.effects[-1][0]] == "team_membership.created"


def test_two_events_of_one_entity_at_once_in_two_environments(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: environment A handling a user's update (created at 1 s) slowly
    subscriber = make_subscriber(fed_stack, monkeypatch)
    release, started = threading.Event(), threading.Event()
    slow, fast = subscriber.consumer(block=release, started=started), subscriber.consumer()
    first = fed_stack.deliver("user.updated", body=body("user.updated", display_name="A"), event_id=svix_id(1))
    (message,) = subscriber.source.receive()
    outcomes: list[BatchOutcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(slow.invoke(subscriber.source, [message])))
    worker.start()
    try:
        assert started.wait(30)
        # when: environment B gets a newer update of the same user meanwhile (created at 2 s)
        second = fed_stack.deliver("user.updated", body=body("user.updated", display_name="B"), event_id=svix_id(2))
        during: BatchOutcome = BatchOutcome()
        for _ in range(10):
            during = fast.invoke(subscriber.source)
            if during.received:
                break

        # then: B does not run its business logic: the record fails and stays on the queue
        assert during.failed == during.received
        assert len(during.received) == 1
        assert fast.effects == []
    finally:
        release.set()
        worker.join(30)

    # and: after A is done, B's record comes back and is applied; each ran once, one after the other
    assert outcomes[0].failed == ()
    subscriber.drain(fast)
    assert slow.effects == [(first.event_id, False)]
    assert fast.effects == [(second.event_id, False)]
    lines = log_lines(capsys.readouterr().out)
    busy = [line for line in lines if line.get("decision") == "busy"]
    assert [line["event_id"] for line in busy] == [second.event_id]
    assert "user.updated of this entity is being handled" in busy[0]["reason"]
    assert subscriber.waiting(subscriber.local.queue_url) == 0


def test_a_handler_that_raises_leaves_the_entity_as_it_was_and_the_retry_applies(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subscriber = make_subscriber(fed_stack, monkeypatch)
    consumer = subscriber.consumer()
    calls = subscriber.fail_first_call(consumer)
    capsys.readouterr()
    # given: an update whose handler fails once, then an older update of the same user
    failing = fed_stack.deliver("user.updated", body=body("user.updated", display_name="B"), event_id=svix_id(2))
    subscriber.drain(consumer)
    older = subscriber.deliver_and_consume(consumer, "user.updated", 1, display_name="A")

    # then: the failure committed nothing (its retry applied), and the older one is stale after it
    assert calls == [failing.event_id, failing.event_id]
    assert decisions(log_lines(capsys.readouterr().out)) == [
        (failing.event_id, "failed"),
        (failing.event_id, "applied"),
        (older.event_id, "stale"),
    ]
    assert subscriber.dead_letters() == []


def test_a_handler_that_outlasts_its_lease_commits_nothing_and_its_retry_is_decided_again(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: environment A whose invocation has one second left (its lease), and whose business logic takes longer:
    # meanwhile, environment B handles a newer update of the same user
    # (the queue hides A's message longer than that: B gets only the newer one)
    subscriber = make_subscriber(fed_stack, monkeypatch, visibility_timeout=3)
    slow, fast = subscriber.consumer(), subscriber.consumer()
    capsys.readouterr()
    first = fed_stack.deliver("user.updated", body=body("user.updated", display_name="A"), event_id=svix_id(1))
    (message,) = subscriber.source.receive()
    second = fed_stack.deliver("user.updated", body=body("user.updated", display_name="B"), event_id=svix_id(2))
    business_logic = slow.module.handle_event

    def outlasting(event: Any, *, event_id: str, replay: bool) -> str:
        time.sleep(1.2)
        assert fast.invoke(subscriber.source).received  # B: the newer update, applied (A's lease is over)
        return str(business_logic(event, event_id=event_id, replay=replay))

    monkeypatch.setattr(slow.module, "handle_event", outlasting)

    # when: A's invocation ends
    outcome = subscriber.source.invoke(slow.module.lambda_handler, [message], ShortContext())

    # then: A's commit was refused (its record fails and comes back), B's update stands, and A's retry is stale
    assert outcome.failed == outcome.received
    subscriber.drain(fast)
    assert decisions(log_lines(capsys.readouterr().out)) == [
        (second.event_id, "applied"),
        (first.event_id, "lease_lost"),
        (first.event_id, "stale"),
    ]
    assert fast.effects == [(second.event_id, False)]
