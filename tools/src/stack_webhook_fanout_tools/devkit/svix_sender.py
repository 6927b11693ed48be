"""A sender that retries deliveries exactly as Svix does, on a compressed clock.

Svix attempts a message immediately, and after each attempt that got no 2xx within 15 s, attempts it again 5 s,
5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours and 10 hours later: 8 attempts in all
(``SVIX_SCHEDULE_SECONDS``; docs.svix.com/retries: "an attempt that fails three times before eventually succeeding
will be delivered roughly 35 minutes and 5 seconds following the first attempt"). Any answer but a 2xx is a failure,
a timeout or a refused connection too. :class:`SvixSender` keeps that rule and that schedule with the
delays divided by ``compression`` (the timeout per attempt stays 15 s: it is what the function must answer within),
and delivers many messages at once from a bounded set of worker threads, each attempt logged with its answer.
"""

from __future__ import annotations

import heapq
import http.client
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Final

from .signing import sign_headers

#: Svix's schedule: when each attempt starts, after the failure of the one before (the first: immediately).
SVIX_SCHEDULE_SECONDS: Final = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
#: How long Svix waits for an answer to one attempt.
SVIX_ATTEMPT_TIMEOUT_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Message:
    """One message to deliver: its id (``svix-id``, the same on every attempt) and its body."""

    msg_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int  # 1 for the first send
    started: float  # seconds since the sender started
    seconds: float  # how long the answer took
    status: int | None  # None: no answer (timeout, refused or reset connection)


@dataclass
class Delivery:
    """A message's attempts so far; done once one got a 2xx or the schedule ran out."""

    message: Message
    attempts: list[Attempt] = field(default_factory=list)
    first_sent: float | None = None
    succeeded_after: float | None = None  # from the first send to the 2xx

    @property
    def succeeded(self) -> bool:
        return self.succeeded_after is not None


def attempt_once(url: str, secret: str, message: Message, timeout: float = SVIX_ATTEMPT_TIMEOUT_SECONDS) -> int | None:
    """POST the message once, signed now as Svix signs each attempt; its status, or None when no answer came within
    ``timeout``."""
    headers = {**sign_headers(secret, message.body, msg_id=message.msg_id), "content-type": "application/json"}
    request = urllib.request.Request(url, data=message.body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except (OSError, http.client.HTTPException):
        return None


class SvixSender:
    """Deliver messages to ``url``, signed with ``secret``, with Svix's retry rule; :meth:`run` returns once every
    delivery is done."""

    def __init__(self, url: str, secret: str, *, compression: float, workers: int = 8) -> None:
        if compression < 1:
            raise ValueError("compression must be 1 or more")
        self.url = url
        self._secret = secret
        self.schedule = tuple(d / compression for d in SVIX_SCHEDULE_SECONDS)
        self.workers = workers
        self._queue: list[tuple[float, int, Delivery]] = []
        self._condition = threading.Condition()
        self._pending = 0
        self._sequence = 0
        self._started = 0.0

    def _now(self) -> float:
        return time.monotonic() - self._started

    def _schedule(self, due: float, delivery: Delivery) -> None:
        with self._condition:
            self._sequence += 1
            heapq.heappush(self._queue, (due, self._sequence, delivery))
            self._condition.notify()

    def run(self, messages: list[Message], *, spread_seconds: float) -> list[Delivery]:
        """Send every message (first sends spread evenly over ``spread_seconds``) until each has succeeded or used
        up the schedule; return the deliveries in the messages' order."""
        deliveries = [Delivery(m) for m in messages]
        self._started = time.monotonic()
        self._pending = len(deliveries)
        step = spread_seconds / max(len(deliveries), 1)
        for index, delivery in enumerate(deliveries):
            self._schedule(index * step, delivery)
        threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return deliveries

    def _work(self) -> None:
        while True:
            with self._condition:
                while True:
                    if self._pending == 0:
                        self._condition.notify_all()
                        return
                    if self._queue and self._queue[0][0] <= self._now():
                        _, _, delivery = heapq.heappop(self._queue)
                        break
                    wait = self._queue[0][0] - self._now() if self._queue else None
                    self._condition.wait(timeout=min(wait, 1.0) if wait is not None else 1.0)
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> None:
        started = self._now()
        if delivery.first_sent is None:
            delivery.first_sent = started
        status = attempt_once(self.url, self._secret, delivery.message)
        finished = self._now()
        delivery.attempts.append(Attempt(len(delivery.attempts) + 1, started, finished - started, status))
        if status is not None and 200 <= status < 300:
            delivery.succeeded_after = finished - delivery.first_sent
        elif len(delivery.attempts) < len(self.schedule):
            self._schedule(finished + self.schedule[len(delivery.attempts)], delivery)
            return
        with self._condition:
            self._pending -= 1
            self._condition.notify_all()
