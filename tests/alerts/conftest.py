"""Fixtures of the alerting tests: a real Alertmanager (session), the fake PagerDuty receiver,
hand-driven time, a dummy routing key and a private metrics registry per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rollback.sinks.alertmanager_local import LocalAlertmanager
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


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (Debian's prometheus-alertmanager); fails loudly when
    the binary is missing, never skips."""
    am = LocalAlertmanager(Path(tmp_path_factory.mktemp("alertmanager")))
    am.start(timeout=60)
    try:
        yield am.url
    finally:
        am.stop()
