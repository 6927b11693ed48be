"""How fast a replay publishes: a token bucket.

Hand-written, not a library, by judgement rather than measurement: the maintained rate limiters on PyPI either pace
by windows of a rate (N per duration: pyrate-limiter) or only count hits without waiting (limits), and keep time
with their own clocks; a replay needs "at most N a second on average, up to --burst at once after a pause", and its
tests check every wait with an injected clock and sleep, without waiting. The bucket is 30 lines.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .selection import SelectionError

if TYPE_CHECKING:
    from collections.abc import Callable


class TokenBucket:
    """Allow ``rate`` acquisitions per second on average, up to ``burst`` at once after a pause.

    The bucket starts full. ``clock`` (monotonic seconds) and ``sleep`` are injectable, so tests can check the
    waits without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise SelectionError(f"the rate must be positive, got {rate}")
        if burst < 1:
            raise SelectionError(f"the burst must be at least 1, got {burst}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._burst
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds slept."""
        slept = 0.0
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            # The tolerance absorbs float error after a sleep of exactly the computed wait.
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1.0)
                return slept
            wait = (1.0 - self._tokens) / self._rate
            self._sleep(wait)
            slept += wait
