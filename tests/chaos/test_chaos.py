"""The chaos tier: the deployed function, under AWS's runtime emulator as ``make dev-lambda`` serves it, receives
more than 300 events from a sender that retries as Svix does, while its execution environments are killed with
SIGKILL and its AWS calls fail.

- The function's AWS endpoint is a fault proxy (``devkit.fault_proxy``) in front of the deployment's emulator: it
  sees every claim, publish and mark, and for the events the plan picks it throttles, answers 5xx (before or after
  the call happened), holds the answer, or kills the environment serving the event right after the claim or the
  publish has happened and before its answer returns (so the state left is exactly the state a death there leaves).
- A killer thread kills environments at random moments too, the runtime process alone or the whole environment,
  and once kills every environment at the same time.
- The sender (``devkit.svix_sender``) keeps Svix's rule (15 s per attempt, only a 2xx counts) and its 8 attempts,
  300 times faster: 0, then 0.017 s, 1 s, 6 s, 24 s, 60 s, 120 s and 120 s after each failure, which is still longer
  than the claim lease (the deployed 15 s, longer than the function's 10 s timeout): an event whose claim a death
  left held gets through after the lease. An event the function never accepts ends the run within 331 s of waits
  plus 8 attempts of at most 15 s.

At the end, from the table and from a queue subscribed to every topic: every event was answered 2xx within the
schedule; every event was delivered, verbatim, to its topic, and its record reads published; a second copy exists
only for an event whose environment died during one of its invocations or whose publish answer was unknown, and its
record shows it (more than one claim); no claim was released after SNS had taken the publication (issue 17, item 1);
no invocation ran into the function's timeout (item 3). The counts are printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.emulator import drain, subscribe_queue
from stack_webhook_fanout_tools.devkit.fault_proxy import FORWARD, Action, Decision, FaultProxy, Operation, Step
from stack_webhook_fanout_tools.devkit.lambda_runtime import FunctionError, FunctionPool, zombie_children
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.sam_deploy import put_webhook_secret
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_secret
from stack_webhook_fanout_tools.devkit.svix_sender import Message, SvixSender

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from deployed.deployment import Deployed
    from stack_webhook_fanout_tools.devkit.fault_proxy import Exchange
    from stack_webhook_fanout_tools.devkit.lambda_runtime import ExecutionEnvironment
    from stack_webhook_fanout_tools.devkit.svix_sender import Delivery

pytestmark = pytest.mark.chaos

EVENTS = 320
SEED = 17
ENVIRONMENTS = 4
SENDER_WORKERS = 8
COMPRESSION = 300.0
SPREAD_SECONDS = 60.0
RANDOM_KILLS = 12


@dataclass(frozen=True, slots=True)
class Fault:
    """What the proxy does to the first ``requests`` requests of one step of one event."""

    step: Step
    action: Action
    requests: int = 1
    kill: str | None = None  # with INTERRUPT_AFTER: "runtime" or "environment"


#: (how many events, their faults): each planned event gets one line's faults; the rest of the events get none.
PLAN: tuple[tuple[int, tuple[Fault, ...]], ...] = (
    # deaths between the claim and the publish, and between the publish and the mark
    (6, (Fault(Step.CLAIM, Action.INTERRUPT_AFTER, kill="runtime"),)),
    (6, (Fault(Step.CLAIM, Action.INTERRUPT_AFTER, kill="environment"),)),
    (6, (Fault(Step.PUBLISH, Action.INTERRUPT_AFTER, kill="runtime"),)),
    (6, (Fault(Step.PUBLISH, Action.INTERRUPT_AFTER, kill="environment"),)),
    # throttling, once (botocore retries) and on every attempt of a delivery
    (12, (Fault(Step.CLAIM, Action.THROTTLE),)),
    (12, (Fault(Step.PUBLISH, Action.THROTTLE),)),
    (6, (Fault(Step.MARK, Action.THROTTLE),)),
    (4, (Fault(Step.CLAIM, Action.THROTTLE, requests=3),)),
    (4, (Fault(Step.PUBLISH, Action.THROTTLE, requests=3),)),
    # 5xx: refused before anything happened, or after SNS took the message (every attempt of a delivery)
    (6, (Fault(Step.CLAIM, Action.ERROR_BEFORE),)),
    (6, (Fault(Step.PUBLISH, Action.ERROR_BEFORE),)),
    (6, (Fault(Step.MARK, Action.ERROR_BEFORE),)),
    (5, (Fault(Step.PUBLISH, Action.ERROR_AFTER, requests=3),)),
    # answers that never come: once; on every attempt of the claim; and five in one invocation (two of the claim's
    # attempts, two of the publish's, the mark's first): at 2 s each, more than the function's 10 s
    (6, (Fault(Step.PUBLISH, Action.HANG_BEFORE),)),
    (6, (Fault(Step.MARK, Action.HANG_BEFORE),)),
    (5, (Fault(Step.PUBLISH, Action.HANG_AFTER),)),
    (4, (Fault(Step.CLAIM, Action.HANG_BEFORE, requests=3),)),
    (
        4,
        (
            Fault(Step.CLAIM, Action.HANG_BEFORE, requests=2),
            Fault(Step.PUBLISH, Action.HANG_BEFORE, requests=2),
            Fault(Step.MARK, Action.HANG_BEFORE),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Kill:
    kind: str  # "runtime" or "environment"
    moment: str  # "after claim", "after publish", "random", "all at once"
    event_id: str | None  # the event the environment was serving, if any
    pids: tuple[int, ...]


def event_id_of(event: Mapping[str, Any]) -> str | None:
    headers = event.get("headers") or {}
    return headers.get("svix-id")


class Chaos:
    """The plan's faults (the proxy's rule), the kills, and what the function's environments went through."""

    def __init__(self, pool: FunctionPool, plan: dict[str, tuple[Fault, ...]]) -> None:
        self.pool = pool
        self.plan = plan
        self.kills: list[Kill] = []
        #: Events one of whose invocations failed because its environment died (killed, or at the timeout).
        self.died: set[str] = set()
        self._seen: Counter[tuple[str, Step]] = Counter()
        self._lock = threading.Lock()

    def rule(self, operation: Operation) -> Decision:
        if operation.event_id is None:
            return FORWARD
        with self._lock:
            self._seen[operation.event_id, operation.step] += 1
            seen = self._seen[operation.event_id, operation.step]
        fault = next((f for f in self.plan.get(operation.event_id, ()) if f.step is operation.step), None)
        if fault is None or seen > fault.requests:
            return FORWARD
        if fault.action is Action.INTERRUPT_AFTER:
            event_id, kind = operation.event_id, fault.kill or "environment"
            return Decision(
                fault.action, after_forward=lambda: self.kill_serving(event_id, kind, f"after {fault.step}")
            )
        return Decision(fault.action)

    def kill_serving(self, event_id: str, kind: str, moment: str) -> None:
        for environment, event in self.pool.busy():
            if event_id_of(event) == event_id:
                self.kill(environment, kind, moment, event_id)

    def kill(self, environment: ExecutionEnvironment, kind: str, moment: str, event_id: str | None) -> None:
        pids = environment.kill_runtime() if kind == "runtime" else environment.kill()
        if pids:
            with self._lock:
                self.kills.append(Kill(kind, moment, event_id, tuple(pids)))

    def handler(self, event: dict[str, Any], context: object = None) -> Any:
        """The pool as the gateway's handler; an invocation whose environment died is remembered for its event."""
        try:
            return self.pool.invoke(event)
        except FunctionError:
            event_id = event_id_of(event)
            if event_id is not None:
                with self._lock:
                    self.died.add(event_id)
            raise

    def kill_at_random(self, stop: threading.Event, rng: random.Random, spread: float) -> None:
        """Kill an environment every few seconds (a busy one when there is one), alternating runtime and whole
        environment; halfway through the sends, kill every environment at once."""
        started = time.monotonic()
        kinds = ("runtime", "environment")
        all_at_once_done = False
        random_kills = 0
        while not stop.wait(rng.uniform(1.5, 4.0)) and time.monotonic() - started < spread:
            if not all_at_once_done and time.monotonic() - started > spread / 2:
                busy = dict(self.pool.busy())
                for environment in self.pool.environments():
                    self.kill(environment, "environment", "all at once", event_id_of(busy.get(environment, {})))
                all_at_once_done = True
                continue
            if random_kills >= RANDOM_KILLS:
                continue
            busy_now = self.pool.busy()
            candidates = [environment for environment, _ in busy_now] or self.pool.environments()
            if not candidates:
                continue
            environment = rng.choice(candidates)
            serving = dict(busy_now).get(environment)
            self.kill(environment, kinds[random_kills % 2], "random", event_id_of(serving) if serving else None)
            random_kills += 1


@dataclass
class ChaosRun:
    deliveries: list[Delivery]
    chaos: Chaos
    exchanges: list[Exchange]
    records: dict[str, dict[str, Any]]
    copies: dict[str, list[tuple[str, bytes]]]  # event id -> (queue's topic, body) of every copy delivered
    topics: dict[str, str]  # event id -> the topic it must reach
    timeouts: int
    wall_seconds: float


def planned(event_ids: list[str], rng: random.Random) -> dict[str, tuple[Fault, ...]]:
    chosen = rng.sample(event_ids, sum(count for count, _ in PLAN))
    plan: dict[str, tuple[Fault, ...]] = {}
    for count, faults in PLAN:
        for _ in range(count):
            plan[chosen.pop()] = faults
    return plan


@pytest.fixture(scope="module")
def run(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRun]:
    work_dir: Path = tmp_path_factory.mktemp("chaos")
    rng = random.Random(SEED)
    stack = deployed.stack
    secret = new_secret()
    put_webhook_secret(stack, secret)
    topic_arns = {"fallback": stack.fallback_topic_arn, **stack.topic_arns}
    run_tag = uuid.uuid4().hex[:6]
    queues = {arn: subscribe_queue(stack, [arn], f"chaos-{run_tag}-{i}") for i, arn in enumerate(topic_arns.values())}

    types = [SAMPLE_TYPES[i % len(SAMPLE_TYPES)] for i in range(EVENTS)]
    messages = [Message(f"msg_chaos{run_tag}{i:05d}", sample_body(t)) for i, t in enumerate(types)]
    topics = {m.msg_id: stack.topic_arns.get(t, stack.fallback_topic_arn) for m, t in zip(messages, types, strict=True)}

    # The function as deployed (its timeout 10 s, its claim lease 15 s), its AWS endpoint the fault proxy.
    proxy = FaultProxy(deployed.endpoint_url)
    pool = deployed.new_pool(work_dir / "function.log", max_environments=ENVIRONMENTS, endpoint_url=proxy.endpoint)
    chaos = Chaos(pool, planned([m.msg_id for m in messages], rng))
    proxy.rule = chaos.rule
    gateway = LocalGateway(chaos.handler, port=free_port(), concurrent=True)
    stop = threading.Event()
    killer = threading.Thread(target=chaos.kill_at_random, args=(stop, rng, SPREAD_SECONDS), daemon=True)
    try:
        proxy.start()
        threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        started = time.monotonic()
        killer.start()
        sender = SvixSender(gateway.url, secret, compression=COMPRESSION, workers=SENDER_WORKERS)
        deliveries = sender.run(messages, spread_seconds=SPREAD_SECONDS)
        wall = time.monotonic() - started
        stop.set()
        killer.join(timeout=30)
        # an attempt the sender gave up on may still run (at most the function's timeout)
        deadline = time.monotonic() + 30
        while pool.busy() and time.monotonic() < deadline:
            time.sleep(0.2)
        copies: dict[str, list[tuple[str, bytes]]] = {}
        for topic_arn, queue_url in queues.items():
            for message in drain(queue_url, stack=stack, wait_seconds=2):
                copies.setdefault(message.attributes["event_id"], []).append((topic_arn, message.body.encode()))
        records = {str(r["event_id"]): r for r in stack.records() if str(r["event_id"]) in topics}
        timeouts = len(re.findall(r"Reset initiated: Timeout", pool.log_path.read_text(errors="replace")))
        with (work_dir / "aws_requests.jsonl").open("w") as out:  # what the proxy saw, for a failure's diagnosis
            for exchange in proxy.exchanges:
                out.write(
                    json.dumps({**dataclasses.asdict(exchange), "operation": dataclasses.asdict(exchange.operation)})
                    + "\n"
                )
        yield ChaosRun(deliveries, chaos, proxy.exchanges, records, copies, topics, timeouts, wall)
    finally:
        stop.set()
        gateway.shutdown()
        gateway.server_close()
        pool.close()
        proxy.stop()
    assert zombie_children(os.getpid()) == []


def unknown_publish_answers(exchanges: list[Exchange]) -> set[str]:
    """Events a Publish of which SNS took while the function got no answer saying so."""
    return {
        str(e.operation.event_id)
        for e in exchanges
        if e.operation.step is Step.PUBLISH
        and e.upstream_status == 200
        and e.action in (Action.ERROR_AFTER, Action.HANG_AFTER, Action.INTERRUPT_AFTER)
    }


def test_counts(run: ChaosRun, capsys: pytest.CaptureFixture[str]) -> None:
    second_copies = sum(len(c) - 1 for c in run.copies.values() if len(c) > 1)
    kinds = Counter(f"{k.kind} ({k.moment})" for k in run.chaos.kills)
    faults = Counter(f"{e.action} {e.operation.step}" for e in run.exchanges if e.action not in (Action.FORWARD,))
    longest = max((d.succeeded_after or 0.0) for d in run.deliveries)
    attempts = Counter(len(d.attempts) for d in run.deliveries)
    lines = [
        f"chaos: {len(run.deliveries)} events in {run.wall_seconds:.0f} s, {len(run.exchanges)} AWS requests",
        f"  kills: {len(run.chaos.kills)}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())),
        f"  environments started {run.chaos.pool.environments_started}, died {run.chaos.pool.deaths}",
        f"  faults: {sum(faults.values())}: " + ", ".join(f"{n} {f}" for f, n in sorted(faults.items())),
        f"  invocations that died: {len(run.chaos.died)} events; at the function's timeout: {run.timeouts}",
        f"  second copies: {second_copies} (of {sum(len(c) > 1 for c in run.copies.values())} events)",
        f"  attempts per event: {dict(sorted(attempts.items()))}; longest time to a 2xx: {longest:.1f} s",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # the run did what the tier promises
    assert len(run.deliveries) >= 300
    assert len({d.message.msg_id for d in run.deliveries}) == len(run.deliveries)
    assert {k.kind for k in run.chaos.kills} == {"runtime", "environment"}
    moments = {k.moment for k in run.chaos.kills}
    assert {"after claim", "after publish", "random", "all at once"} <= moments, moments
    assert {e.action for e in run.exchanges} >= {
        Action.THROTTLE,
        Action.ERROR_BEFORE,
        Action.ERROR_AFTER,
        Action.HANG_BEFORE,
        Action.HANG_AFTER,
        Action.INTERRUPT_AFTER,
    }


def test_every_event_was_answered_2xx_within_the_retries(run: ChaosRun) -> None:
    failed = {d.message.msg_id: [a.status for a in d.attempts] for d in run.deliveries if not d.succeeded}
    assert failed == {}
    # an invocation whose environment died was answered as API Gateway answers a failed function (500), or not
    # within the sender's 15 s; the next attempts got new environments
    statuses = {d.message.msg_id: [a.status for a in d.attempts] for d in run.deliveries}
    assert run.chaos.died
    assert {e: statuses[e] for e in run.chaos.died if not {500, None} & set(statuses[e])} == {}


def test_every_event_was_delivered_verbatim_to_its_topic_and_its_record_reads_published(run: ChaosRun) -> None:
    bodies = {d.message.msg_id: d.message.body for d in run.deliveries}
    undelivered = sorted(set(bodies) - set(run.copies))
    assert undelivered == []
    for event_id, copies in run.copies.items():
        assert {topic for topic, _ in copies} == {run.topics[event_id]}, event_id
        assert {body for _, body in copies} == {bodies[event_id]}, event_id
    statuses = {e: run.records.get(e, {}).get("status") for e in bodies}
    assert {e: status for e, status in statuses.items() if status != "published"} == {}


def test_a_second_copy_only_where_an_environment_died_or_a_publish_answer_was_unknown_and_the_record_shows_it(
    run: ChaosRun,
) -> None:
    explained = run.chaos.died | unknown_publish_answers(run.exchanges)
    duplicated = {e: len(c) for e, c in run.copies.items() if len(c) > 1}
    assert {e: n for e, n in duplicated.items() if e not in explained} == {}

    # the record shows it. With one claim, every copy beyond the first came from botocore's retries of the Publish
    # that succeeded, and the mark counted each attempt SNS may have taken (unconfirmed_publish_attempts). With more
    # than one claim (attempts), the record says that an earlier claim died or got no answer from SNS: a copy per
    # attempt of that failed call may exist, botocore's retries included, and no write records their number.
    def undisclosed(event_id: str, copies: int) -> bool:
        record = run.records.get(event_id, {})
        claims = int(record.get("attempts") or 0)
        unconfirmed = int(record.get("unconfirmed_publish_attempts") or 0)
        return claims < 2 and 1 + unconfirmed < copies

    # event id -> (copies, claims, unconfirmed publish attempts) where the record does not account for the copies
    assert {
        e: (n, run.records.get(e, {}).get("attempts"), run.records.get(e, {}).get("unconfirmed_publish_attempts"))
        for e, n in duplicated.items()
        if undisclosed(e, n)
    } == {}


def test_no_claim_is_released_after_sns_took_the_publication(run: ChaosRun) -> None:
    """Issue 17, item 1: an SNS answer that does not prove refusal (a 5xx, a timeout, a lost connection) leaves
    the claim held ("publication unknown"): a release may only follow Publish requests that SNS did not take."""
    taken_since_claim: dict[str, list[str]] = {}
    wrong: dict[str, list[str]] = {}
    for exchange in run.exchanges:
        event_id = str(exchange.operation.event_id)
        if exchange.operation.step is Step.CLAIM:
            taken_since_claim[event_id] = []
        elif exchange.operation.step is Step.PUBLISH and exchange.upstream_status == 200:
            taken_since_claim.setdefault(event_id, []).append(str(exchange.action))
        elif exchange.operation.step is Step.RELEASE and taken_since_claim.get(event_id):
            wrong[event_id] = taken_since_claim[event_id]
    # event id -> what the proxy answered to the Publish requests SNS had taken before the release
    assert wrong == {}


def test_no_invocation_ran_into_the_functions_timeout(run: ChaosRun) -> None:
    """Issue 17, item 3: whatever its dependencies do (here: answers that never come), the function answers before
    Lambda's timeout."""
    assert run.timeouts == 0


def test_every_known_type_and_the_fallback_were_exercised(run: ChaosRun) -> None:
    reached = {run.topics[e] for e in run.copies}
    assert len(reached) == len(KNOWN_EVENT_TYPES) + 1
