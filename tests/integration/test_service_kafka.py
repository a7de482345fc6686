"""The live service against a real Kafka broker: decisions, dead letters, replay equivalence,
and restart from the changelog."""

from __future__ import annotations

import asyncio
import pickle
import signal
from pathlib import Path

import orjson
import pytest

from config.schema import SentinelConfig
from detector.app import STATE_TABLE
from detector.core.engine import Engine, ServiceState
from detector.demo import HEALTHY, REGRESSING, DemoPlan, demo_lines
from detector.localbroker import LocalBroker
from detector.pipeline import Pipeline
from detector.replay import replay_records
from detector.service import offset_key
from tests.engine_state import plain
from tests.integration.harness import (
    ServiceProcess,
    as_otlp,
    batched,
    consumer_lag,
    keyed,
    produce,
    read_all,
    read_records,
    service_with_topics,
)

pytestmark = pytest.mark.integration

Messages = list[tuple[bytes | None, bytes]]
PLAN = DemoPlan(history_minutes=15, canary_minutes=8, regress_at_minute=3)


def malformed(n: int) -> list[tuple[bytes | None, bytes]]:
    """``n`` records that break every rule of the native format, keyed like good ones."""
    good = {
        "ts": 1795760000.0,
        "service": REGRESSING,
        "role": "canary",
        "signal": "error_rate",
        "value": 0.1,
        "count": 10,
    }
    bad: list[bytes] = [
        b"not json at all",
        b"\xff\xfe\x00binary",
        b'"a string"',
        b"[]",
        orjson.dumps({k: v for k, v in good.items() if k != "service"}),
        orjson.dumps({k: v for k, v in good.items() if k != "ts"}),
        orjson.dumps({**good, "value": "high"}),
        orjson.dumps({**good, "role": "shadow"}),
        orjson.dumps({**good, "count": -5}),
        orjson.dumps({**good, "ts": "yesterday"}),
        b'{"ts": 1795760000, "service": "payments", "role": "canary", "signal": "x", "value": NaN}',
        orjson.dumps({**good, "labels": {"pad": "x" * 70000}}),
        orjson.dumps({**good, "value": 1e400 if False else None}),
    ]
    keys = [REGRESSING.encode(), HEALTHY.encode()]
    return [(keys[i % 2], bad[i % len(bad)]) for i in range(n)]


def interleave(
    good: list[tuple[bytes | None, bytes]], bad: list[tuple[bytes | None, bytes]]
) -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = []
    step = max(len(good) // max(len(bad), 1), 1)
    bi = 0
    for i, rec in enumerate(good):
        out.append(rec)
        if i % step == 0 and bi < len(bad):
            out.append(bad[bi])
            bi += 1
    out += bad[bi:]
    return out


def _decisions(recs: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return sorted(
        (r["service"], r["ts"], r["verdict"], r["action"], r["reason"])
        for r in recs
        if r.get("record") == "decision"
    )


def _replayed(lines: list[bytes]) -> list[tuple[object, ...]]:
    cfg = SentinelConfig(namespace="shop")
    return sorted(
        (d.service, d.ts, d.verdict.value, d.action.value, d.reason)
        for d in replay_records(lines, cfg)
    )


def _uninterrupted(lines: list[bytes], cfg: SentinelConfig) -> dict[str, object]:
    """Each service's state after one uninterrupted pass over ``lines``."""
    pipe = Pipeline(cfg)
    for line in lines:
        pipe.feed(line)
    return {name: plain(st) for name, st in pipe.engine.services.items()}


def _checkpointed(
    bootstrap: str, cfg: SentinelConfig
) -> dict[str, tuple[ServiceState, dict[str, int]]]:
    """Each service's last checkpoint in the changelog: its state (offsets taken out, replay
    keeps none), restored as a worker restores it (what the settings derive is not
    checkpointed but derived again), and the source offsets it covers."""
    topic = f"{cfg.kafka.app_id}-{STATE_TABLE}-changelog"
    latest: dict[bytes, bytes] = {}
    for rec in asyncio.run(read_records(bootstrap, topic)):
        if rec.key is not None and rec.value is not None:
            latest[rec.key] = rec.value
    out: dict[str, tuple[ServiceState, dict[str, int]]] = {}
    for key, blob in latest.items():
        st: ServiceState = pickle.loads(blob)
        offsets, st.offsets = st.offsets, {}
        Engine(cfg).restore(st)
        out[key.decode()] = (st, offsets)
    return out


def _last_offsets(bootstrap: str, topic: str) -> dict[str, dict[str, int]]:
    """Per service, the offset of its last record in each partition of ``topic`` (records are
    keyed by service, so each service has one), keyed as the checkpoints key them."""
    last: dict[str, dict[str, int]] = {}
    for rec in asyncio.run(read_records(bootstrap, topic)):
        if rec.key is not None:
            mine = last.setdefault(rec.key.decode(), {})
            source = offset_key(topic, rec.partition)
            mine[source] = max(rec.offset, mine.get(source, -1))
    return last


def _fold_all(
    bootstrap: str, cfg: SentinelConfig, path: Path, tmp_path: Path, messages: Messages
) -> tuple[float, float]:
    """Run the service over ``messages`` until it has committed them all; returns how many
    records it folded and how many it found bad, by its own metrics."""
    svc = ServiceProcess(cfg, path, tmp_path / "service")
    svc.start()
    try:
        assert asyncio.run(produce(bootstrap, cfg.kafka.metrics_topic, messages)) == len(messages)
        svc.wait_for(
            "every message to be processed and committed",
            lambda: consumer_lag(bootstrap, cfg.kafka.app_id, cfg.kafka.metrics_topic) == 0,
        )
        return (
            svc.counted("canary_sentinel_records_total"),
            svc.counted("canary_sentinel_bad_records_total"),
        )
    finally:
        svc.stop()


def test_regression_rolls_back_once_and_bad_records_reach_the_deadletter(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path)
    lines = list(demo_lines(PLAN))
    bad = malformed(1000)
    messages = interleave(keyed(lines), bad)
    assert _fold_all(kafka_broker.bootstrap, cfg, path, tmp_path, messages) == (len(lines), 1000)

    decisions = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic))
    rollbacks = [d for d in decisions if d.get("action") == "rollback"]
    assert [(d["service"], d["namespace"], d["revision"]) for d in rollbacks] == [
        (REGRESSING, "shop", "2")
    ]
    assert rollbacks[0]["ts"] >= PLAN.onset
    assert rollbacks[0]["decided_at"] > 0
    assert not [d for d in decisions if d["service"] == HEALTHY and d["action"] != "none"]
    # the live service decides exactly what replay decides on the clean stream
    assert _decisions(decisions) == _replayed(lines)

    dead = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.deadletter_topic))
    assert len(dead) == 1000
    assert all(d["reason"] and d["kind"] for d in dead)
    assert all(("record" in d) != ("record_base64" in d) for d in dead)
    kinds = {d["kind"] for d in dead}
    assert {
        "not_json",
        "not_object",
        "empty_batch",
        "missing_field",
        "wrong_type",
        "bad_role",
        "negative_count",
        "bad_timestamp",
        "oversized",
    } <= kinds


def test_otlp_batches_fold_every_data_point_and_decide_as_replay_does(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    # the OpenTelemetry Collector's Kafka exporter writes many data points per message; each
    # must be folded once, though they share the message's offset
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path, metrics_format="otlp-json")
    lines = list(demo_lines(PLAN))
    messages = as_otlp(lines)
    assert len(messages) < len(lines)
    assert _fold_all(kafka_broker.bootstrap, cfg, path, tmp_path, messages) == (len(lines), 0)
    decisions = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic))
    assert [d["service"] for d in decisions if d["action"] == "rollback"] == [REGRESSING]
    replayed = replay_records([v for _, v in messages], cfg)
    assert _decisions(decisions) == sorted(
        (d.service, d.ts, d.verdict.value, d.action.value, d.reason) for d in replayed
    )


def test_native_batches_fold_every_record_and_deadletter_only_the_bad_ones(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    # a producer may send a JSON array of records of one service per message: every record is
    # judged, and a record of it that cannot be used goes to the dead-letter topic alone
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path)
    lines = list(demo_lines(PLAN))
    messages = batched(lines, 16)
    assert len(messages) < len(lines) / 8
    spoiled: Messages = []
    bad = []
    for i, (key, body) in enumerate(messages):
        if i % 10 == 0:
            items = orjson.loads(body)
            rec = {**items[0], "value": "slow"}
            bad.append((len(items), rec))
            body = orjson.dumps([*items, rec])
        spoiled.append((key, body))
    assert _fold_all(kafka_broker.bootstrap, cfg, path, tmp_path, spoiled) == (len(lines), len(bad))
    decisions = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic))
    assert [d["service"] for d in decisions if d["action"] == "rollback"] == [REGRESSING]
    assert _decisions(decisions) == _replayed(lines)
    dead = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.deadletter_topic))
    assert sorted((d["index"], d["kind"], orjson.loads(d["record"])["ts"]) for d in dead) == sorted(
        (index, "wrong_type", rec["ts"]) for index, rec in bad
    )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_restores_state_from_the_changelog(
    kafka_broker: LocalBroker, tmp_path: Path, how: int
) -> None:
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path)
    lines = list(demo_lines(PLAN))
    # stop in the middle of the canary, before the regression: the rollback decision then
    # depends on model state learned before the restart
    cut_ts = PLAN.canary_start + 90.0
    first = [ln for ln in lines if orjson.loads(ln)["ts"] < cut_ts]
    rest = lines[len(first) :]
    expected = _replayed(lines)

    def lag() -> int:
        return consumer_lag(kafka_broker.bootstrap, cfg.kafka.app_id, cfg.kafka.metrics_topic)

    svc = ServiceProcess(cfg, path, tmp_path / "service")
    svc.start()
    try:
        asyncio.run(produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(first)))
        svc.wait_for("the first half to be checkpointed and committed", lambda: lag() == 0)
        svc.stop(how)
        # the second half waits in the topic: the restarted worker finds a backlog as soon as
        # its partitions are assigned
        asyncio.run(produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(rest)))
        svc.start()
        # commits follow checkpoints: with nothing left to commit, the restarted worker has
        # checkpointed the whole backlog
        svc.wait_for("every record to be committed after the restart", lambda: lag() == 0)
        svc.wait_for(
            "the decisions of an uninterrupted run",
            lambda: (
                _decisions(asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic)))
                == expected
            ),
        )
        # the first half was committed before the stop: the restarted worker folds exactly the
        # second half, each record once (the first half came from the changelog, and nothing of
        # the second half was lost or folded twice)
        assert svc.counted("canary_sentinel_records_total") == len(rest)
    finally:
        svc.stop()
    decisions = asyncio.run(read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic))
    assert _decisions(decisions) == expected
    assert [d["service"] for d in decisions if d["action"] == "rollback"] == [REGRESSING]
    # what the restarted worker checkpointed is what an uninterrupted run ends with
    saved = _checkpointed(kafka_broker.bootstrap, cfg)
    assert {s: plain(st) for s, (st, _) in saved.items()} == _uninterrupted(lines, cfg)
    # and each service's checkpoint covers its last record in the topic
    last = _last_offsets(kafka_broker.bootstrap, cfg.kafka.metrics_topic)
    assert {s: offsets for s, (_, offsets) in saved.items()} == last
