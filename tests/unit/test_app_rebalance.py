"""The faust app around a rebalance, without Kafka: faust's own recovery sequence runs against the
app's consumer with the broker calls stubbed out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from faust.tables.manager import TableManager
from faust.transport.consumer import Consumer
from faust.types import TP

from config.schema import SentinelConfig
from detector.app import create_app
from detector.core.types import Decision
from detector.fetch_wait import FETCH_MAX_WAIT_MS
from detector.wiring import Actions


class _NoActions:
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]:
        return {}

    async def handle(self, decision: Decision) -> None: ...


async def test_no_source_record_is_fetched_while_faust_hands_the_partitions_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # faust resumes the source partitions, seeks them to the committed offsets and then empties
    # the agents' buffers; a record fetched before that is thrown away with the buffers, yet the
    # consumer counts it as read and never fetches it again (it is never folded nor acked)
    cfg = SentinelConfig.model_validate(
        {"namespace": "shop", "kafka": {"data_dir": str(tmp_path / "data")}}
    )
    app = create_app(cfg, actions=cast(Actions, _NoActions())).app
    consumer = cast(Consumer, app.consumer)
    fetching: list[tuple[str, bool]] = []

    def resume_partitions(tps: set[TP]) -> None:
        fetching.append(("partitions resumed", consumer.flow_active))

    async def perform_seek() -> None:
        fetching.append(("seeking to the committed offsets", consumer.flow_active))

    async def fetcher_started() -> None:
        fetching.append(("fetcher running", consumer.flow_active))

    def buffers_emptied() -> None:
        fetching.append(("buffers emptied", consumer.flow_active))

    monkeypatch.setattr(consumer, "assignment", lambda: {TP(cfg.kafka.metrics_topic, 0)})
    monkeypatch.setattr(consumer, "resume_partitions", resume_partitions)
    monkeypatch.setattr(consumer, "perform_seek", perform_seek)
    monkeypatch.setattr(app._fetcher, "maybe_start", fetcher_started)
    monkeypatch.setattr(app.flow_control, "clear", buffers_emptied)
    assert consumer.flow_active

    await cast(TableManager, app.tables).recovery.on_recovery_completed(app.consumer_generation_id)

    assert fetching == [
        ("partitions resumed", False),
        ("seeking to the committed offsets", False),
        ("buffers emptied", False),
        ("fetcher running", True),
    ]


async def test_the_consumer_asks_the_broker_to_hold_a_fetch_at_most_a_tenth_of_a_second(
    tmp_path: Path,
) -> None:
    # faust fixes 1.5 s, and a fetch held that long over quiet partitions keeps the busy ones
    # from being fetched again (one fetch in flight per broker)
    cfg = SentinelConfig.model_validate({"kafka": {"data_dir": str(tmp_path / "data")}})
    app = create_app(cfg, actions=cast(Actions, _NoActions())).app
    thread = app.consumer._new_consumer_thread()  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    finally:
        await consumer.stop()
