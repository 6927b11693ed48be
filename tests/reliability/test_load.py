"""A load run through the local HTTP endpoint: a correctness check under concurrency, with figures on the side.

2,000 distinct events of every type (and a type this release does not know), a quarter of them delivered twice
(same svix-id and body, signed again), shuffled, posted over keep-alive HTTP connections by 8 clients to the local
API Gateway stand-in, which runs the real handler concurrently against the moto server. Asserted: no 5xx, every
distinct event published exactly once to the right topic with its exact body, every delivery of a repeated event
answered 2xx (a 409 happens only when a repeat races its original; it is retried as Svix would until it gets a 2xx,
and those retries are counted). Throughput and latency percentiles are printed (``-s``) and written to
``load_figures.json`` in the test's tmp dir; they are figures, not assertions.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_data
from stack_webhook_fanout_tools.devkit.signing import new_message_id, sign_headers

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .support import Deployment

pytestmark = pytest.mark.integration

DISTINCT_EVENTS = 2_000
REPEATED_EVENTS = DISTINCT_EVENTS // 4
CONCURRENCY = 8
MAX_ATTEMPTS = 50  # per delivery, for 409s only; a bound, not an expectation
HANG_GUARD_SECONDS = 600  # the run takes well under a minute here; this only stops a hung run
SEED = 20261127


@dataclass(frozen=True)
class Delivery:
    event_id: str
    event_type: str
    body: bytes
    repeat: bool


@dataclass
class Result:
    delivery: Delivery
    statuses: list[int] = field(default_factory=list)
    final: str = ""


def _distinct_events(rng: random.Random) -> list[Delivery]:
    """Events of every sample type in turn, each with its own ids so that no two bodies are alike."""
    events = []
    for i in range(DISTINCT_EVENTS):
        event_type = SAMPLE_TYPES[i % len(SAMPLE_TYPES)]
        data: dict[str, Any] = sample_data(event_type)
        if event_type.startswith(("user.", "team.")):
            data["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for key in ("user_id", "team_id"):
            if key in data:
                data[key] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body = json.dumps({"type": event_type, "data": data}, separators=(",", ":")).encode()
        events.append(Delivery(event_id=new_message_id(), event_type=event_type, body=body, repeat=False))
    return events


class _Client(threading.local):
    """One keep-alive HTTP connection per client thread."""

    connection: http.client.HTTPConnection | None = None


@pytest.fixture
def gateway(deployment: Deployment) -> Iterator[LocalGateway]:
    """The local endpoint serving one warm environment's handler, concurrently, in a background thread."""
    handler = deployment.load_handler()
    server = LocalGateway(handler.lambda_handler, port=free_port(), concurrent=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_load_of_2000_events_with_repeats_publishes_each_once_without_5xx(
    deployment: Deployment, gateway: LocalGateway, tmp_path: Path
) -> None:
    # given: 2,000 distinct events, 500 of them delivered twice, shuffled
    rng = random.Random(SEED)
    distinct = _distinct_events(rng)
    repeats = [copy.replace(d, repeat=True) for d in rng.sample(distinct, REPEATED_EVENTS)]
    deliveries = distinct + repeats
    rng.shuffle(deliveries)
    host, port = gateway.server_address[:2]
    client = _Client()
    latencies: list[float] = []
    latency_lock = threading.Lock()

    def post(delivery: Delivery) -> tuple[int, dict[str, Any]]:
        headers = {"content-type": "application/json", "user-agent": "Svix-Webhooks/1.62.0 (load test)"}
        headers.update(sign_headers(deployment.secret, delivery.body, msg_id=delivery.event_id))
        for attempt in range(2):  # a keep-alive connection the server closed is reopened once
            if client.connection is None:
                client.connection = http.client.HTTPConnection(str(host), int(port), timeout=30)
            started = time.perf_counter()
            try:
                client.connection.request("POST", "/webhooks/stack", body=delivery.body, headers=headers)
                response = client.connection.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.HTTPException):
                client.connection.close()
                client.connection = None
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            with latency_lock:
                latencies.append(elapsed)
            return response.status, json.loads(payload or b"{}")
        raise AssertionError("unreachable")

    def deliver(delivery: Delivery) -> Result:
        result = Result(delivery)
        for attempt in range(MAX_ATTEMPTS):
            status, answer = post(delivery)
            result.statuses.append(status)
            if status != 409:
                result.final = str(answer.get("status") or answer.get("error"))
                return result
            time.sleep(0.02 * (attempt + 1))  # Svix backs off too; a 409 clears once the original finishes
        result.final = "gave_up"
        return result

    # when: posted by 8 concurrent clients
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        futures = [pool.submit(deliver, d) for d in deliveries]
        results = [f.result(timeout=HANG_GUARD_SECONDS) for f in futures]
    wall = time.perf_counter() - started

    # then: no 5xx, and every delivery ended in a 2xx
    statuses = Counter(s for r in results for s in r.statuses)
    assert not [s for s in statuses if s >= 500], statuses
    assert {s for r in results for s in r.statuses[-1:]} == {200}, statuses
    # a 409 only ever answers an event that was delivered twice (a repeat racing its original)
    raced = [r for r in results if 409 in r.statuses]
    assert all(r.delivery.event_id in {d.event_id for d in repeats} for r in raced)
    # each event delivered once was published; each delivered twice was published once and acknowledged once
    finals: dict[str, list[str]] = defaultdict(list)
    for r in results:
        finals[r.delivery.event_id].append(r.final)
    repeated_ids = {d.event_id for d in repeats}
    for event_id, outcomes in finals.items():
        expected = ["duplicate", "published"] if event_id in repeated_ids else ["published"]
        assert sorted(outcomes) == expected, (event_id, outcomes)

    # and every distinct event reached its own topic exactly once, byte-identical, and nothing else did
    messages = deployment.publications()
    by_queue: dict[str, list[str]] = defaultdict(list)
    bodies: dict[str, str] = {}
    for queue, message in messages:
        by_queue[queue].append(message.attributes["event_id"])
        bodies[message.attributes["event_id"]] = message.body
    assert len(messages) == DISTINCT_EVENTS
    expected_by_queue: dict[str, set[str]] = defaultdict(set)
    for d in distinct:
        expected_by_queue[d.event_type if d.event_type in KNOWN_EVENT_TYPES else FALLBACK].add(d.event_id)
    assert {q: sorted(ids) for q, ids in by_queue.items()} == {q: sorted(ids) for q, ids in expected_by_queue.items()}
    assert all(bodies[d.event_id].encode() == d.body for d in distinct)
    assert set(by_queue) == {*KNOWN_EVENT_TYPES, FALLBACK}

    # the figures: for the benchmark, not asserted
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    figures = {
        "deliveries": len(deliveries),
        "distinct_events": DISTINCT_EVENTS,
        "repeated_events": REPEATED_EVENTS,
        "http_requests": len(latencies),
        "retries_after_409": statuses[409],
        "concurrency": CONCURRENCY,
        "wall_seconds": round(wall, 3),
        "events_per_second": round(len(deliveries) / wall, 1),
        "requests_per_second": round(len(latencies) / wall, 1),
        "latency_ms_p50": round(percentile(50), 2),
        "latency_ms_p95": round(percentile(95), 2),
        "latency_ms_p99": round(percentile(99), 2),
        "latency_ms_mean": round(statistics.fmean(latencies) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
    (tmp_path / "load_figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nload run: {json.dumps(figures)}\nfigures written to {tmp_path / 'load_figures.json'}")
