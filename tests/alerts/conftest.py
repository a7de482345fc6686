"""Fixtures of the alerting tests: the fake PagerDuty receiver, hand-driven time, a dummy routing
key and a private metrics registry per test (the real Alertmanager is in the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from rollback.sinks.fake import FakeTime
from rollback.sinks.fake_pagerduty import FakePagerDuty

# A dummy 32-character routing key, distinctive enough to grep for in logs and messages.
ROUTING_KEY = "TESTKEYb7e1c9d04f2a4e8c9d3f6a1b5"


@pytest.fixture
def routing_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The dummy key, also exported where the default config looks for it."""
    assert len(ROUTING_KEY) == 32
    monkeypatch.setenv("CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    return ROUTING_KEY


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def fake_pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as pd:
        yield pd
