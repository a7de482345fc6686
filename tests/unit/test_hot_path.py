"""The shortcuts of the per-record path decide exactly as the plain path does: batch feeding and
its written-out path for common samples, ticks skipped while no canary reports, count-tested
signals without noise trackers, and checkpoints written before the plain-float anomaly model."""

from __future__ import annotations

import copy
import math
import pickle
import random
from collections.abc import Callable, Iterable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.scenarios import build, generate
from config.detection import DetectionSettings
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


def test_checkpoints_written_before_histogram_buckets_continue_exactly() -> None:
    samples = _samples(_lines("reg_latency_2x"))
    whole, _ = _run(samples)
    half = len(samples) * 2 // 3
    old = Engine(SentinelConfig())
    out: list[Decision] = []
    for s in samples[:half]:
        out += old.process(s)
    (service,) = old.services
    state = old.services[service]
    for sig in state.signals.values():
        # the layout of earlier checkpoints: no reading, settings without the new fields
        del sig.reading
        stale = sig.settings.__dict__.copy()
        del stale["histogram_buckets"], stale["quantile"], stale["exact_quantiles"]
        sig.settings = DetectionSettings.model_construct(**stale)
        object.__setattr__(sig.settings, "__dict__", stale)
    restored = Engine(SentinelConfig())
    restored.restore(pickle.loads(pickle.dumps(state)))
    for sig in restored.services[service].signals.values():
        assert sig.settings == DetectionSettings() or sig.settings.min_effect_pct != 10.0
        assert sig.reading is None
    for s in samples[half:]:
        out += restored.process(s)
    assert out == whole and any(d.action.value == "rollback" for d in whole)


@pytest.mark.parametrize(
    "detection",
    [
        DetectionSettings(histogram_buckets=(0.05, 0.1, 0.25, 0.5)),
        DetectionSettings(exact_quantiles=True),
    ],
    ids=["buckets", "exact"],
)
def test_a_checkpoint_continues_exactly_with_what_settings_derive_derived_again(
    detection: DetectionSettings,
) -> None:
    config = SentinelConfig(detection=detection)
    samples = _samples(_lines("reg_latency_2x"))
    whole: list[Decision] = []
    straight = Engine(config)
    for s in samples:
        whole += straight.process(s)
    half = len(samples) * 2 // 3
    first = Engine(config)
    out: list[Decision] = []
    for s in samples[:half]:
        out += first.process(s)
    (service,) = first.services
    blob = pickle.dumps(first.services[service])
    assert b"tail_read" not in blob and b"reading" not in blob  # derived, not checkpointed
    restored = Engine(config)
    restored.restore(pickle.loads(blob))
    before = first.services[service].signals["latency_p99_seconds"]
    after = restored.services[service].signals["latency_p99_seconds"]
    assert after.reading is before.reading and after.tail_read == before.tail_read
    assert (after.reading is not None) == bool(detection.histogram_buckets)
    assert (after.tail_read > 0.0) == detection.exact_quantiles
    for s in samples[half:]:
        out += restored.process(s)
    assert out == whole and any(d.action.value == "rollback" for d in whole)


class _OtherFormat:
    """The native format under another type: ``feed_all`` takes the general path for every
    line, as for any format but the native one."""

    type_name = "native-other"

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


def test_feed_all_with_another_format_decides_the_same() -> None:
    lines = [ln.encode() for ln in _lines("reg_throughput_halved")]
    mixed = [*lines[:100], b"", b"not json", *lines[100:]]
    fast = Pipeline(SentinelConfig())
    general = Pipeline(SentinelConfig(), metrics_format=_OtherFormat())
    assert general.feed_all(mixed) == fast.feed_all(mixed)
    assert general.bad == fast.bad == {"not_json": 1}
    assert plain(general.engine.services) == plain(fast.engine.services)


def test_feed_all_decides_batches_as_their_records_one_by_one() -> None:
    """A line that is a JSON array (a batch) gives the decisions of its records on lines of
    their own; a record of it that cannot be used is counted and the rest are judged."""
    lines = _lines("reg_errors_x10")
    objs = [orjson.loads(ln) for ln in lines]
    bad = {**objs[7], "value": None}
    singles: list[bytes | str] = [*lines[:7], orjson.dumps(bad), *lines[7:]]
    batched = [
        orjson.dumps([*objs[i : i + 8], *([bad] if i == 0 else [])]) for i in range(0, len(objs), 8)
    ]
    one, many = Pipeline(SentinelConfig()), Pipeline(SentinelConfig())
    decisions = one.feed_all(singles)
    assert any(d.action.value == "rollback" for d in decisions)
    assert many.feed_all(batched) == decisions
    assert many.bad == one.bad == {"wrong_type": 1}
    assert plain(many.engine.services) == plain(one.engine.services)


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


def test_scrapes_half_an_interval_apart_are_all_paired() -> None:
    # two targets scraped about 5 s apart on a 10 s interval, each with 0.3 s of jitter: either
    # neighbour can be just over half an interval away, and then half the samples found no
    # partner (with PAIR_GAP 0.5: 23 of 60 paired here)
    rng = random.Random(3)
    sig = _signal()
    paired = 0
    for i in range(60):
        t = 1000.0 + 10.0 * i
        sig.add(t + rng.uniform(-0.3, 0.3), Role.BASELINE, 0.1, 100, 10.0)
        paired += sig.add(t + 5.0 + rng.uniform(-0.3, 0.3), Role.CANARY, 0.1, 100, 10.0) is not None
    assert paired == 60


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


# -- feed_all's written-out path for common samples ------------------------------------------
_KIND_OF = {
    "latency_p99_seconds": "latency",
    "error_rate": "error_rate",
    "requests_per_second": "throughput",
}
_ABSENT = object()
# field changes: to another good value, to an odd but good one, to a broken one, or removed
_CHANGES: dict[str, list[object]] = {
    "ts": [7, -1.0, "2026-11-27T10:15:00Z", True, None, _ABSENT],
    "service": ["", "other", 5, None, _ABSENT],
    "namespace": ["", "other", ["a"], None, _ABSENT],
    "role": ["stable", "shadow", 1, None, _ABSENT],
    "signal": ["", "new_signal", 3, _ABSENT],
    "kind": ["error_rate", "gauge", "vibes", 2, ["latency"], None, _ABSENT],
    "value": [3, -1.5, "0.2", False, None, _ABSENT],
    "count": [0, -1, 2.0, 1.5, "5", True, None, _ABSENT],
    "labels": [{}, {"revision": "r1"}, {"a": 1}, {"a": "b", "c": None}, ["a"], None, _ABSENT],
}
_change = st.one_of(
    st.none(),
    st.sampled_from(sorted(_CHANGES)).flatmap(
        lambda k: st.tuples(st.just(k), st.sampled_from(_CHANGES[k]))
    ),
)
_step = st.tuples(
    st.sampled_from(["baseline", "canary", "primary"]),
    st.sampled_from(sorted(_KIND_OF)),
    st.sampled_from([0.0, 5.0, 10.0, 10.0, 10.0, -25.0, -45.0, -500.0]),  # lateness is 30 s
    st.sampled_from(["r1", "r1", "r1", "r2", None]),
    _change,
    st.sampled_from(["ascii text", "bytes", "accented text", "accented bytes"]),
)


def _line(i: int, role: str, signal: str, ts: float, rev: str | None) -> dict[str, object]:
    labels = {"weight": "20"} if rev is None else {"revision": rev, "weight": "20"}
    scale = {"latency": 0.2, "error_rate": 0.01, "throughput": 100.0}[_KIND_OF[signal]]
    return {
        "ts": ts,
        "service": "web",
        "namespace": "shop",
        "role": role,
        "signal": signal,
        "kind": _KIND_OF[signal],
        "value": scale * (1.0 + 0.1 * (i % 7)),
        "count": 100 + i % 5,
        "labels": labels,
    }


def _as_sent(obj: dict[str, object], form: str) -> bytes | str:
    if form.startswith("accented"):
        obj = {**obj, "labels": {"note": "d\u00e9j\u00e0 vu"}} if obj.get("labels") else obj
    raw = orjson.dumps({k: v for k, v in obj.items() if v is not _ABSENT})
    return raw if form.endswith("bytes") else raw.decode()


def _history(n: int) -> list[bytes | str]:
    """Both sides of every signal of service ``web``: its state and signals exist."""
    lines: list[bytes | str] = []
    for i in range(n):
        for signal in sorted(_KIND_OF):
            for role in ("baseline", "canary"):
                lines.append(orjson.dumps(_line(i, role, signal, 1000.0 + 10.0 * i, "r1")))
    return lines


def _same_as_general_path(lines: list[bytes | str]) -> None:
    general = Pipeline(SentinelConfig())  # feed, line by line: never the written-out path
    decisions: list[Decision] = []
    for ln in lines:
        decisions += general.feed(ln.encode() if isinstance(ln, str) else ln).decisions
    fast = Pipeline(SentinelConfig())
    assert fast.feed_all(lines) == decisions
    assert fast.bad == general.bad
    assert fast.engine.stats == general.engine.stats
    assert plain(fast.engine.services) == plain(general.engine.services)


@pytest.mark.parametrize("form", ["ascii text", "accented bytes"])
@pytest.mark.parametrize("role", ["baseline", "canary"])
def test_every_field_change_is_folded_as_the_general_path_folds_it(role: str, form: str) -> None:
    for field, values in _CHANGES.items():
        for value in values:
            obj = _line(0, role, "latency_p99_seconds", 1010.0, "r1")
            obj[field] = value
            _same_as_general_path([*_history(1), _as_sent(obj, form)])


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_step, max_size=40), history=st.sampled_from([1, 12]))
def test_the_written_out_path_decides_as_the_general_path(
    steps: list[tuple[str, str, float, str | None, tuple[str, object] | None, str]],
    history: int,
) -> None:
    lines = _history(history)
    ts = 1000.0 + 10.0 * history
    for i, (role, signal, dt, rev, change, form) in enumerate(steps):
        ts += dt
        obj = _line(i, role, signal, ts, rev)
        if change is not None:
            obj[change[0]] = change[1]
        lines.append(_as_sent(obj, form))
    _same_as_general_path(lines)


@pytest.mark.parametrize("family", FAMILIES)
def test_feed_all_decodes_only_uncommon_records_on_the_general_path(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _lines(family)
    general = Pipeline(SentinelConfig())
    decisions: list[Decision] = []
    for ln in lines:
        decisions += general.feed(ln.encode()).decisions
    decoded: list[bytes] = []
    decode = NativeFormat.decode

    def counted(self: NativeFormat, raw: bytes) -> list[Sample | LogRecord]:
        decoded.append(raw)
        return decode(self, raw)

    monkeypatch.setattr(NativeFormat, "decode", counted)
    fast = Pipeline(SentinelConfig())
    assert fast.feed_all(lines) == decisions
    assert plain(fast.engine.services) == plain(general.engine.services)
    # the general path decodes a signal's first sample, the first canary samples of a new
    # revision and late records of a replaced one: a handful, not the stream
    assert 0 < len(decoded) < len(lines) / 50
