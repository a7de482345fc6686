"""Fixtures of the end-to-end tests: the contract-checking PagerDuty receiver, reachable from a
service process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from rollback.sinks.fake_pagerduty import FakePagerDuty


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    """The fake PagerDuty on its own event loop in a thread, so a service process can page it
    while the test polls."""
    pd = FakePagerDuty()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        await pd.start()
        started.set()
        await stop.wait()
        await pd.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the fake PagerDuty did not start"
    try:
        yield pd
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
