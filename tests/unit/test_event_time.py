"""The event time decoded from a Svix message id (``stack_webhook_fanout.event_time``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ksuid import KsuidMs
from stack_webhook_fanout_tools.devkit.signing import new_message_id

from stack_webhook_fanout.event_time import (
    EARLIEST_PLAUSIBLE_MS,
    MAX_CLOCK_SKEW_MS,
    decode_ksuid_ms,
    event_created_at_ms,
)

NOW_MS = 1_800_000_000_000  # 2027-01-15


def epoch_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("message_id", "created"),
    [
        # the examples of ../shared/reference/stack-webhooks.md, read as the Svix server writes them (1/256 s)
        ("msg_1srOrx2ZWZBpBUvZwXKQmoEYga2", "2021-05-21T20:04:03.879+00:00"),
        ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "2023-01-19T00:13:51.391+00:00"),
    ],
)
def test_decode_svix_message_ids_of_known_time(message_id: str, created: str) -> None:
    assert decode_ksuid_ms(message_id) == epoch_ms(created)


@pytest.mark.parametrize("millis", [0, 1, 4, 499, 996, 999])
def test_decode_ids_that_svix_ksuid_generates(millis: int) -> None:
    # given an id made by Svix's own library at a known time
    known = datetime(2026, 12, 7, 1, 2, 3, millis * 1000, tzinfo=UTC)
    message_id = "msg_" + str(KsuidMs(known))
    # then the whole second is exact (the first 4 bytes are the plain KSUID's seconds in every variant), and the rest
    # never later and at most 27 ms earlier: svix-ksuid writes the fifth byte as milliseconds // 4 (at most 249), read
    # here as 1/256 s, as the Svix server writes it: 999 ms -> 249 -> 972.7 ms
    decoded = decode_ksuid_ms(message_id)
    assert decoded is not None
    known_ms = round(known.timestamp() * 1000)
    assert decoded // 1000 == known_ms // 1000
    assert 0 <= known_ms - decoded <= 27
    assert int(KsuidMs.from_base62(message_id[4:]).timestamp) == decoded // 1000


@pytest.mark.parametrize(
    "message_id",
    [
        "",
        "msg_",
        "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W",  # another prefix
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4",  # 26 characters
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4WW",  # 28 characters
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4-",  # not base62
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4é",  # not ASCII
        "msg_zzzzzzzzzzzzzzzzzzzzzzzzzzz",  # 27 base62 characters above 2**160
        "0123456789abcdef0123456789abcdef",  # a test signer's random hex
    ],
)
def test_ids_that_are_not_svix_ksuids_have_no_time(message_id: str) -> None:
    assert decode_ksuid_ms(message_id) is None
    assert event_created_at_ms(message_id, NOW_MS) is None


def test_the_largest_ksuid_decodes() -> None:
    assert decode_ksuid_ms("msg_aWgEPTl1tmebfsQzFP4bxwgy80V") is not None
    assert decode_ksuid_ms("msg_aWgEPTl1tmebfsQzFP4bxwgy80W") is None


def id_at(ms: int) -> str:
    return "msg_" + str(KsuidMs(datetime.fromtimestamp(ms / 1000, UTC)))


def test_a_time_more_than_five_minutes_ahead_of_the_clock_is_not_an_event_time() -> None:
    ahead = id_at(NOW_MS + MAX_CLOCK_SKEW_MS + 2_000)
    assert decode_ksuid_ms(ahead) is not None
    assert event_created_at_ms(ahead, NOW_MS) is None
    within = id_at(NOW_MS + MAX_CLOCK_SKEW_MS - 2_000)
    assert event_created_at_ms(within, NOW_MS) == decode_ksuid_ms(within)


def test_a_time_before_2020_is_not_an_event_time() -> None:
    before = id_at(EARLIEST_PLAUSIBLE_MS - 2_000)
    assert decode_ksuid_ms(before) is not None
    assert event_created_at_ms(before, NOW_MS) is None
    after = id_at(EARLIEST_PLAUSIBLE_MS + 2_000)
    assert event_created_at_ms(after, NOW_MS) == decode_ksuid_ms(after)


@pytest.mark.parametrize(
    "message_id",
    [
        "msg_" + "_" * 27,  # 27 characters, none of them base62
        "msg_" + "é" * 27,
        "msg_Gp5xGMK93cfx-K4wJtn0NuKOokM",  # the shape of a URL-safe random token (a test signer's id)
        "msg_ 2KWPBgLlAfxdpx2AI54pPJ85f",  # a space inside
        "MSG_2KWPBgLlAfxdpx2AI54pPJ85f4W",  # the prefix is case-sensitive
    ],
)
def test_27_characters_that_are_not_a_base62_ksuid_have_no_time(message_id: str) -> None:
    assert decode_ksuid_ms(message_id) is None
    assert event_created_at_ms(message_id, NOW_MS) is None


def test_the_plausible_range_includes_both_of_its_ends_to_the_256th_of_a_second() -> None:
    # ids made as the Svix server makes them (devkit.signing): times that are whole 1/256 s decode exactly
    step_ms = 1000 / 256
    assert event_created_at_ms(new_message_id(EARLIEST_PLAUSIBLE_MS), NOW_MS) == EARLIEST_PLAUSIBLE_MS
    assert event_created_at_ms(new_message_id(round(EARLIEST_PLAUSIBLE_MS - step_ms)), NOW_MS) is None
    latest = NOW_MS + MAX_CLOCK_SKEW_MS
    assert event_created_at_ms(new_message_id(latest), NOW_MS) == latest
    assert event_created_at_ms(new_message_id(round(latest + step_ms)), NOW_MS) is None


@pytest.mark.parametrize("offset_ms", [0, 1, 2, 3, 500, 999, 86_400_000 * 365])
def test_the_devkits_ids_decode_to_their_time_and_agree_with_svix_ksuid(offset_ms: int) -> None:
    # given an id the devkit signs deliveries with, for a known time
    created = EARLIEST_PLAUSIBLE_MS + 1_234_567_000 + offset_ms
    message_id = new_message_id(created)
    # then it decodes to that time within Svix's resolution (1/256 s, rounded: at most 2 ms off, so 999 ms rounds up
    # to the next second), is not the same id twice, and Svix's own library reads the same whole second from it
    decoded = decode_ksuid_ms(message_id)
    assert decoded is not None
    assert abs(decoded - created) <= 2
    assert new_message_id(created) != message_id
    assert int(KsuidMs.from_base62(message_id[4:]).timestamp) == decoded // 1000
