"""Fixtures of the reliability tier: a moto server subprocess for the session, and fresh stacks on it.

The server is ``.venv/bin/moto_server`` on a free loopback port, started without the user's AWS settings, polled
until it answers, and stopped by its process id at the end. Each stack has its own name prefix (its own table,
secret, topics), with one raw-delivery SQS queue subscribed to every topic, so that counting the messages on the
queues counts every publication.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from stack_webhook_fanout.observability import logger

from .support import Deployment, provision_deployment

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


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


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time of the write (capsys's, during a test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def stdout_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The function's log handler keeps the stream it was created with (whatever stdout was at import time, under
    pytest another test's capture): point it at the current stdout, which capsys captures with the EMF lines."""
    handler = logger.registered_handler
    previous = handler.setStream(_CurrentStdout())
    try:
        yield capsys
    finally:
        handler.setStream(previous)
