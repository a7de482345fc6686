"""Scenario families: healthy canaries, shared incidents, regressions and subtle regressions,
each with magnitudes and timings drawn from a seed.

Who calls this: :mod:`benchmarks.canary_scenarios` (``build(family, seed, index)``) and the tests.
What it promises: the same (family, seed, index) gives the same spec; each spec carries its
ground truth (``should_rollback``, ``onset``: the event time the canary became worse, ``None``
when it never did). A held-out set is the same families under another seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from benchmarks.scenarios.spec import Effect, ScenarioSpec

HISTORY_S = 2 * 3600.0
INTERVAL_S = 10.0
_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z

Builder = Callable[[random.Random, ScenarioSpec], ScenarioSpec]


def _loguniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _base(rng: random.Random, family: str, seed: int, index: int) -> ScenarioSpec:
    """A healthy rollout with randomised service characteristics."""
    t0 = _EPOCH + rng.randrange(0, 30 * 86400 // 10) * 10.0
    cs = t0 + HISTORY_S
    duration = rng.uniform(20.0, 30.0) * 60.0
    ce = cs + round(duration / INTERVAL_S) * INTERVAL_S
    weight = rng.choice((0.05, 0.1, 0.2))
    return ScenarioSpec(
        name=f"{family}-{index}",
        family=family,
        seed=seed,
        should_rollback=False,
        onset=None,
        subtle=False,
        service=f"svc-{family.replace('_', '-')}-{index}",
        namespace="bench",
        t0=t0,
        canary_start=cs,
        canary_end=ce,
        interval=INTERVAL_S,
        total_rps=_loguniform(rng, 100.0, 1500.0),
        daily_amplitude=rng.uniform(0.2, 0.5),
        daily_phase=rng.random(),
        split=((cs, weight),),
        baseline_mode="stable",
        latency_median=_loguniform(rng, 0.02, 0.3),
        latency_sigma=rng.uniform(0.35, 0.6),
        tail_fraction=rng.uniform(0.002, 0.008),
        tail_k=rng.uniform(3.0, 6.0),
        level_noise=rng.uniform(0.01, 0.03),
        error_p=_loguniform(rng, 0.0005, 0.005),
    )


def _onset(rng: random.Random, s: ScenarioSpec) -> float:
    """Half the regressions start with the canary; the others minutes later (a code path
    reached later, a cache expiring), always leaving at least 12 minutes to catch them."""
    if rng.random() < 0.5:
        return s.canary_start
    latest = min(10.0, (s.canary_end - s.canary_start) / 60.0 - 12.0)
    return s.canary_start + round(rng.uniform(2.0, max(latest, 2.0)) * 6.0) * 10.0


def _regress(
    rng: random.Random, s: ScenarioSpec, kind: Any, factor: float, **kw: Any
) -> ScenarioSpec:
    onset = kw.pop("onset", None) or _onset(rng, s)
    eff = Effect(kind, "canary", onset, s.canary_end + 1.0, factor, kw.pop("ramp", 0.0))
    return replace(
        s, should_rollback=True, onset=onset, effects=(*s.effects, eff), notes={"factor": factor}
    )


def _shared_spike(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    start = s.canary_start + rng.uniform(3.0, 10.0) * 60.0
    eff = Effect(
        "load", "both", start, start + rng.uniform(5.0, 10.0) * 60.0, rng.uniform(2.0, 3.0), 60.0
    )
    return replace(s, effects=(*s.effects, eff))


def _split_steps(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    step = rng.uniform(4.0, 6.0) * 60.0
    weights = (0.05, 0.1, 0.25, 0.5)
    split = tuple(
        (s.canary_start + round(i * step / 10.0) * 10.0, w) for i, w in enumerate(weights)
    )
    return replace(s, split=split)


# ---- healthy ------------------------------------------------------------------------------


def healthy_plain(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return s


def healthy_noisy(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(
        s,
        latency_sigma=rng.uniform(0.7, 0.9),
        tail_fraction=rng.uniform(0.01, 0.02),
        jitter=rng.uniform(0.1, 0.2),
        total_rps=_loguniform(rng, 60.0, 300.0),
    )


def healthy_low_traffic(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(s, total_rps=_loguniform(rng, 10.0, 40.0), split=((s.canary_start, 0.05),))


def healthy_small_canary(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(s, split=((s.canary_start, 0.05),))


def healthy_equal_baseline(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(s, baseline_mode="equal")


def healthy_warmup(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    eff = Effect(
        "warmup",
        "canary",
        s.canary_start,
        s.canary_end,
        rng.uniform(1.3, 1.6),
        rng.uniform(30.0, 60.0),
    )
    return replace(s, effects=(eff,))


def healthy_dropped(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    gap_start = s.canary_start + round(rng.uniform(5.0, 12.0) * 6.0) * 10.0
    return replace(
        s,
        drop_fraction=rng.uniform(0.1, 0.2),
        gaps=((gap_start, gap_start + rng.choice((60.0, 90.0, 120.0))),),
    )


def healthy_split_steps(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _split_steps(rng, s)


def healthy_out_of_order(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(s, max_lateness=15.0)


# ---- shared incidents (both sides degrade: never the canary's fault) ---------------------


def shared_load_spike(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    s = _shared_spike(rng, s)
    spike = s.effects[-1]
    errs = Effect("error_add", "both", spike.start, spike.end, rng.uniform(0.002, 0.01), 60.0)
    return replace(s, effects=(*s.effects, errs))


def shared_dependency_outage(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    start = s.canary_start + rng.uniform(3.0, 12.0) * 60.0
    end = start + rng.uniform(2.0, 5.0) * 60.0
    return replace(
        s,
        effects=(
            Effect("error_add", "both", start, end, rng.uniform(0.05, 0.2)),
            Effect("latency", "both", start, end, rng.uniform(1.5, 2.5)),
        ),
    )


# ---- regressions -------------------------------------------------------------------------


def reg_latency_1_4x(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _regress(rng, s, "latency", rng.uniform(1.35, 1.5))


def reg_latency_2x(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _regress(rng, s, "latency", rng.uniform(1.8, 2.3))


def reg_slow_tail(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    # p99 up, p50 (nearly) not: 3-6% of requests become tail_k times slower.
    return _regress(rng, s, "tail", rng.uniform(0.03, 0.06))


def reg_slow_drift(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    # a leak: latency climbs linearly to 2x over 8-12 minutes; onset is where the climb starts
    return _regress(rng, s, "latency", 2.0, ramp=rng.uniform(8.0, 12.0) * 60.0)


def reg_errors_x10(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _regress(rng, s, "error_mult", rng.uniform(8.0, 12.0))


def reg_errors_plus2(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _regress(rng, s, "error_add", rng.uniform(0.015, 0.025))


def reg_errors_low_traffic(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    s = healthy_low_traffic(rng, s)
    return _regress(rng, s, "error_add", rng.uniform(0.05, 0.1))


def reg_throughput_halved(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return _regress(rng, s, "throughput", rng.uniform(0.4, 0.6))


def reg_during_incident(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    s = _shared_spike(rng, s)
    spike = s.effects[-1]
    onset = spike.start + round(rng.uniform(0.5, 3.0) * 6.0) * 10.0
    return _regress(rng, s, "latency", rng.uniform(1.8, 2.3), onset=onset)


def reg_split_change(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    s = _split_steps(rng, s)
    step_ts = s.split[rng.randrange(1, len(s.split) - 1)][0]
    onset = step_ts + rng.choice((0.0, 30.0, 60.0))
    if rng.random() < 0.5:
        return _regress(rng, s, "latency", rng.uniform(1.5, 2.0), onset=onset)
    return _regress(rng, s, "error_mult", rng.uniform(8.0, 12.0), onset=onset)


def reg_late_records(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    s = replace(s, max_lateness=15.0)
    return _regress(rng, s, "latency", rng.uniform(1.5, 2.0))


# ---- subtle (reported separately: below what most teams would roll back for) -------------


def subtle_latency_1_15x(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(_regress(rng, s, "latency", rng.uniform(1.12, 1.18)), subtle=True)


def subtle_errors_x2(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
    return replace(_regress(rng, s, "error_mult", rng.uniform(1.8, 2.2)), subtle=True)


FAMILIES: dict[str, Builder] = {
    f.__name__: f
    for f in (
        healthy_plain,
        healthy_noisy,
        healthy_low_traffic,
        healthy_small_canary,
        healthy_equal_baseline,
        healthy_warmup,
        healthy_dropped,
        healthy_split_steps,
        healthy_out_of_order,
        shared_load_spike,
        shared_dependency_outage,
        reg_latency_1_4x,
        reg_latency_2x,
        reg_slow_tail,
        reg_slow_drift,
        reg_errors_x10,
        reg_errors_plus2,
        reg_errors_low_traffic,
        reg_throughput_halved,
        reg_during_incident,
        reg_split_change,
        reg_late_records,
        subtle_latency_1_15x,
        subtle_errors_x2,
    )
}


def group_of(family: str) -> str:
    """``healthy``, ``shared``, ``regression`` or ``subtle``."""
    return {"healthy": "healthy", "shared": "shared", "reg": "regression"}.get(
        family.split("_", 1)[0], "subtle"
    )


def build(family: str, seed: int, index: int) -> ScenarioSpec:
    """The ``index``-th scenario of ``family`` under ``seed``."""
    rng = random.Random(f"{seed}:{family}:{index}")
    scenario_seed = rng.getrandbits(63)
    return FAMILIES[family](rng, _base(rng, family, scenario_seed, index))
