"""Backoff and rate-limit arithmetic, and limiter sharing per routing key."""

from __future__ import annotations

import pytest

from rollback.sinks.fake import FakeTime
from rollback.sinks.limits import RateLimiter, backoff_delay, redact
from rollback.sinks.registry import SinkDeps


@pytest.mark.parametrize("rand", [0.0, 0.5, 1.0])
def test_backoff_doubles_with_jitter_and_is_capped(rand: float) -> None:
    delays = [backoff_delay(n, initial=2, cap=60, rand=lambda: rand) for n in range(1, 10)]
    bases = [2, 4, 8, 16, 32, 60, 60, 60, 60]
    for d, base in zip(delays, bases, strict=True):
        assert base / 2 <= d <= base


def test_backoff_honours_a_longer_retry_after_within_reason() -> None:
    assert backoff_delay(1, initial=2, cap=60, retry_after=30, rand=lambda: 0.0) == 30
    assert backoff_delay(1, initial=2, cap=60, retry_after=0.1, rand=lambda: 0.0) == 1.0
    assert backoff_delay(1, initial=2, cap=60, retry_after=10_000, rand=lambda: 0.0) == 300


async def test_the_limiter_allows_a_burst_then_spaces_calls() -> None:
    t = FakeTime(start=0.0)
    lim = RateLimiter(120, 60.0, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(300):
        await lim.acquire()
        stamps.append(t.now)
    assert stamps[119] == 0.0  # the first 120 go at once
    for i in range(len(stamps) - 120):
        assert stamps[i + 120] - stamps[i] >= 60.0


def test_limiters_are_shared_per_routing_key() -> None:
    deps = SinkDeps()
    a = deps.limiter_for("a" * 32, 100)
    assert deps.limiter_for("a" * 32, 100) is a
    assert deps.limiter_for("b" * 32, 100) is not a
    assert all("a" * 32 not in k for k in deps.limiters)  # keyed by a digest


def test_redact() -> None:
    assert redact("key=abc rest", "abc", "") == "key=[REDACTED] rest"
