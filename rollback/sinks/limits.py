"""Pacing for alert delivery: the client-side rate limiter and the retry backoff.

Both take the clock and the sleep function as arguments so tests drive time by hand and never
wait for a real backoff. The limiter is shared by every sink that uses the same PagerDuty routing
key (PagerDuty counts calls per key, about 120 a minute over a 60 s look-back window).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most ``max_calls`` acquisitions in any ``window`` seconds (a sliding-window log, so
    the bound holds exactly, not on average). ``acquire`` waits, via ``sleep``, until a call is
    allowed."""

    def __init__(self, max_calls: int, window: float, *, clock: Clock, sleep: Sleep) -> None:
        if max_calls < 1 or window <= 0:
            raise ValueError("max_calls must be >= 1 and window > 0")
        self.max_calls = max_calls
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds spent waiting, for tests and health

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._calls and self._calls[0] <= now - self.window:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return
                wait = self._calls[0] + self.window - now
                self.waited += wait
                await self._sleep(wait)


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``initial * 2**(attempt-1)`` capped at
    ``cap``, with "equal jitter" (between half and all of it) so that many senders recovering
    from the same outage do not retry in lockstep. A receiver's ``Retry-After`` is honoured when
    it asks for longer, up to five times the cap."""
    base = min(cap, initial * 2.0 ** max(0, attempt - 1))
    delay = base / 2.0 + rand() * base / 2.0
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, 5 * cap)
    return delay


def redact(text: str, *secrets: str) -> str:
    """``text`` with every secret replaced, for messages built from receiver answers."""
    for s in secrets:
        if s:
            text = text.replace(s, "[REDACTED]")
    return text
