"""The live service's per-message work without Kafka: checkpoints, acks, skips after a restore,
and dead letters (component test with an in-memory store and recording senders)."""

from __future__ import annotations

import asyncio
import logging
import pickle

import orjson
import pytest

from config.schema import SentinelConfig
from detector.core.types import Decision
from detector.demo import REGRESSING, DemoPlan, demo_lines
from detector.metrics import ServiceMetrics
from detector.replay import replay_records
from detector.service import DictStore, Worker
from tests.engine_state import plain
from tests.integration.harness import as_otlp

PLAN = DemoPlan(history_minutes=10, canary_minutes=6, regress_at_minute=2)
TOPIC = "sentinel.metrics"


class Event:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def _worker(
    store: DictStore,
    sent: list[tuple[bytes, bytes]],
    dead: list[bytes],
    every: int = 50,
    metrics_format: str = "native",
) -> tuple[Worker, list[Decision]]:
    cfg = SentinelConfig.model_validate(
        {
            "namespace": "shop",
            "kafka": {
                "checkpoint_every_samples": every,
                "checkpoint_every_seconds": 3600,
                "metrics_format": metrics_format,
            },
        }
    )
    acted: list[Decision] = []

    async def send(key: bytes, value: bytes) -> None:
        sent.append((key, value))

    async def send_dead(key: bytes, value: bytes) -> None:
        dead.append(value)

    return Worker(cfg, store, send, send_dead, acted.append, ServiceMetrics()), acted


def _feed(w: Worker, lines: list[bytes], start: int = 0, partition: int = 0) -> list[Event]:
    events = []
    for i, line in enumerate(lines):
        ev = Event()
        events.append(ev)
        asyncio.run(w.on_message(line, TOPIC, partition, start + i, ev))
    return events


def test_a_message_is_acked_only_by_the_checkpoint_that_covers_it() -> None:
    store = DictStore()
    sent: list[tuple[bytes, bytes]] = []
    dead: list[bytes] = []
    w, _ = _worker(store, sent, dead, every=10)
    lines = list(demo_lines(PLAN))[:25]
    events = _feed(w, lines)
    assert all(e.acked for e in events[:20]) and not any(e.acked for e in events[20:])
    assert set(store.data) == {b"checkout", b"payments"}
    assert set(store.partitions.values()) == {0}


def test_restart_from_a_checkpoint_skips_what_it_covers_and_decides_the_same() -> None:
    lines = list(demo_lines(PLAN))
    store = DictStore()
    sent: list[tuple[bytes, bytes]] = []
    dead: list[bytes] = []
    w, _ = _worker(store, sent, dead, every=37)
    cut = len(lines) // 2
    _feed(w, lines[:cut])
    # crash: the in-memory state is gone; the consumer resumes from the last committed offset,
    # which is at or before the checkpoint; redelivery starts 30 messages early
    w2, acted = _worker(store, sent, dead, every=37)
    resume = cut - 30
    _feed(w2, lines[resume:], start=resume)
    assert w2.skipped > 0
    assert _live(sent) == [d.to_record() for d in replay_records(lines, w.config)]
    assert [d.service for d in acted] == [REGRESSING]


def _live(sent: list[tuple[bytes, bytes]]) -> list[dict[str, object]]:
    """The decision records the worker sent, without the fields replay does not have."""
    live = [orjson.loads(v) for _, v in sent]
    for rec in live:
        assert rec.pop("record") == "decision"
        assert rec.pop("decided_at") > 0
    return live


def test_every_record_of_a_batched_message_is_folded_and_a_restart_skips_whole_messages() -> None:
    lines = list(demo_lines(PLAN))
    # OTLP messages of one pod group's scrape each: four samples share one offset
    messages = [v for _, v in as_otlp(lines)]
    assert len(messages) * 4 == len(lines)
    store = DictStore()
    sent: list[tuple[bytes, bytes]] = []
    w, acted = _worker(store, sent, [], every=37, metrics_format="otlp-json")
    _feed(w, messages)
    assert w.engine.stats.samples == len(lines)
    expected = [d.to_record() for d in replay_records(messages, w.config)]
    assert _live(sent) == expected
    assert [d.service for d in acted] == [REGRESSING]
    # the same verdicts as the native records give
    native = replay_records(lines, SentinelConfig.model_validate({"namespace": "shop"}))
    assert [(r["service"], r["verdict"]) for r in expected] == [
        (d.service, d.verdict.value) for d in native
    ]

    store2 = DictStore()
    sent2: list[tuple[bytes, bytes]] = []
    w1, _ = _worker(store2, sent2, [], every=37, metrics_format="otlp-json")
    cut = len(messages) // 2
    _feed(w1, messages[:cut])
    w2, _ = _worker(store2, sent2, [], every=37, metrics_format="otlp-json")
    resume = cut - 30
    _feed(w2, messages[resume:], start=resume)
    assert w2.skipped > 0 and w2.skipped % 4 == 0  # whole messages, never part of one
    assert _live(sent2) == expected


def test_bad_records_go_to_the_deadletter_with_reason_and_bytes() -> None:
    store = DictStore()
    sent: list[tuple[bytes, bytes]] = []
    dead: list[bytes] = []
    w, _ = _worker(store, sent, dead)
    _feed(w, [b"\xff\x00bin", b'{"ts": 1, "service": "a", "role": "x", "signal": "s", "value": 1}'])
    first, second = (orjson.loads(d) for d in dead)
    assert first["kind"] == "not_json" and first["record_base64"] == "/wBiaW4="
    assert first["topic"] == TOPIC and first["offset"] == 0
    assert second["kind"] == "bad_role" and second["record"].startswith("{")
    assert w.pipeline.bad == {"not_json": 1, "bad_role": 1}


def test_a_batch_deadletters_each_rejected_record_alone_and_judges_the_rest() -> None:
    lines = list(demo_lines(PLAN))
    good = [orjson.loads(ln) for ln in lines[:3]]
    sent: list[tuple[bytes, bytes]] = []
    dead: list[bytes] = []
    w, _ = _worker(DictStore(), sent, dead)
    _feed(w, [orjson.dumps([good[0], {**good[1], "count": -1}, good[2]])])
    (only,) = (orjson.loads(d) for d in dead)
    assert (only["kind"], only["index"], only["offset"]) == ("negative_count", 1, 0)
    assert orjson.loads(only["record"]) == {**good[1], "count": -1}
    assert w.pipeline.bad == {"negative_count": 1}
    assert w.engine.stats.samples == 2


def _states(w: Worker) -> dict[str, object]:
    return {name: plain(st) for name, st in w.engine.services.items()}


def test_a_partition_that_comes_back_continues_from_the_newest_checkpoint() -> None:
    lines = list(demo_lines(PLAN))
    store = DictStore()
    w, _ = _worker(store, [], [], every=37)
    _feed(w, lines[:100])
    w.checkpoint(0)
    # a restarted worker gets records its checkpoints already cover (the consumer resumes at
    # or before them), then loses the partition before any new record
    restarted, _ = _worker(store, [], [], every=37)
    _feed(restarted, lines[90:100], start=90)
    assert restarted.skipped == 10
    restarted.forget({0})
    # meanwhile another worker owns the partition and checkpoints further
    other, _ = _worker(store, [], [], every=37)
    _feed(other, lines[90:150], start=90)
    other.checkpoint(0)
    # the partition comes back: the worker continues from the other worker's checkpoint, not
    # from what it restored before
    _feed(restarted, lines[150:], start=150)
    uninterrupted, _ = _worker(DictStore(), [], [], every=37)
    _feed(uninterrupted, lines)
    assert _states(restarted) == _states(uninterrupted)


def test_offsets_are_kept_per_partition_and_a_misrouted_service_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a producer that does not key by service: the same service on two partitions, whose
    # offsets overlap; none of its records is mistaken for one the checkpoint already has
    lines = [ln for ln in demo_lines(PLAN) if b'"checkout"' in ln][:40]
    w, _ = _worker(DictStore(), [], [], every=1000)
    with caplog.at_level(logging.WARNING, logger="canary_sentinel.service"):
        _feed(w, lines[:20], partition=0)
        _feed(w, lines[20:], partition=1)
    assert w.skipped == 0
    assert w.engine.services["checkout"].offsets == {f"{TOPIC}@0": 19, f"{TOPIC}@1": 19}
    assert w.metrics.misrouted._value.get() == 1  # the first record on the second partition
    warned = [r for r in caplog.records if "key them by service" in r.getMessage()]
    assert len(warned) == 1 and "checkout" in warned[0].getMessage()


def test_a_checkpoint_with_offsets_per_topic_restores_and_skips_what_it_covers() -> None:
    lines = list(demo_lines(PLAN))
    store = DictStore()
    w, _ = _worker(store, [], [], every=1000)
    _feed(w, lines[:100])
    w.checkpoint(0)
    # rewrite the checkpoints as an older release wrote them: one offset per topic
    for key, blob in list(store.data.items()):
        st = pickle.loads(blob)
        st.offsets = {TOPIC: st.offsets.pop(f"{TOPIC}@0")}
        store.data[key] = pickle.dumps(st)
    restarted, _ = _worker(store, [], [], every=1000)
    _feed(restarted, lines[80:], start=80)
    assert restarted.skipped == 20
    assert all(set(st.offsets) == {f"{TOPIC}@0"} for st in restarted.engine.services.values())
    uninterrupted, _ = _worker(DictStore(), [], [], every=1000)
    _feed(uninterrupted, lines)
    assert _states(restarted) == _states(uninterrupted)


def test_checkpoints_count_the_samples_of_a_batched_message() -> None:
    store = DictStore()
    w, _ = _worker(store, [], [], every=40, metrics_format="otlp-json")
    messages = [v for _, v in as_otlp(list(demo_lines(PLAN))[:60])]  # 15 of 4 samples
    events = _feed(w, messages)
    # the tenth message brings the partition to 40 samples: a checkpoint acks those ten
    assert [e.acked for e in events] == [True] * 10 + [False] * 5
