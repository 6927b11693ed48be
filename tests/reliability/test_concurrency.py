"""Concurrent deliveries of one svix-id, each in its own execution environment, publish once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.samples import event_body

from .support import header, invoke, outcome, redeliver

if TYPE_CHECKING:
    from types import ModuleType

    from .support import Deployment

pytestmark = pytest.mark.integration

ENVIRONMENTS = 50


def test_fifty_concurrent_deliveries_of_one_id_publish_once(deployment: Deployment) -> None:
    # given: 50 execution environments (Lambda serves one request per environment at a time), one delivery, and
    # a barrier that releases all of them together
    event = deployment.signed("user.created")
    event_id = header(event, "svix-id")
    handlers = [deployment.load_handler() for _ in range(ENVIRONMENTS)]
    start = threading.Barrier(ENVIRONMENTS)
    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def deliver(handler: ModuleType) -> None:
        start.wait()
        try:
            answer = invoke(handler, event)
        except BaseException as exc:  # reported below rather than lost in the thread
            with lock:
                errors.append(exc)
            return
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver, args=(handler,)) for handler in handlers]

    # when: all at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then: every answer is a 200 (published or duplicate) or a retryable 409, exactly one of them "published"
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    outcomes = Counter((status, outcome(answer)) for status, answer in answers)
    assert sum(outcomes.values()) == ENVIRONMENTS
    assert set(outcomes) <= {(200, "published"), (200, "duplicate"), (409, "in_progress")}, outcomes
    assert outcomes[(200, "published")] == 1, outcomes

    # and exactly one message went out, byte-identical, to its own topic
    messages = deployment.publications()
    assert [(name, m.attributes["event_id"]) for name, m in messages] == [("user.created", event_id)]
    assert messages[0][1].body.encode() == event_body(event)
    record = deployment.record(event_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("published", 1)

    # when: Svix retries after all of them finished (every 409 is retried the same way)
    retries = [invoke(handler, redeliver(event, deployment.secret)) for handler in handlers[:1]]
    retries += [
        invoke(handlers[i % ENVIRONMENTS], redeliver(event, deployment.secret))
        for i in range(outcomes[(409, "in_progress")])
    ]

    # then: duplicates, nothing more published
    assert {(status, outcome(answer)) for status, answer in retries} == {(200, "duplicate")}
    assert deployment.publications() == []
