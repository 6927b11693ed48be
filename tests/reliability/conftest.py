"""Fixtures of the reliability tier: a moto server subprocess for the session, and fresh stacks on it.

The server is ``.venv/bin/moto_server`` on a free loopback port, started without the user's AWS settings, polled
until it answers, and stopped by its process id at the end. Each stack has its own name prefix (its own table,
secret, topics), with one raw-delivery SQS queue subscribed to every topic, so that counting the messages on the
queues counts every publication.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

import pytest

from stack_webhook_fanout.devkit.emulator import wait_until_ready

from .support import MOTO_SERVER, Deployment, free_port, process_gone, provision_deployment

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
        assert process_gone(process.pid), f"moto_server (pid {process.pid}) is still running"


@pytest.fixture
def deploy(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Deployment]:
    """A factory of fresh stacks: ``deploy(secret_value=..., ENV_VAR=value, ...)``."""

    def make(*, secret_value: str | None = None, **base_env: str) -> Deployment:
        return provision_deployment(moto_endpoint, monkeypatch, secret_value=secret_value, **base_env)

    return make


@pytest.fixture
def deployment(deploy: Callable[..., Deployment]) -> Deployment:
    """A fresh stack with a fresh secret."""
    return deploy()
