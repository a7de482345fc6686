"""The shortcuts of the per-record path decide exactly as the plain path does: batch feeding,
ticks skipped while no canary reports, count-tested signals without noise trackers, and
checkpoints written before the plain-float anomaly model."""

from __future__ import annotations

import copy
import math
import pickle
import random
from collections.abc import Callable, Iterable

import orjson
import pytest

from benchmarks.scenarios import build, generate
from config.schema import SentinelConfig
from detector.core import engine as engine_module
from detector.core import signals as signals_module
from detector.core.engine import Engine
from detector.core.types import Decision, LogRecord, Role, Sample, SignalKind
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


class _BatchFormat:
    """The native format without ``decode_one``: a format whose messages may carry several
    records, decoded through ``decode`` as before the one-record shortcut."""

    type_name = "native-batch"

    def __init__(self) -> None:
        self.native = NativeFormat()

    def decode(self, raw: bytes) -> list[Sample | LogRecord]:
        return self.native.decode(raw)


def test_feed_all_reads_text_as_its_utf8_bytes() -> None:
    lines = _lines("reg_errors_x10")
    good = orjson.loads(lines[0])
    limit = SentinelConfig().kafka.max_record_bytes
    # within the limit in characters, beyond it in bytes: oversized, as its bytes are
    wide = orjson.dumps({**good, "labels": {"note": "\u00e9" * (limit // 2 + 1)}}).decode()
    assert len(wide) <= limit < len(wide.encode())
    accented = orjson.dumps({**good, "service": "caf\u00e9", "labels": {"r": "\u00fc"}}).decode()
    text = [lines[0], wide, *lines[1:50], accented, "  ", *lines[50:]]
    one = Pipeline(SentinelConfig())
    decisions: list[Decision] = []
    for ln in text:
        if ln.strip():
            decisions += one.feed(ln.encode()).decisions
    for fed in (text, [ln.encode() for ln in text]):
        batch = Pipeline(SentinelConfig())
        assert batch.feed_all(fed) == decisions
        assert batch.bad == one.bad == {"oversized": 1}
        assert plain(batch.engine.services) == plain(one.engine.services)
        assert "caf\u00e9" in batch.engine.services


def test_feed_all_without_decode_one_decides_the_same() -> None:
    lines = [ln.encode() for ln in _lines("reg_throughput_halved")]
    mixed = [*lines[:100], b"", b"not json", *lines[100:]]
    fast = Pipeline(SentinelConfig())
    batches = Pipeline(SentinelConfig(), metrics_format=_BatchFormat())
    assert batches.feed_all(mixed) == fast.feed_all(mixed)
    assert batches.bad == fast.bad == {"not_json": 1}
    assert plain(batches.engine.services) == plain(fast.engine.services)


def _signal(kind: SignalKind = SignalKind.LATENCY) -> signals_module.SignalState:
    s = SentinelConfig()
    return signals_module.SignalState("x", kind, s.effective("web", "x"), 100, 10.0)


def test_a_side_alone_keeps_only_its_latest_sample() -> None:
    sig = _signal()
    for i in range(5):  # the baseline alone: each sample replaces the one before
        assert sig.add(10.0 * i, Role.BASELINE, 1.0 + i, 100, 10.0) is None
        assert sig.pending == ([], [(10.0 * i, 1.0 + i, 100, False)])
    sig.add(41.0, Role.CANARY, 2.0, 10, 10.0)  # pairs with the baseline's sample at 40
    assert not any(sig.pending)
    for i in range(3):  # the canary has reported: baseline samples wait for their partners
        sig.add(100.0 + 10.0 * i, Role.BASELINE, 1.0, 100, 10.0)
    assert [item[0] for item in sig.pending[1]] == [100.0, 110.0, 120.0]
    sig.reset_canary()  # a new revision: its canary has never reported
    sig.add(130.0, Role.BASELINE, 1.5, 100, 10.0)
    assert sig.pending == ([], [(130.0, 1.5, 100, False)])
    sig.add(140.0, Role.BASELINE, 1.25, 100, 10.0)
    assert sig.pending == ([], [(140.0, 1.25, 100, False)])


def test_evict_all_drops_what_evict_on_each_signal_drops() -> None:
    rng = random.Random(7)
    for _ in range(200):
        sigs = [_signal() for _ in range(4)]
        for sig in sigs:
            if rng.random() < 0.5:
                sig.last_seen[0] = rng.uniform(0.0, 100.0)
            for lst in sig.pending:
                for _ in range(rng.randrange(4)):  # arrival order, not always time order
                    lst.append((rng.uniform(0.0, 100.0), 1.0, None, False))
        before = rng.uniform(0.0, 100.0)
        each = copy.deepcopy(sigs)
        for sig in each:
            sig.evict(before)
        seen = signals_module.evict_all(sigs, before)
        assert [sig.pending for sig in sigs] == [sig.pending for sig in each]
        assert seen == any(sig.last_seen[0] > -math.inf for sig in sigs)
