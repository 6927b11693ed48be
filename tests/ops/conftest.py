"""Fixtures of the ops tier (replay, subscriber example, schemas).

Tests that need AWS use one moto server per session, started here as a subprocess on a free loopback port and
stopped by its process id; each test provisions its own stack (a fresh name prefix) with
``devkit.emulator.provision`` and feeds it through the real ingest handler.
"""

from __future__ import annotations

import uuid

import pytest
from stack_webhook_fanout_tools.devkit.emulator import provision, subscribe_queue

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .support import FALLBACK, TEMPLATE_PATH, FedStack


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
