"""How fast a replay publishes: pyrate-limiter's token bucket.

The limiter's own blocking wait sleeps with ``time.sleep`` on its own clock; the replay asks the bucket instead
(``put``, and ``waiting`` when it refuses) and sleeps with an injectable ``sleep`` on an injectable clock, so its
tests check every wait without waiting.
"""

from __future__ import annotations

import time
from inspect import isawaitable
from typing import TYPE_CHECKING

from pyrate_limiter import AbstractClock, Rate, RateItem, StateBucket
from pyrate_limiter import TokenBucket as TokenBucketAlgorithm

from .selection import SelectionError

if TYPE_CHECKING:
    from collections.abc import Callable

#: pyrate-limiter counts whole units per interval: a rate per second is counted per 1,000 s, so a rate such as 0.5 or
#: 2.5 a second (down to 0.001) is exact.
_INTERVAL_MS = 1_000_000


class _SecondsClock(AbstractClock):
    """pyrate-limiter's clock (milliseconds) over a clock of seconds."""

    def __init__(self, seconds: Callable[[], float]) -> None:
        self._seconds = seconds

    def now(self) -> int:
        return round(self._seconds() * 1000)


class TokenBucket:
    """Allow ``rate`` acquisitions per second on average, up to ``burst`` at once after a pause.

    The bucket starts full. ``clock`` (monotonic seconds) and ``sleep`` are injectable.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise SelectionError(f"the rate must be positive, got {rate}")
        if burst < 1 or int(burst) != burst:
            raise SelectionError(f"the burst must be a whole number, at least 1, got {burst}")
        units = round(rate * _INTERVAL_MS / 1000)
        if units < 1:
            raise SelectionError(f"the rate must be at least {1000 / _INTERVAL_MS} a second, got {rate}")
        self._clock = _SecondsClock(clock)
        self._bucket = StateBucket(
            [Rate(units, _INTERVAL_MS, burst=int(burst))], algorithm=TokenBucketAlgorithm(), clock=self._clock
        )
        self._sleep = sleep

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds slept."""
        slept = 0.0
        while True:
            item = RateItem("replay", self._clock.now())
            admitted = self._bucket.put(item)
            assert not isawaitable(admitted)  # an in-memory bucket answers at once
            if admitted:
                return slept
            wait_ms = self._bucket.waiting(item)
            assert not isawaitable(wait_ms)
            wait = max(wait_ms, 1) / 1000
            self._sleep(wait)
            slept += wait
