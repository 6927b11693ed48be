"""One end-to-end load run at a fixed concurrency: ``e2e_load.py <job.json>``; prints JSON.

``gateway`` mode: ``concurrency`` threads, each with its own keep-alive HTTP connection, post freshly signed
deliveries (a new svix-id each) to the local endpoint (``e2e_gateway.py``: LocalGateway -> lambda_handler -> moto).
``direct`` mode, the baseline: ``concurrency`` threads make the same three AWS calls per event that the handler makes
for a new event once warm (the conditional claim UpdateItem, Publish, the mark UpdateItem), with the parameters the
handler sent (recorded by ``count_child.py``, only the svix-id replaced), on shared boto3 clients with the handler's
botocore config, straight to moto. The secret is fetched once before the clock starts, as the handler caches it.

Both modes first run ``warmup`` events untimed at the same concurrency, then time ``events`` events. Latency is
per event (one HTTP exchange, or the three calls); throughput is events over the wall time of the timed phase.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import job_json

SECRET_ENV = "BENCH_WEBHOOK_SECRET"  # noqa: S105  (the name of a variable)


def run_workers(concurrency: int, jobs: list[Any], work: Any) -> tuple[float, list[float], Counter[int]]:
    """Run ``work(state, job)`` over ``jobs`` on ``concurrency`` threads; return wall s, latencies ms, statuses."""
    lock = threading.Lock()
    position = iter(range(len(jobs)))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start_line = threading.Barrier(concurrency + 1)
    failures: list[BaseException] = []

    def worker() -> None:
        state: dict[str, Any] = {}
        start_line.wait()
        try:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                started = time.perf_counter()
                status = work(state, jobs[index])
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connection = state.get("connection")
            if connection is not None:
                connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a worker failed: {failures[0]!r}") from failures[0]
    return wall, latencies, statuses


def gateway_jobs(job: dict[str, Any], count: int) -> tuple[list[Any], Any]:
    from stack_webhook_fanout_tools.devkit.samples import sample_body
    from stack_webhook_fanout_tools.devkit.signing import sign_headers

    secret = os.environ[SECRET_ENV]
    body = sample_body(job["event_type"])
    requests = [({"content-type": "application/json", **sign_headers(secret, body)}, body) for _ in range(count)]
    parts = urlsplit(job["url"])
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path

    def post(state: dict[str, Any], request: tuple[dict[str, str], bytes]) -> int:
        connection = state.get("connection")
        if connection is None:
            connection = state["connection"] = http.client.HTTPConnection(host, port, timeout=30)
        headers, payload = request
        connection.request("POST", path, body=payload, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status

    return requests, post


def direct_jobs(job: dict[str, Any], count: int) -> tuple[list[Any], Any]:
    import boto3
    from botocore.config import Config
    from stack_webhook_fanout_tools.devkit.signing import new_message_id

    config = Config(**job["client_config"])
    clients = {name: boto3.client(name, config=config) for name in ("dynamodb", "sns", "secretsmanager")}
    secret_call = next(c for c in job["calls"] if c[0] == "secretsmanager")
    clients["secretsmanager"].get_secret_value(**secret_call[2])  # once, as the handler caches it
    per_event = job_json.dumps([c for c in job["calls"] if c[0] != "secretsmanager"])
    template_id = job["template_event_id"]
    events = [
        [(getattr(clients[s], op), params) for s, op, params in job_json.loads(per_event.replace(template_id, new_id))]
        for new_id in (new_message_id() for _ in range(count))
    ]

    def calls(state: dict[str, Any], event_calls: list[tuple[Any, dict[str, Any]]]) -> int:
        for call, params in event_calls:
            call(**params)
        return 200

    return events, calls


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = job_json.load(handle)
    concurrency, count, warmup = int(job["concurrency"]), int(job["events"]), int(job["warmup"])
    make = gateway_jobs if job["mode"] == "gateway" else direct_jobs
    jobs, work = make(job, warmup + count)
    _, _, warm_statuses = run_workers(concurrency, jobs[:warmup], work)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall, latencies, statuses = run_workers(concurrency, jobs[warmup:], work)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        json.dumps(
            {
                "mode": job["mode"],
                "concurrency": concurrency,
                "events": count,
                "seconds": wall,
                "events_per_second": count / wall,
                "latencies_ms": latencies,
                "client_cpu_ms_per_event": cpu * 1000 / count,
                "statuses": {str(k): v for k, v in (statuses + warm_statuses).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
