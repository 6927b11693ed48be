"""Integration tier: the real handler, boto3 over HTTP, a moto server started here as a subprocess.

One moto server serves the whole session. Each test that counts messages provisions its own stack (a fresh name
prefix, so its own table, secret, topics and queues) with ``devkit.emulator.provision``, subscribes one queue per
topic (raw delivery), and loads ``functions/ingest/app.py`` as a fresh module: one module is one Lambda execution
environment (a cold start builds its clients and secret cache from the environment variables set just before).
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest

from stack_webhook_fanout.devkit.emulator import provision, subscribe_queue, wait_until_ready
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK, MOTO_SERVER, TEMPLATE_PATH, Deployment, free_port, process_gone

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _emulator_env() -> dict[str, str]:
    """The server's environment: the user's AWS profile and credentials left out (moto reads them too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port, wait until it answers, stop it by its pid at the end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_emulator_env(),
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(endpoint, timeout_seconds=60)
        except TimeoutError:
            pytest.fail(f"moto_server did not start; its log:\n{log_path.read_text(errors='replace')}")
        if process.poll() is not None:
            pytest.fail(f"moto_server exited at once ({process.returncode}); port {port} taken?")
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.returncode is not None
        assert process_gone(process.pid), f"moto_server (pid {process.pid}) is still running"


@pytest.fixture
def deploy(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Deployment]:
    """Provision a fresh stack (its own prefix) with one raw-delivery queue per topic; returns a factory."""

    def make(*, secret_value: str | None = None, **base_env: str) -> Deployment:
        prefix = f"it-{uuid.uuid4().hex[:10]}"
        stack = provision(moto_endpoint, name_prefix=prefix, secret_value=secret_value, template_path=TEMPLATE_PATH)
        queues = {
            t: subscribe_queue(stack, [stack.topic_arns[t]], f"{prefix}-{i}") for i, t in enumerate(KNOWN_EVENT_TYPES)
        }
        queues[FALLBACK] = subscribe_queue(stack, [stack.fallback_topic_arn], f"{prefix}-{FALLBACK}")
        return Deployment(stack=stack, queues=queues, monkeypatch=monkeypatch, base_env=dict(base_env))

    return make


@pytest.fixture
def deployment(deploy: Callable[..., Deployment]) -> Deployment:
    """A fresh stack with a fresh secret."""
    return deploy()
