"""When Svix created a message, read from its id: the event's creation time.

A Svix message id is ``msg_`` + a 27-character base62 KSUID in Svix's millisecond variant: 20 bytes, big-endian, the
first 5 of which count 1/256 seconds since the KSUID epoch (1,400,000,000), the other 15 random. The id is the same on
every retry and Svix creates the message right after Stack writes the change, so its time orders one project's events
and tells how late a delivery is (``../shared/reference/stack-webhooks.md``).

Decoded here with the standard library rather than with Svix's ``svix-ksuid`` package: that package depends on
``python-baseconv``, which is published only as a source distribution, and the layer installs wheels only; the whole
job is one base62 loop. Its reading also differs in the last byte: ``svix-ksuid``'s ``KsuidMs`` writes and reads it as
milliseconds / 4 (0-249), while the Svix server, which makes the ids Stack's deliveries carry, writes 1/256 seconds
(0-255). This module follows the server; the tests check both against ids of known time.

Ids from other senders or test signers need not be KSUIDs, and random characters can decode to a plausible time: a
time is returned only when the id has exactly the KSUID form and its time lies between 2020-01-01 and five minutes after
the caller's clock. Anything else has no event time (``None``), never an error.
"""

from __future__ import annotations

from typing import Final

MESSAGE_ID_PREFIX: Final = "msg_"
KSUID_LENGTH: Final = 27
KSUID_EPOCH_MS: Final = 1_400_000_000_000
BASE62_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT: Final = {character: value for value, character in enumerate(BASE62_ALPHABET)}
_KSUID_LIMIT: Final = 1 << 160  # 20 bytes
RANDOM_BITS: Final = 120  # the 15 bytes after the 5-byte time
# 2020-01-01T00:00:00Z: no Svix message this product receives is older.
EARLIEST_PLAUSIBLE_MS: Final = 1_577_836_800_000
# Svix's clock and Lambda's may disagree a little; a time further ahead than this is not a Svix time.
MAX_CLOCK_SKEW_MS: Final = 5 * 60 * 1000


def decode_ksuid_ms(message_id: str) -> int | None:
    """The time encoded in a Svix message id, in epoch milliseconds, or ``None`` when it is not of the KSUID form."""
    if len(message_id) != len(MESSAGE_ID_PREFIX) + KSUID_LENGTH or not message_id.startswith(MESSAGE_ID_PREFIX):
        return None
    value = 0
    for character in message_id[len(MESSAGE_ID_PREFIX) :]:
        digit = _DIGIT.get(character)
        if digit is None:
            return None
        value = value * 62 + digit
    if value >= _KSUID_LIMIT:
        return None
    units = value >> RANDOM_BITS  # 1/256 seconds since the KSUID epoch
    return KSUID_EPOCH_MS + round(units * 1000 / 256)


def event_created_at_ms(message_id: str, now_ms: int) -> int | None:
    """The event's creation time from its Svix id, when the id is a KSUID whose time is plausible at ``now_ms``."""
    created = decode_ksuid_ms(message_id)
    if created is None or created < EARLIEST_PLAUSIBLE_MS or created > now_ms + MAX_CLOCK_SKEW_MS:
        return None
    return created
