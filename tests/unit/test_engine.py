"""The pure decision core: what it decides on small synthetic streams, and its promises about
event time, revisions and checkpoints."""

from __future__ import annotations

import pickle

from config.schema import SentinelConfig
from detector.core.engine import Engine
from detector.core.types import Action, Decision, LogRecord, Role, Sample, SignalKind, Verdict
from tests.unit.streams import T0, stream


def run(samples: list[Sample], cfg: SentinelConfig | None = None) -> list[Decision]:
    e = Engine(cfg or SentinelConfig())
    out: list[Decision] = []
    for s in samples:
        out += e.process(s)
    return out


def rollbacks(ds: list[Decision]) -> list[Decision]:
    return [d for d in ds if d.action is Action.ROLLBACK]


def test_healthy_canary_is_never_rolled_back() -> None:
    for seed in range(5):
        assert rollbacks(run(stream(seed=seed))) == []


def test_latency_regression_is_rolled_back_once_soon_after_onset() -> None:
    samples = stream(latency=lambda role, m: 2.0 if role == "canary" and m >= 10 else 1.0)
    ds = rollbacks(run(samples))
    assert len(ds) == 1
    d = ds[0]
    assert d.verdict is Verdict.REGRESSION and d.revision == "2" and d.service == "web"
    assert T0 + 600 <= d.ts <= T0 + 600 + 60
    assert d.signals[0].signal == "latency_p99_seconds"
    assert d.signals[0].effect is not None and d.signals[0].effect > 1.5


def test_error_regression_is_caught_from_counts() -> None:
    samples = stream(errors=lambda role, m: 10.0 if role == "canary" and m >= 8 else 1.0)
    (d,) = rollbacks(run(samples))
    assert d.signals[0].signal == "error_rate"
    assert d.ts <= T0 + 480 + 60


def test_sparse_errors_against_a_clean_baseline_fail() -> None:
    # Kayenta #426: canary [0, 1, 2, 1, 0, 0] errors vs a baseline of zeros passes there
    e = Engine(SentinelConfig())
    out: list[Decision] = []
    pattern = [0, 1, 2, 1, 0, 0] * 8
    for i, errs in enumerate(pattern):
        ts = T0 + 10 * i
        out += e.process(Sample(ts, "s", "d", Role.BASELINE, "error_rate", 0.0, count=2000))
        out += e.process(Sample(ts, "s", "d", Role.CANARY, "error_rate", errs / 100, count=100))
    assert len(rollbacks(out)) == 1


def test_shared_incident_alerts_and_does_not_roll_back() -> None:
    incident = lambda role, m: 3.0 if 12 <= m < 15 else 1.0  # noqa: E731
    ds = run(stream(minutes=25, latency=incident))
    assert rollbacks(ds) == []
    verdicts = [d.verdict for d in ds]
    assert Verdict.ANOMALY in verdicts
    assert verdicts.index(Verdict.RECOVERED) > verdicts.index(Verdict.ANOMALY)


def test_no_data_alerts_and_recovers_without_rolling_back() -> None:
    samples = [
        s
        for s in stream(minutes=20)
        if not (s.role is Role.CANARY and 10 * 60 <= s.ts - T0 < 14 * 60)
    ]
    ds = run(samples)
    assert rollbacks(ds) == []
    assert [d.verdict for d in ds if d.verdict is Verdict.NO_DATA]
    assert all(d.action is Action.ALERT for d in ds if d.verdict is Verdict.NO_DATA)
    assert ds[-1].verdict is Verdict.RECOVERED
    assert ds[-1].recovers is Verdict.NO_DATA


def test_swapped_arrival_within_a_pair_decides_the_same() -> None:
    samples = stream(latency=lambda role, m: 1.6 if role == "canary" and m >= 9 else 1.0)
    steps: dict[int, list[Sample]] = {}
    for s in samples:
        steps.setdefault(int((s.ts - T0) // 10), []).append(s)
    # each 10 s step: the canary's samples arrive before the baseline's instead of after
    swapped = [
        s
        for _, group in sorted(steps.items())
        for s in sorted(group, key=lambda s: s.role is Role.BASELINE)
    ]
    assert swapped != samples
    ds = run(samples)
    assert rollbacks(ds) and ds == run(swapped)


def test_records_later_than_the_allowed_lateness_are_dropped_and_counted() -> None:
    e = Engine(SentinelConfig(allowed_lateness_seconds=30))
    e.process(Sample(T0 + 100, "s", "d", Role.BASELINE, "error_rate", 0.0, count=10))
    e.process(Sample(T0 + 75, "s", "d", Role.BASELINE, "error_rate", 0.0, count=10))
    e.process(Sample(T0 + 60, "s", "d", Role.BASELINE, "error_rate", 0.0, count=10))
    assert e.stats.late == 1
    assert e.services["s"].late == 1


def test_a_new_revision_starts_a_new_rollout() -> None:
    bad = lambda role, m: 2.0 if role == "canary" and m >= 8 else 1.0  # noqa: E731
    first = stream(minutes=15, latency=bad, revision="2")
    second = [
        s for s in stream(minutes=35, latency=bad, revision="3", seed=9) if s.ts > first[-1].ts + 1
    ]
    ds = run(first + second)
    assert [d.revision for d in rollbacks(ds)] == ["2", "3"]
    replaced = [d for d in ds if d.verdict is Verdict.RECOVERED and d.revision == "2"]
    assert len(replaced) == 1


def test_late_records_of_a_replaced_revision_are_ignored() -> None:
    e = Engine(SentinelConfig())
    e.process(Sample(T0 + 100, "s", "d", Role.CANARY, "x", 1.0, labels={"revision": "3"}))
    e.process(Sample(T0 + 95, "s", "d", Role.CANARY, "x", 1.0, labels={"revision": "2"}))
    assert e.services["s"].policy.revision == "3"
    assert e.stats.stale == 1


def test_a_pickled_checkpoint_continues_exactly() -> None:
    samples = stream(latency=lambda role, m: 1.5 if role == "canary" and m >= 10 else 1.0)
    whole = run(samples)
    e = Engine(SentinelConfig())
    out: list[Decision] = []
    for s in samples[: len(samples) // 2]:
        out += e.process(s)
    blob = pickle.dumps(e.services["web"])
    e2 = Engine(SentinelConfig())
    e2.restore(pickle.loads(blob))
    for s in samples[len(samples) // 2 :]:
        out += e2.process(s)
    assert out == whole and rollbacks(whole)


def test_unknown_signals_are_gauges_and_never_roll_back() -> None:
    e = Engine(SentinelConfig())
    out: list[Decision] = []
    for i in range(60):
        ts = T0 + 10 * i
        out += e.process(Sample(ts, "s", "d", Role.BASELINE, "queue_depth", 10.0 + i % 3))
        out += e.process(Sample(ts, "s", "d", Role.CANARY, "queue_depth", 500.0 + i % 3))
    assert e.services["s"].signals["queue_depth"].kind is SignalKind.GAUGE
    assert rollbacks(out) == []


def test_error_logs_become_a_signal_that_can_roll_back() -> None:
    e = Engine(SentinelConfig())
    out: list[Decision] = []
    for i in range(600):
        ts = T0 + i * 2.0
        for role in (Role.BASELINE, Role.CANARY):
            level = "info"
            if (role is Role.CANARY and i > 300 and i % 3 == 0) or i % 50 == 0:
                level = "error"
            out += e.process(LogRecord(ts, "s", "d", role, level, f"request {i} done", {}))
    (d,) = rollbacks(out)
    assert d.signals[0].signal == "log_error_rate"
    assert d.ts > T0 + 600


def test_equal_settings_and_signal_names_are_shared_across_services() -> None:
    cfg = SentinelConfig.model_validate(
        {"services": {"b": {"signals": {"latency_p99_seconds": {"min_effect_pct": 30}}}}}
    )
    e = Engine(cfg)
    for svc in ("a", "b", "c"):
        for sig in ("latency_p99_seconds", "requests_per_second"):
            e.process_sample(Sample(T0, svc, "default", Role.CANARY, sig, 1.0, count=10))
    a, b, c = (e.services[s].signals for s in ("a", "b", "c"))
    p99 = "latency_p99_seconds"
    assert a[p99].settings is c[p99].settings  # equal values: one object
    assert b[p99].settings is not a[p99].settings and b[p99].settings.min_effect_pct == 30
    assert a["requests_per_second"].settings is c["requests_per_second"].settings
    # restored checkpoints share them too, and keep the values they were written with
    restored = Engine(cfg)
    for s in ("a", "b", "c"):
        restored.restore(pickle.loads(pickle.dumps(e.services[s])))
    ra, rb, rc = (restored.services[s].signals for s in ("a", "b", "c"))
    assert ra[p99].settings is rc[p99].settings and ra[p99].name is rc[p99].name
    assert rb[p99].settings.min_effect_pct == 30 and rb[p99].settings is not ra[p99].settings
