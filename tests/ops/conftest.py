"""Fixtures of the ops tier (replay, subscriber example, schemas).

Tests that need AWS use one moto server per session, started here as a subprocess on a free loopback port and
stopped by its process id; each test provisions its own stack (a fresh name prefix) with
``devkit.emulator.provision`` and feeds it through the real ingest handler.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest

from stack_webhook_fanout.devkit.emulator import provision, subscribe_queue, wait_until_ready
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK, MOTO_SERVER, REPO_ROOT, TEMPLATE_PATH, FedStack, free_port, process_gone

if TYPE_CHECKING:
    from collections.abc import Iterator


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
            cwd=REPO_ROOT,
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
        assert process_gone(process.pid), f"moto_server (pid {process.pid}) is still running"


@pytest.fixture
def fed_stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> FedStack:
    """A fresh local stack (own table, secret and topics) with one raw-delivery queue per topic."""
    prefix = f"ops-{uuid.uuid4().hex[:10]}"
    stack = provision(moto_endpoint, name_prefix=prefix, template_path=TEMPLATE_PATH)
    queues = {
        t: subscribe_queue(stack, [stack.topic_arns[t]], f"{prefix}-{i}") for i, t in enumerate(KNOWN_EVENT_TYPES)
    }
    queues[FALLBACK] = subscribe_queue(stack, [stack.fallback_topic_arn], f"{prefix}-{FALLBACK}")
    return FedStack(stack=stack, queues=queues, monkeypatch=monkeypatch)
