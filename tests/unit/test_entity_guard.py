"""The guard's pure parts: the event time it uses and the change digest (the decisions run on the emulator:
tests/ops/test_entity_guard.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from ksuid import KsuidMs

from stack_webhook_fanout.entity_guard import change_hash, event_time
from stack_webhook_fanout.event_time import event_created_at_ms

NOW_MS = int(datetime(2026, 12, 7, tzinfo=UTC).timestamp() * 1000)
SVIX_ID = "msg_" + str(KsuidMs(datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)))


def test_the_event_created_at_attribute_is_used_when_the_message_carries_it() -> None:
    assert event_time(SVIX_ID, "1765000000123", NOW_MS) == 1_765_000_000_123


def test_without_the_attribute_the_time_is_decoded_from_the_svix_id() -> None:
    decoded = event_created_at_ms(SVIX_ID, NOW_MS)
    assert decoded is not None
    assert event_time(SVIX_ID, None, NOW_MS) == decoded
    assert event_time(SVIX_ID, "not-a-number", NOW_MS) == decoded


def test_an_id_that_is_not_a_ksuid_has_no_time() -> None:
    assert event_time("msg_test_0123456789abcdef", None, NOW_MS) is None
    assert event_time("evt_2KWPBgLlAfxdpx2AI54pPJ85f4W", None, NOW_MS) is None


def test_the_change_digest_ignores_key_order_and_sees_every_value() -> None:
    a = {"id": "u", "server_metadata": {"plan": "pro", "seats": 3}, "display_name": "A"}
    b = {"display_name": "A", "server_metadata": {"seats": 3, "plan": "pro"}, "id": "u"}
    assert change_hash(a) == change_hash(b)
    assert change_hash(a) != change_hash({**a, "display_name": "B"})
    assert change_hash(a) != change_hash({**a, "server_metadata": {"plan": "pro", "seats": "3"}})
    assert len(change_hash(a)) == 32
