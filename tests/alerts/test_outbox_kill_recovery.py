"""A worker killed with SIGKILL while its sink is unreachable loses no page: the next router on
the same outbox file delivers it, once."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from detector.localbroker import free_port
from rollback.alerting import AlertRouter
from rollback.sinks.fake import FakeTime
from rollback.sinks.fake_pagerduty import FakePagerDuty
from rollback.sinks.pagerduty import PagerDutySink

CHILD = """
import asyncio, sys
from pydantic import SecretStr
from rollback.alerting import AlertRouter
from rollback.sinks.fake import sample_decision, sample_outcome
from rollback.sinks.pagerduty import PagerDutySink

async def main() -> None:
    outbox, url, key = sys.argv[1:4]
    sink = PagerDutySink(routing_key=SecretStr(key), base_url=url)  # nothing listens there
    router = AlertRouter(sinks={"pd": sink}, outbox_path=outbox)
    await router.start()
    await router.notify(sample_decision(), sample_outcome())
    print("queued", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def run_child_and_kill(outbox: Path, routing_key: str) -> str:
    """Start a worker whose sink is unreachable, wait until it has queued its alert, SIGKILL it;
    return its stderr."""
    dead = f"http://127.0.0.1:{free_port()}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(outbox), dead, routing_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    assert child.stderr is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60.0)  # a deadline, not a sleep
        assert ready, "the child did not queue its alert in time"
        line = child.stdout.readline()
        assert line.strip() == b"queued", line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        stderr = child.stderr.read().decode(errors="replace")
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL, stderr
    return stderr


async def test_sigkill_before_delivery_then_a_new_router_delivers(
    tmp_path: Path, registry: CollectorRegistry, fake_pd: FakePagerDuty, routing_key: str
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    stderr = await asyncio.to_thread(run_child_and_kill, outbox, routing_key)
    assert routing_key not in stderr
    assert fake_pd.requests == []

    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    t = FakeTime()
    async with AlertRouter(
        sinks={"pd": pd}, outbox_path=outbox, clock=t.clock, sleep=t.sleep, registry=registry
    ) as router:
        assert router.health()["pending"] == 2
        assert await router.drain(30.0)
    await pd.aclose()
    assert len(fake_pd.incidents) == 1
    assert len(fake_pd.change_events) == 1
    assert fake_pd.incidents[0].dedup_key == "canary-sentinel:shop/checkout@7f9c2d1:regression"
