"""The per-entity guard (``stack_webhook_fanout.entity_guard``) on the moto server over real HTTP, in the table the
example subscriber's template declares: scripted sequences of events whose ids Svix's own ``ksuid`` package made at
chosen times, so that the creation order is known and the arrival order is the test's."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from ksuid import KsuidMs
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.emulator import TableDefinition, create_table, emulator_session

from stack_webhook_fanout.entity_guard import (
    Decision,
    EntityBusyError,
    EntityGuard,
    GuardedEvent,
    LeaseLostError,
    Outcome,
)

from .support import SUBSCRIBER_DIR

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration

LEASE_MS = 30_000
USER = "3241a285-8329-4d69-8f3d-316e08cf140c"
TEAM = "ad962777-8244-496a-b6a2-e0c6a449c79e"
T0 = datetime.now(UTC) - timedelta(hours=1)


def svix_id(second: float) -> str:
    """A Svix message id created ``second`` seconds after T0 (an hour ago), made by Svix's own library."""
    return "msg_" + str(KsuidMs(T0 + timedelta(seconds=second)))


def event(event_type: str, second: float | None, **data: Any) -> GuardedEvent:
    """An event created at T0 + ``second`` (``None``: an id that is not a KSUID, so no event time)."""
    from stack_webhook_fanout.entity_guard import event_time

    event_id = svix_id(second) if second is not None else f"msg_test_{uuid.uuid4().hex}"
    return GuardedEvent(event_id, event_type, data, event_time(event_id, None, int(time.time() * 1000)))


def user(event_type: str, second: float | None, **fields: Any) -> GuardedEvent:
    return event(event_type, second, id=USER, **fields)


def membership(event_type: str, second: float, user_id: str = USER, team_id: str = TEAM) -> GuardedEvent:
    return event(event_type, second, team_id=team_id, user_id=user_id)


@dataclass
class Subscriber:
    """A guard on its own table, and the handler calls it let through (the side effects)."""

    client: DynamoDBClient
    table: str
    guard: EntityGuard
    effects: list[str] = field(default_factory=list)

    def handle(self, guarded: GuardedEvent, *, lease_ms: int = LEASE_MS) -> Outcome:
        outcome, _ = self.guard.handle(guarded, lambda: self.effects.append(guarded.event_id), lease_ms=lease_ms)
        return outcome

    def decisions(self, *events: GuardedEvent) -> list[str]:
        return [str(self.handle(e).decision) for e in events]

    def items(self) -> dict[str, dict[str, Any]]:
        scanned = self.client.scan(TableName=self.table, ConsistentRead=True)["Items"]
        return {str(item["pk"]["S"]): dict(item) for item in scanned}


def new_guard(client: DynamoDBClient, table: str) -> EntityGuard:
    return EntityGuard(client, table, namespace=f"sub-{uuid.uuid4().hex[:6]}", retention_seconds=86_400)


@pytest.fixture
def subscriber(moto_endpoint: str) -> Subscriber:
    """The guard's table as examples/subscriber/template.yaml declares it (key and TTL attribute), on the emulator."""
    template = cfn_template.load_template(SUBSCRIBER_DIR / "template.yaml")
    key_schema, attributes = cfn_template.table_key_schema(template, "GuardTable")
    client = emulator_session().client("dynamodb", endpoint_url=moto_endpoint)
    table = f"guard-{uuid.uuid4().hex[:8]}"
    ttl = cfn_template.ttl_attribute(template, "GuardTable")
    create_table(client, table, TableDefinition([dict(k) for k in key_schema], [dict(a) for a in attributes], ttl))
    return Subscriber(client, table, new_guard(client, table))


# --- ordering ---------------------------------------------------------------------------------------------------


def test_an_update_arriving_before_its_create_applies_and_the_late_create_is_stale(subscriber: Subscriber) -> None:
    # given: signing up then editing the profile (created at 0 s, updated at 5 s), delivered in the other order
    created, updated = user("user.created", 0, display_name="A"), user("user.updated", 5, display_name="B")

    # then: the update applies (its handler upserts); the older create never overwrites it (the documented choice)
    assert subscriber.decisions(updated, created) == ["applied", "stale"]
    assert subscriber.effects == [updated.event_id]


def test_a_late_update_after_a_newer_update_is_stale(subscriber: Subscriber) -> None:
    first, second, third = (user("user.updated", s, display_name=str(s)) for s in (1, 2, 3))
    assert subscriber.decisions(first, third, second) == ["applied", "applied", "stale"]
    assert subscriber.effects == [first.event_id, third.event_id]


def test_a_late_update_after_the_delete_is_stale_and_so_are_the_users_older_memberships_and_permissions(
    subscriber: Subscriber,
) -> None:
    # given: a user deleted at 10 s
    assert subscriber.decisions(user("user.created", 0), user("user.deleted", 10, teams=[])) == ["applied", "applied"]

    # when: events created before the deletion arrive after it
    late = [
        user("user.updated", 5),
        membership("team_membership.created", 6),
        event("team_permission.created", 7, id="team_member", team_id=TEAM, user_id=USER),
        event("project_permission.created", 8, id="admin", user_id=USER),
    ]

    # then: all stale, and a membership of another user of the same team still applies
    assert subscriber.decisions(*late) == ["stale"] * 4
    other = membership("team_membership.created", 6, user_id=str(uuid.uuid4()))
    assert subscriber.decisions(other) == ["applied"]
    assert len(subscriber.effects) == 3


def test_a_membership_created_before_a_deletion_being_handled_waits_for_it_then_is_stale(
    subscriber: Subscriber,
) -> None:
    # given: the user's deletion (created at 10 s) claimed, its handler running
    deletion = subscriber.guard.claim(user("user.deleted", 10, teams=[]), lease_ms=LEASE_MS)
    assert deletion.applied
    older = membership("team_membership.deleted", 5)
    newer = membership("team_membership.created", 15, team_id=str(uuid.uuid4()))

    # then: a membership event created before it waits; one created after it does not
    with pytest.raises(EntityBusyError, match="the deletion of its user is being handled"):
        subscriber.handle(older)
    assert subscriber.decisions(newer) == ["applied"]
    # and: once the deletion is committed, the older one is stale, because of it
    subscriber.guard.commit(deletion)
    outcome = subscriber.handle(older)
    assert (outcome.decision, outcome.reason) == (Decision.STALE, "its user was deleted later")


def test_a_team_deletion_makes_its_older_memberships_and_team_permissions_stale(subscriber: Subscriber) -> None:
    assert subscriber.decisions(event("team.deleted", 10, id=TEAM)) == ["applied"]
    late = [
        membership("team_membership.created", 5),
        event("team_permission.created", 6, id="$update_team", team_id=TEAM, user_id=USER),
    ]
    assert subscriber.decisions(*late) == ["stale", "stale"]
    # a project permission is not the team's: it applies
    assert subscriber.decisions(event("project_permission.created", 6, id="admin", user_id=USER)) == ["applied"]


@pytest.mark.parametrize(
    ("arrival", "expected"),
    [
        ((0, 1, 2), ["applied", "applied", "applied"]),
        ((2, 0, 1), ["applied", "stale", "stale"]),
        ((2, 1, 0), ["applied", "stale", "stale"]),
        # the re-add has the same body as the first add: the same change, recorded as the latest (no handler), so
        # the removal created between them is stale when it comes last
        ((0, 2, 1), ["applied", "duplicate", "stale"]),
    ],
)
def test_a_membership_added_removed_and_added_again_ends_added_whatever_the_arrival_order(
    subscriber: Subscriber, arrival: tuple[int, ...], expected: list[str]
) -> None:
    # given: added at 0 s, removed at 1 s, added again at 2 s
    sequence = [
        membership("team_membership.created", 0),
        membership("team_membership.deleted", 1),
        membership("team_membership.created", 2),
    ]

    # when: delivered in this order
    decisions = subscriber.decisions(*(sequence[i] for i in arrival))

    # then: the membership ends added whatever the order: the last handler that ran was an add
    assert decisions == expected
    types = {e.event_id: e.event_type for e in sequence}
    assert types[subscriber.effects[-1]] == "team_membership.created"


# --- duplicates ---------------------------------------------------------------------------------------------------


def test_the_same_change_resent_under_a_new_id_is_a_duplicate(subscriber: Subscriber) -> None:
    # given: Stack's retried message.create: the same body under a new, later svix-id; then a real change
    original = user("user.updated", 0, display_name="A", server_metadata={"plan": "pro", "seats": 3})
    resent = user("user.updated", 1, server_metadata={"seats": 3, "plan": "pro"}, display_name="A")
    changed = user("user.updated", 2, display_name="B", server_metadata={"plan": "pro", "seats": 3})

    # then
    assert subscriber.decisions(original, resent, changed) == ["applied", "duplicate", "applied"]
    assert subscriber.effects == [original.event_id, changed.event_id]


def test_a_change_resent_after_another_change_of_its_entity_is_applied_again(subscriber: Subscriber) -> None:
    # the resend is the newest message by Svix's clock: its state is the latest (docs/entity-guard.md, Limits)
    original = user("user.updated", 0, display_name="A")
    other = user("user.updated", 1, display_name="B")
    resent = user("user.updated", 2, display_name="A")
    assert subscriber.decisions(original, other, resent) == ["applied", "applied", "applied"]


def test_the_same_event_id_again_is_a_duplicate_even_after_newer_events(subscriber: Subscriber) -> None:
    first, second = user("user.updated", 0, display_name="A"), user("user.updated", 1, display_name="B")
    assert subscriber.decisions(first, second, first, second) == ["applied", "applied", "duplicate", "duplicate"]
    assert subscriber.effects == [first.event_id, second.event_id]


def test_an_event_without_event_time_is_applied_once_per_event_id_and_never_blocks_or_reorders_others(
    subscriber: Subscriber,
) -> None:
    # given: an event whose id is not a Svix KSUID, claimed (its handler still running)
    untimed = user("user.updated", None, display_name="X")
    claim = subscriber.guard.claim(untimed, lease_ms=LEASE_MS)
    assert (claim.outcome.decision, claim.outcome.ordered) == (Decision.APPLIED, False)
    assert "no event time" in claim.outcome.reason

    # when: timed events of the same user arrive meanwhile, then the untimed one is committed and comes again
    timed = [user("user.updated", 1, display_name="A"), user("user.updated", 2, display_name="B")]
    assert subscriber.decisions(timed[1]) == ["applied"]
    subscriber.guard.commit(claim)
    again = subscriber.handle(untimed)

    # then: the timed ones were neither blocked nor reordered by it; the untimed one counts once
    assert subscriber.decisions(timed[0]) == ["stale"]
    assert (again.decision, again.ordered) == (Decision.DUPLICATE, False)
    # and: a stack.test has no entity: once per event_id too
    test_event = event("stack.test", 3, message="hi", endpointUrl="https://example.com")
    assert [subscriber.handle(test_event).decision for _ in range(2)] == [Decision.APPLIED, Decision.DUPLICATE]
    assert subscriber.handle(test_event).reason.startswith("no entity")


# --- one at a time, and failures --------------------------------------------------------------------------------


def test_two_events_of_one_entity_at_once_are_never_handled_together(subscriber: Subscriber) -> None:
    # given: eight environments, each with its own client, racing to claim different events of one new membership
    racers = 8
    start = threading.Barrier(racers)
    running: list[int] = []
    overlap: list[int] = []
    outcomes: list[str] = []
    lock = threading.Lock()
    events = [membership("team_membership.created", s) for s in range(racers)]
    namespace = subscriber.guard._namespace  # the same subscriber, as several environments of one function

    def handler() -> None:
        with lock:
            running.append(1)
            overlap.append(len(running))
        time.sleep(0.3)
        with lock:
            running.pop()

    def race(guarded: GuardedEvent) -> None:
        client = emulator_session().client("dynamodb", endpoint_url=subscriber.client.meta.endpoint_url)
        guard = EntityGuard(client, subscriber.table, namespace=namespace, retention_seconds=86_400)
        start.wait(10)
        try:
            outcome, _ = guard.handle(guarded, handler, lease_ms=LEASE_MS)
            result = str(outcome.decision)
        except EntityBusyError:
            result = "busy"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then: one handler ran at a time (at most one was ever running), one event won; the others were told to retry
    # later (or, had one come after the winner's commit, were decided: the same membership, older or the same change)
    assert max(overlap) == 1
    assert len(outcomes) == racers
    assert outcomes.count("applied") == 1
    assert set(outcomes) <= {"applied", "busy", "stale", "duplicate"}
    assert outcomes.count("busy") >= 1
    # and: the retry of the newest is a duplicate: the same change as the one applied (or that very event)
    assert subscriber.handle(events[-1]).decision is Decision.DUPLICATE


def test_a_second_event_while_the_first_is_handled_is_retried_later_then_decided(subscriber: Subscriber) -> None:
    # given: environment A in the middle of handling an update of the user
    first, second = user("user.updated", 1, display_name="A"), user("user.updated", 2, display_name="B")
    release, started = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        assert release.wait(30)

    worker = threading.Thread(target=lambda: subscriber.guard.handle(first, slow, lease_ms=LEASE_MS))
    worker.start()
    assert started.wait(30)
    try:
        # when: environment B gets a newer update of the same user, and a copy of A's event
        with pytest.raises(EntityBusyError, match=r"user\.updated of this entity is being handled"):
            subscriber.handle(second)
        with pytest.raises(EntityBusyError, match="a copy of this event"):
            subscriber.handle(first)
    finally:
        release.set()
        worker.join(30)

    # then: once A is done, B's retry applies and the copy is a duplicate
    assert subscriber.decisions(second, first) == ["applied", "duplicate"]


def test_a_handler_that_raises_leaves_the_entity_as_it_was_and_its_retry_applies(subscriber: Subscriber) -> None:
    # given: a user with one applied update
    assert subscriber.decisions(user("user.updated", 1, display_name="A")) == ["applied"]
    before = subscriber.items()

    # when: the handler of a newer update fails
    failing = user("user.updated", 2, display_name="B")

    def downstream_down() -> None:
        raise RuntimeError("downstream unavailable")

    with pytest.raises(RuntimeError, match="downstream unavailable"):
        subscriber.guard.handle(failing, downstream_down, lease_ms=LEASE_MS)

    # then: nothing was recorded (only the version moved), the lease is gone, and the retry applies at once
    after = subscriber.items()
    ((key, item),) = after.items()
    assert {k: v for k, v in item.items() if k != "version"} == {k: v for k, v in before[key].items() if k != "version"}
    assert not any(name.startswith("lease_") for name in item)
    assert subscriber.decisions(failing) == ["applied"]


class InvocationKilled(BaseException):
    """The runtime stopping an invocation (timeout, out of memory): no ``except Exception`` sees it."""


def test_a_handler_whose_environment_dies_blocks_its_entity_only_until_the_lease_expires(
    subscriber: Subscriber,
) -> None:
    # given: an environment killed in the middle of the handler, its lease one second long
    dying = membership("team_membership.created", 1)

    def killed() -> None:
        raise InvocationKilled

    with pytest.raises(InvocationKilled):
        subscriber.guard.handle(dying, killed, lease_ms=1_000)

    # when: its copy comes back within the lease, then after it
    with pytest.raises(EntityBusyError):
        subscriber.handle(dying)
    time.sleep(1.2)

    # then: handled once after the lease, as if the first attempt had never started
    assert subscriber.decisions(dying) == ["applied"]
    assert subscriber.effects == [dying.event_id]


def test_a_commit_after_the_lease_was_taken_over_is_refused(subscriber: Subscriber) -> None:
    slow = user("user.updated", 1, display_name="A")
    claim = subscriber.guard.claim(slow, lease_ms=500)
    time.sleep(0.7)
    assert subscriber.decisions(user("user.updated", 2, display_name="B")) == ["applied"]
    with pytest.raises(LeaseLostError):
        subscriber.guard.commit(claim)
