"""Integration tier: the real handler, boto3 over HTTP, a moto server started here as a subprocess.

One moto server serves the whole session. Each test that counts messages provisions its own stack (a fresh name
prefix, so its own table, secret, topics and queues) with ``devkit.emulator.provision``, subscribes one queue per
topic (raw delivery), and loads ``functions/ingest/app.py`` as a fresh module: one module is one Lambda execution
environment (a cold start builds its clients and secret cache from the environment variables set just before).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.emulator import provision, subscribe_queue

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK, TEMPLATE_PATH, Deployment

if TYPE_CHECKING:
    from collections.abc import Callable


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
