"""The measurements of ``make bench``, one function per figure family; ``run.py`` calls them in order.

Each starts the child script of its measurement (``count_child.py``, ``cold_child.py``, ``warm_child.py``,
``instr_child.py`` under callgrind, ``e2e_gateway.py`` + ``e2e_load.py``) with a job file and returns its results.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from common import (
    APP_PATH,
    BENCH_DIR,
    BENCH_EVENT_TYPE,
    CLIENT_CONFIG,
    OUT_DIR,
    PYTHON,
    REPO,
    median,
    percentile,
    proc_cpu_seconds,
    run_json,
    stop_process,
)
from stack_webhook_fanout_tools.devkit.samples import sample_api_event

if TYPE_CHECKING:
    from pathlib import Path

VARIANTS = ("handler", "floor", "floor_tuned", "naive")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_job(folder: Path, job: dict[str, Any]) -> Path:
    path = folder / f"job-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(job))
    return path


def with_event_id(calls: list[Any], template_id: str, event_id: str) -> list[Any]:
    """The recorded calls of the handler with its svix-id replaced (ids are unique strings: a plain replace)."""
    replaced: list[Any] = json.loads(json.dumps(calls).replace(template_id, event_id))
    return replaced


# --- 4. calls, bytes --------------------------------------------------------------------------------------------------
def measure_counts(tmp: Path, env: dict[str, str], stack: Any, secret: str, warm_events: int) -> dict[str, Any]:
    job = {
        "app_path": str(APP_PATH),
        "event_type": BENCH_EVENT_TYPE,
        "secret": secret,
        "warm_events": warm_events,
        "endpoint_url": stack.endpoint_url,
        "region": stack.region,
        "table_name": stack.table_name,
    }
    counts: dict[str, Any] = run_json([str(BENCH_DIR / "count_child.py"), str(write_job(tmp, job))], env, timeout=300)
    if counts["first_event"]["status"] != 200 or set(counts["warm"]["statuses"]) != {"200"}:
        raise RuntimeError(f"the handler did not publish: {counts['first_event']} {counts['warm']['statuses']}")
    if counts["duplicate"]["answers"] != ["duplicate"]:
        raise RuntimeError(f"duplicates were not recognised: {counts['duplicate']}")
    return counts


# --- 1. cold start ----------------------------------------------------------------------------------------------------
def measure_cold(
    tmp: Path, env: dict[str, str], stack: Any, secret: str, counts: dict[str, Any], runs: int
) -> dict[str, Any]:
    def once(variant: str) -> dict[str, Any]:
        event = sample_api_event(BENCH_EVENT_TYPE, secret)
        result_path = tmp / f"cold-{uuid.uuid4().hex}.json"
        job = {
            "variant": variant,
            "app_path": str(APP_PATH),
            "event": event,
            "calls": with_event_id(counts["templates"], counts["first_event_id"], event["headers"]["svix-id"]),
            "secret_id": stack.secret_arn,
            "client_config": CLIENT_CONFIG,
            "result_path": str(result_path),
        }
        job_path = write_job(tmp, job)
        started = time.perf_counter()
        done = subprocess.run(
            [PYTHON, str(BENCH_DIR / "cold_child.py"), str(job_path)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        process_ms = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise RuntimeError(f"cold start of {variant} failed:\n{done.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(result_path.read_text())
        if result["status"] != 200:
            raise RuntimeError(f"cold start of {variant} answered {result['status']}")
        result["process_ms"] = process_ms
        return result

    for variant in VARIANTS:  # untimed: compiles and caches every variant's bytecode, warms the page cache
        once(variant)
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for round_index in range(runs):
        order = VARIANTS[round_index % len(VARIANTS) :] + VARIANTS[: round_index % len(VARIANTS)]
        for variant in order:
            samples[variant].append(once(variant))
        log(f"cold start round {round_index + 1}/{runs}")
    summary: dict[str, Any] = {"runs": runs}
    for variant, results in samples.items():
        for key in ("total_ms", "init_ms", "first_event_ms", "cpu_ms", "process_ms", "modules"):
            summary[f"{variant}_{key}"] = median([r[key] for r in results])
    return summary


# --- 2. warm path -----------------------------------------------------------------------------------------------------
def warm_path_job(stack: Any, secret: str, counts: dict[str, Any]) -> dict[str, Any]:
    """What every warm-path child (timed and counted in instructions) is told: the handler, the event, the secret
    and the recorded AWS answers it replays instead of calling the emulator."""
    return {
        "app_path": str(APP_PATH),
        "event_type": BENCH_EVENT_TYPE,
        "secret": secret,
        "secret_arn": stack.secret_arn,
        "calls": counts["templates"],
        "client_config": CLIENT_CONFIG,
    }


def measure_warm(
    tmp: Path, env: dict[str, str], stack: Any, secret: str, counts: dict[str, Any], n: int, rounds: int
) -> dict[str, Any]:
    job = {**warm_path_job(stack, secret, counts), "events_per_round": n, "rounds": rounds}
    warm: dict[str, Any] = run_json([str(BENCH_DIR / "warm_child.py"), str(write_job(tmp, job))], env, timeout=600)
    return warm


def measure_instructions(
    tmp: Path, env: dict[str, str], stack: Any, secret: str, counts: dict[str, Any], n: int
) -> dict[str, Any] | None:
    """The warm path in instructions per event (callgrind; see instr_child.py), or None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        log("valgrind not found: no instruction counts")
        return None
    result: dict[str, Any] = {"events": n}
    for loop in ("handler", "calls", "bare"):
        job = {**warm_path_job(stack, secret, counts), "events": n, "loop": loop}
        done = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                "--callgrind-out-file=/dev/null",
                PYTHON,
                str(BENCH_DIR / "instr_child.py"),
                str(write_job(tmp, job)),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        collected = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or collected is None:
            raise RuntimeError(f"callgrind run of {loop} failed:\n{done.stderr[-3000:]}")
        result[f"{loop}_per_event"] = int(collected.group(1)) / n
        log(f"instructions: {loop} {result[f'{loop}_per_event']:,.0f} per event")
    result["own_per_event"] = result["handler_per_event"] - result["calls_per_event"]
    return result


# --- 3. end to end ----------------------------------------------------------------------------------------------------
def measure_e2e(
    tmp: Path,
    env: dict[str, str],
    secret: str,
    counts: dict[str, Any],
    moto_pid: int,
    plan: dict[int, tuple[int, int]],
    rounds: int,
) -> dict[str, Any]:
    url_file = tmp / "gateway.url"
    gateway_log = (OUT_DIR / "gateway.stderr.log").open("w")
    gateway = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "e2e_gateway.py"), str(url_file)],
        env={**env, "BENCH_APP_PATH": str(APP_PATH)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=gateway_log,
    )
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists():
            if gateway.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local gateway did not start; see {OUT_DIR / 'gateway.stderr.log'}")
            time.sleep(0.05)
        url = url_file.read_text()
        results: dict[str, Any] = {}
        for concurrency, (events, warmup) in plan.items():
            per_mode: dict[str, list[dict[str, Any]]] = {"gateway": [], "direct": []}
            for round_index in range(rounds):
                modes = ("gateway", "direct") if round_index % 2 == 0 else ("direct", "gateway")
                for mode in modes:
                    job = {
                        "mode": mode,
                        "concurrency": concurrency,
                        "events": events,
                        "warmup": warmup,
                        "url": url,
                        "event_type": BENCH_EVENT_TYPE,
                        "calls": counts["templates"],
                        "template_event_id": counts["first_event_id"],
                        "client_config": CLIENT_CONFIG,
                    }
                    cpu_before = (proc_cpu_seconds(gateway.pid), proc_cpu_seconds(moto_pid))
                    run = run_json(
                        [str(BENCH_DIR / "e2e_load.py"), str(write_job(tmp, job))],
                        {**env, "BENCH_WEBHOOK_SECRET": secret},
                        timeout=600,
                    )
                    cpu_after = (proc_cpu_seconds(gateway.pid), proc_cpu_seconds(moto_pid))
                    if set(run["statuses"]) != {"200"}:
                        raise RuntimeError(f"{mode} at concurrency {concurrency} answered {run['statuses']}")
                    handled = events + warmup
                    run["gateway_cpu_ms_per_event"] = (cpu_after[0] - cpu_before[0]) * 1000 / handled
                    run["moto_cpu_ms_per_event"] = (cpu_after[1] - cpu_before[1]) * 1000 / handled
                    per_mode[mode].append(run)
                log(f"end to end c{concurrency} round {round_index + 1}/{rounds}")
            ratios = [
                d["events_per_second"] / g["events_per_second"]
                for g, d in zip(per_mode["gateway"], per_mode["direct"], strict=True)
            ]
            entry: dict[str, Any] = {"events": events, "rounds": rounds, "overhead_ratio": median(ratios)}
            for mode, runs in per_mode.items():
                latencies = [lat for r in runs for lat in r["latencies_ms"]]
                entry[f"{mode}_eps"] = median([r["events_per_second"] for r in runs])
                entry[f"{mode}_p50_ms"] = percentile(latencies, 50)
                entry[f"{mode}_p99_ms"] = percentile(latencies, 99)
                entry[f"{mode}_moto_cpu_ms_per_event"] = median([r["moto_cpu_ms_per_event"] for r in runs])
                entry[f"{mode}_client_cpu_ms_per_event"] = median([r["client_cpu_ms_per_event"] for r in runs])
            entry["gateway_cpu_ms_per_event"] = median([r["gateway_cpu_ms_per_event"] for r in per_mode["gateway"]])
            results[f"c{concurrency}"] = entry
        return results
    finally:
        stop_process(gateway)
        gateway_log.close()
