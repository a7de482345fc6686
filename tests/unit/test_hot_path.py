"""The shortcuts of the per-record path decide exactly as the plain path does: batch feeding,
ticks skipped while no canary reports, count-tested signals without noise trackers, and
checkpoints written before the plain-float anomaly model."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable

import orjson
import pytest

from benchmarks.scenarios import build, generate
from config.schema import SentinelConfig
from detector.core import engine as engine_module
from detector.core import signals as signals_module
from detector.core.engine import Engine
from detector.core.types import Decision, Sample
from detector.pipeline import Pipeline
from detector.replay import replay_records
from detector.sources.native import NativeFormat
from models.anomaly import EWZScoreModel
from tests.engine_state import plain

# no-data episodes, revisions, split changes, late records, error and throughput regressions
FAMILIES = (
    "healthy_dropped",
    "healthy_split_steps",
    "reg_errors_x10",
    "reg_throughput_halved",
    "reg_late_records",
    "shared_load_spike",
)


def _lines(family: str, index: int = 0) -> list[str]:
    return generate(build(family, 1, index))


def _samples(lines: Iterable[str]) -> list[Sample]:
    fmt = NativeFormat()
    out: list[Sample] = []
    for ln in lines:
        (rec,) = fmt.decode(ln.encode())
        assert isinstance(rec, Sample)
        out.append(rec)
    return out


def _run(samples: list[Sample]) -> tuple[list[Decision], object]:
    e = Engine(SentinelConfig())
    out: list[Decision] = []
    for s in samples:
        out += e.process(s)
    return out, plain(e.services)


def test_feed_all_decides_as_feed_one_by_one() -> None:
    lines = [ln.encode() for ln in _lines("reg_errors_x10")]
    extra = [
        b"",
        b"   ",
        b"not json",
        b'{"ts": 1}',
        orjson.dumps(
            {"ts": 1.0, "service": "s", "role": "canary", "level": "error", "message": "x"}
        ),
        b"\t\r\n",
    ]
    mixed: list[bytes] = []
    for i, ln in enumerate(lines):
        mixed.append(ln)
        if i % 97 == 0:
            mixed.append(extra[i // 97 % len(extra)])
    one = Pipeline(SentinelConfig())  # what replay did before feed_all: feed, line by line
    decisions: list[Decision] = []
    for raw in mixed:
        if raw.strip():
            decisions += one.feed(raw).decisions
    batch = Pipeline(SentinelConfig())
    assert batch.feed_all(mixed) == decisions
    assert batch.bad == one.bad and batch.bad["not_json"] > 0
    assert batch.engine.stats == one.engine.stats
    assert plain(batch.engine.services) == plain(one.engine.services)
    assert replay_records([ln.decode() for ln in mixed], SentinelConfig()) == decisions


@pytest.mark.parametrize("family", FAMILIES)
def test_skipped_ticks_decide_the_same(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = _samples(_lines(family))
    fast = _run(samples)
    real: Callable[..., bool] = signals_module.evict_all

    def always_due(signals: Iterable[signals_module.SignalState], before: float) -> bool:
        real(signals, before)
        return True  # the policy's tick runs every time, as it did before the shortcut

    monkeypatch.setattr(engine_module, "evict_all", always_due)
    assert _run(samples) == fast
    if family == "healthy_dropped":
        assert any(d.verdict.value == "no_data" for d in fast[0])


@pytest.mark.parametrize(
    "family", ["reg_errors_x10", "reg_throughput_halved", "reg_split_change", "reg_latency_1_4x"]
)
def test_count_tested_signals_need_no_noise_trackers(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = _samples(_lines(family))
    fast, _ = _run(samples)
    assert any(d.action.value == "rollback" for d in fast)
    monkeypatch.setattr(signals_module, "_COUNT_TESTED", ())  # every kind feeds the trackers
    assert _run(samples)[0] == fast


def test_checkpoints_written_before_ewzscore_continue_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = _samples(_lines("reg_latency_2x"))
    whole, _ = _run(samples)
    half = len(samples) * 2 // 3
    old = Engine(SentinelConfig())
    out: list[Decision] = []
    with monkeypatch.context() as m:
        # the state layout of earlier checkpoints: River-based models, counts held as floats
        m.setattr(signals_module, "EWZScore", EWZScoreModel)
        for s in samples[:half]:
            out += old.process(s)
    (service,) = old.services
    for sig in old.services[service].signals.values():
        assert isinstance(sig.baseline_model, EWZScoreModel)
        for lst in sig.pending:
            lst[:] = [(t, v, -1.0 if c is None else float(c), a) for t, v, c, a in lst]
    restored = Engine(SentinelConfig())
    restored.restore(pickle.loads(pickle.dumps(old.services[service])))
    for s in samples[half:]:
        out += restored.process(s)
    assert out == whole and any(d.action.value == "rollback" for d in whole)
