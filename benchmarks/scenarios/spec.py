"""What one canary scenario is: its service, traffic, latency and error model, what goes wrong
when, and its ground truth.

Who uses this: :mod:`benchmarks.scenarios.families` builds specs from a seed,
:mod:`benchmarks.scenarios.simulate` turns a spec into native records, the benchmark scores
judges against ``should_rollback`` and ``onset``. Specs are plain frozen values (JSON-able via
:meth:`ScenarioSpec.summary`) so a held-out set is just another seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Side = Literal["canary", "both"]
EffectKind = Literal[
    "latency",  # multiply every request's latency by `factor` (ramped over `ramp` seconds)
    "tail",  # a fraction `factor` of requests become `tail_k` times slower (p99 up, p50 not)
    "error_mult",  # multiply the error probability by `factor`
    "error_add",  # add `factor` (a probability) to the error probability
    "throughput",  # the side serves `factor` of the traffic its share implies
    "load",  # total traffic multiplied by `factor` (both sides; latency follows load)
    "warmup",  # canary latency times (1 + (factor-1) * exp(-(t - start) / ramp))
]


@dataclass(frozen=True, slots=True)
class Effect:
    """A change to the generated metrics between ``start`` and ``end`` (event time)."""

    kind: EffectKind
    side: Side
    start: float
    end: float
    factor: float
    ramp: float = 0.0  # seconds to reach `factor` linearly (0: a step); warm-up: decay time


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """One generated rollout and its ground truth.

    Times are event-time epoch seconds. Before ``canary_start`` only the baseline reports (its
    history); from ``canary_start`` to ``canary_end`` both do, every ``interval`` seconds.
    ``split`` is the canary's traffic share over time, as ``(from_ts, weight)`` steps.
    ``baseline_mode``: ``stable`` (the baseline is the rest of the fleet, share ``1 - weight``) or
    ``equal`` (a same-size baseline started with the canary, share ``weight``; before it the
    stable fleet's history is reported as baseline).
    """

    name: str
    family: str
    seed: int
    should_rollback: bool
    onset: float | None
    subtle: bool
    service: str
    namespace: str
    t0: float
    canary_start: float
    canary_end: float
    interval: float
    total_rps: float
    daily_amplitude: float
    daily_phase: float
    split: tuple[tuple[float, float], ...]
    baseline_mode: Literal["stable", "equal"]
    latency_median: float
    latency_sigma: float
    tail_fraction: float
    tail_k: float
    level_noise: float  # sd of each side's slowly wandering log latency level (independent)
    error_p: float
    effects: tuple[Effect, ...] = ()
    jitter: float = 0.0  # sd of independent per-window log latency noise (GC, scheduling)
    drop_fraction: float = 0.0  # canary windows whose records are lost
    gaps: tuple[tuple[float, float], ...] = ()  # canary reports nothing in these spans
    max_lateness: float = 2.0  # records arrive up to this many seconds after their ts
    canary_revision: str = "r2"
    baseline_revision: str = "r1"
    notes: dict[str, float] = field(default_factory=dict)

    def weight_at(self, ts: float) -> float:
        w = 0.0
        for since, weight in self.split:
            if ts >= since:
                w = weight
        return w

    def summary(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (written beside the generated records)."""
        d = asdict(self)
        d["effects"] = [asdict(e) for e in self.effects]
        return d
