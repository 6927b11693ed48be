"""Shared pieces of the benchmark scripts: paths, the emulator process, the function's environment, statistics.

Only the orchestrator (``run.py``, ``measure.py``, ``report.py``) and the child scripts that run after their clock
has stopped import this module: the cold-start child (``cold_child.py``) must not, because everything it imports
counts against the variant it times.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

REPO = Path(__file__).resolve().parents[2]
APP_PATH = REPO / "functions" / "ingest" / "app.py"
TEMPLATE_PATH = REPO / "template.yaml"
BENCH_DIR = Path(__file__).resolve().parent
#: Where results and caches go (``.local`` is git-ignored).
OUT_DIR = REPO / ".local" / "bench"
#: The interpreter that runs the benchmark is the project's virtual environment's (``.venv/bin/python``).
PYTHON = sys.executable
#: The event every timing uses: the most common Stack event, with a realistic 897-byte body.
BENCH_EVENT_TYPE = "user.created"
#: Environment variable that hands the webhook secret to a child (never printed, never on a command line).
SECRET_ENV = "BENCH_WEBHOOK_SECRET"  # noqa: S105  (the name of a variable)
#: What the template sets besides the resources' names (see IngestFunction's Environment in template.yaml).
FUNCTION_SETTINGS = {
    "RETENTION_DAYS": "30",
    "CLAIM_LEASE_SECONDS": "15",
    "POWERTOOLS_SERVICE_NAME": "stack-webhook-fanout",
    "POWERTOOLS_METRICS_NAMESPACE": "StackWebhookFanout",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
#: The same botocore settings as ``bootstrap.client_config`` (the floor, the naive build and the direct client use them
#: too, so that every baseline makes "the same calls"); ``check_client_config`` fails the run if the two drift apart.
CLIENT_CONFIG = {
    "connect_timeout": 1,
    "read_timeout": 2,
    "retries": {"max_attempts": 2, "mode": "standard"},
    "parameter_validation": False,
}


def check_client_config() -> None:
    """Raise if ``CLIENT_CONFIG`` no longer says what ``bootstrap.client_config()`` does."""
    from stack_webhook_fanout.bootstrap import client_config

    config = client_config()
    drift = {name: getattr(config, name) for name, value in CLIENT_CONFIG.items() if getattr(config, name) != value}
    if drift:
        raise RuntimeError(f"tools/bench/common.py CLIENT_CONFIG differs from bootstrap.client_config(): {drift}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[tuple[str, int]]:
    """The project's emulator (``devkit.moto_server``) on a free loopback port; yield (endpoint URL, pid)."""
    from stack_webhook_fanout_tools.devkit.moto_server import MotoServer

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with MotoServer(log_path=log_path) as server:
        yield server.endpoint, server.pid


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process by its pid, then SIGKILL if it is still there after 10 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def child_env(stack_env: Mapping[str, str], secret: str | None = None) -> dict[str, str]:
    """The environment of a child that runs the function (or a baseline) against the emulator.

    The user's AWS profile and config files are out of the picture: static dummy credentials, the emulator's
    endpoint for every client, no instance metadata lookups.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    env.update(stack_env)
    env.update(FUNCTION_SETTINGS)
    env.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    # Every variant reads the same cached bytecode (the orchestrator warms it): compile time is not measured.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if secret is not None:
        env[SECRET_ENV] = secret
    return env


def run_json(args: Sequence[str], env: Mapping[str, str], *, timeout: float, cwd: Path = REPO) -> Any:
    """Run a child script whose last stdout line is JSON; return it parsed (stderr is shown on failure)."""
    done = subprocess.run(
        [PYTHON, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def now() -> float:
    return time.perf_counter()
