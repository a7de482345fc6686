"""What the independent generator draws before it simulates: each family's plan, and the
ground truth the benchmark scores (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Arr = NDArray[Any]
Rng = np.random.Generator

WINDOW_S = 10.0
HISTORY_WINDOWS = 720  # two hours of baseline before the canary starts
_EPOCH = 1_700_000_000


def _loguniform(rng: Rng, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass(frozen=True, slots=True)
class LatencyDist:
    """A request's latency relative to the fleet level, normalised to median 1: ``lognormal``
    (``sigma``), ``gamma`` (``shape``, divided by its ``median``) or ``pareto_tail`` (a lognormal
    body, a share ``ptail`` of requests from a Pareto tail of index ``alpha`` above ``xm``)."""

    kind: str
    sigma: float = 0.0
    shape: float = 0.0
    median: float = 1.0
    ptail: float = 0.0
    alpha: float = 0.0
    xm: float = 0.0

    def draw(self, rng: Rng, n: int) -> Arr:
        if self.kind == "lognormal":
            return np.exp(rng.normal(0.0, self.sigma, n))
        if self.kind == "gamma":
            return rng.gamma(self.shape, 1.0, n) / self.median
        x = np.exp(rng.normal(0.0, self.sigma, n))
        t = rng.random(n) < self.ptail
        k = int(t.sum())
        if k:
            x[t] = self.xm * (rng.pareto(self.alpha, k) + 1.0)
        return x


def _latency_dist(rng: Rng, noisy: bool) -> LatencyDist:
    """A noisy service gets wider shapes and heavier tails, and a tail more often."""
    kinds = ["lognormal", "gamma", "pareto_tail"]
    kind = str(rng.choice([*kinds, "pareto_tail"] if noisy else kinds))
    if kind == "lognormal":
        return LatencyDist(kind, sigma=rng.uniform(0.8, 1.1) if noisy else rng.uniform(0.35, 0.7))
    if kind == "gamma":
        shape = rng.uniform(0.8, 1.3) if noisy else rng.uniform(1.5, 5.0)
        # the median from a fixed large sample, so the normalisation is the same every run
        median = float(np.median(np.random.default_rng(12345).gamma(shape, 1.0, 200000)))
        return LatencyDist(kind, shape=shape, median=median)
    sigma = rng.uniform(0.6, 0.9) if noisy else rng.uniform(0.3, 0.45)
    ptail = rng.uniform(0.03, 0.06) if noisy else rng.uniform(0.005, 0.03)
    alpha = rng.uniform(1.2, 1.6) if noisy else rng.uniform(1.5, 2.5)
    return LatencyDist(kind, sigma=sigma, ptail=ptail, alpha=alpha, xm=rng.uniform(2.0, 3.0))


@dataclass(frozen=True, slots=True)
class Incident:
    """A fleet-wide event, on both sides, never the canary's fault: ``load`` multiplies traffic
    by ``traffic`` and latency by ``lat``; ``dep`` (a dependency outage) adds error probability
    ``err`` and makes a share ``frac`` of requests wait about ``extra`` typical latencies more."""

    kind: Literal["load", "dep"]
    start: float  # seconds after the canary starts
    end: float
    ramp: float
    traffic: float = 1.0
    lat: float = 1.0
    err: float = 0.0
    frac: float = 0.0
    extra: float = 0.0


RegressionKind = Literal["step", "drift", "tail", "err_mult", "err_add", "err_set", "served"]


@dataclass(frozen=True, slots=True)
class Regression:
    """What goes wrong in the canary from the onset. ``size`` is, by kind: the latency factor
    (``step``; ``drift`` reaches it over ``secs``), the share of requests 5-10x slower
    (``tail``), the error-probability factor (``err_mult``), the added probability
    (``err_add``), the probability it becomes (``err_set``), or the share of its traffic the
    canary still serves (``served``)."""

    kind: RegressionKind
    size: float
    secs: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything drawn before the simulation. Times in minutes or seconds after the canary
    start (``t0``, epoch seconds)."""

    family: str
    t0: float
    dur_min: float
    onset_min: float
    total_rps: float
    split0: float
    dist: LatencyDist
    m0: float  # typical latency, seconds
    wander_sd: float
    traffic_wander_sd: float
    beta: float  # latency ~ load ** beta
    err_base: float
    drop_canary: float = 0.0
    drop_baseline: float = 0.0
    late_frac: float = 0.0
    split_steps: tuple[tuple[float, float], ...] = ()
    incidents: tuple[Incident, ...] = ()
    regression: Regression | None = None
    warm_amp: float = 0.0
    warm_secs: float = 0.0

    @property
    def noisy(self) -> bool:
        return self.family == "healthy_noisy"

    @property
    def rolls_back(self) -> bool:
        return self.family.startswith(("reg_", "subtle_"))

    def windows(self) -> tuple[int, int | None]:
        """Canary windows, and the window of the onset (None: never worse)."""
        n_can = round(self.dur_min * 6)
        return n_can, round(self.onset_min * 6) if self.rolls_back else None


Setup = Callable[[Rng, Plan], Plan]


def _base(rng: Rng, family: str, seed: int, index: int) -> Plan:
    """The draws every family starts from. Their order fixes the records: keep it."""
    noisy = family == "healthy_noisy"
    t0 = _EPOCH + seed * 1_000_000 + index * 20_000 + FAMILIES.index(family) * 100_000 // 7
    dur_min = rng.uniform(30, 60)
    onset_min = rng.uniform(3, 15)
    total_rps = _loguniform(rng, 40, 400)
    split0 = rng.uniform(0.05, 0.25)
    dist = _latency_dist(rng, noisy)
    m0 = _loguniform(rng, 0.015, 0.3)
    wander_sd = rng.uniform(0.06, 0.1) if noisy else rng.uniform(0.02, 0.05)
    traffic_wander_sd = 0.15 if noisy else rng.uniform(0.03, 0.08)
    beta = rng.uniform(0.05, 0.25)
    err_base = _loguniform(rng, 0.001, 0.01)
    return Plan(
        family=family,
        t0=float(int(t0 // 10) * 10),
        dur_min=dur_min,
        onset_min=onset_min,
        total_rps=total_rps,
        split0=split0,
        dist=dist,
        m0=m0,
        wander_sd=wander_sd,
        traffic_wander_sd=traffic_wander_sd,
        beta=beta,
        err_base=err_base,
    )


# ---- families: each adjusts the base plan ------------------------------------------------


def _plain(rng: Rng, p: Plan) -> Plan:
    return p


def _low_traffic(rng: Rng, p: Plan) -> Plan:
    canary_rps = rng.uniform(0.5, 2.0)
    split0 = rng.uniform(0.05, 0.2)
    return replace(p, split0=split0, total_rps=canary_rps / split0)


def _small_canary(rng: Rng, p: Plan) -> Plan:
    return replace(p, split0=0.05, total_rps=_loguniform(rng, 200, 800))


def _equal(rng: Rng, p: Plan) -> Plan:
    return replace(p, split0=0.5)


def _warmup(rng: Rng, p: Plan) -> Plan:
    amp = rng.uniform(0.2, 0.6)
    return replace(p, warm_amp=amp, warm_secs=rng.uniform(60, 180))


def _dropped(rng: Rng, p: Plan) -> Plan:
    drop_canary = rng.uniform(0.1, 0.2)
    return replace(p, drop_canary=drop_canary, drop_baseline=rng.uniform(0.1, 0.2))


def _split_steps(rng: Rng, p: Plan) -> Plan:
    s1 = rng.uniform(6, 12) * 60
    s2 = s1 + rng.uniform(6, 12) * 60
    steps = ((s1, 0.25), (s2, 0.5))
    return replace(p, split0=0.05, split_steps=steps, dur_min=max(p.dur_min, s2 / 60 + 12))


def _out_of_order(rng: Rng, p: Plan) -> Plan:
    return replace(p, late_frac=rng.uniform(0.2, 0.5))


def _load_incident(rng: Rng, start: float, length: float) -> Incident:
    ramp = rng.uniform(20, 60)
    traffic = rng.uniform(1.5, 3.0)
    return Incident("load", start, start + length, ramp, traffic, lat=rng.uniform(1.5, 3.0))


def _load_spike(rng: Rng, p: Plan) -> Plan:
    length = rng.uniform(3, 10) * 60
    start = rng.uniform(3, max(4, p.dur_min - length / 60 - 3)) * 60
    return replace(p, incidents=(_load_incident(rng, start, length),))


def _dep_outage(rng: Rng, p: Plan) -> Plan:
    length = rng.uniform(2, 8) * 60
    start = rng.uniform(3, max(4, p.dur_min - length / 60 - 3)) * 60
    ramp = rng.uniform(10, 30)
    err = rng.uniform(0.05, 0.3)
    frac = rng.uniform(0.3, 1.0)
    extra = rng.uniform(0.5, 3.0)
    dep = Incident("dep", start, start + length, ramp, err=err, frac=frac, extra=extra)
    return replace(p, incidents=(dep,))


def _fixed(kind: RegressionKind, size: float) -> Setup:
    def setup(rng: Rng, p: Plan) -> Plan:
        return replace(p, regression=Regression(kind, size))

    return setup


def _slow_tail(rng: Rng, p: Plan) -> Plan:
    return replace(p, regression=Regression("tail", rng.uniform(0.02, 0.05)))


def _slow_drift(rng: Rng, p: Plan) -> Plan:
    mult = rng.uniform(1.5, 2.0)
    secs = rng.uniform(10, 20) * 60
    dur_min = max(p.dur_min, p.onset_min + secs / 60 + 5)
    return replace(p, regression=Regression("drift", mult, secs), dur_min=dur_min)


def _errors_low_traffic(rng: Rng, p: Plan) -> Plan:
    split0 = rng.uniform(0.05, 0.2)
    rate = rng.uniform(0.10, 0.20)
    return replace(p, split0=split0, total_rps=1.0 / split0, regression=Regression("err_set", rate))


def _during_incident(rng: Rng, p: Plan) -> Plan:
    """A canary step that starts while a load spike is on, a quarter to three quarters in."""
    rng.uniform(3, 10)  # a length the first version drew, then replaced: kept for the records
    length = rng.uniform(5, 10) * 60
    start = max((p.onset_min - rng.uniform(1, 3)) * 60, 60.0)
    onset_min = (start + rng.uniform(0.25, 0.75) * length) / 60
    incident = _load_incident(rng, start, length)
    return replace(
        p, onset_min=onset_min, regression=Regression("step", 1.5), incidents=(incident,)
    )


def _split_change(rng: Rng, p: Plan) -> Plan:
    """A canary step within a minute of one of the traffic-split steps."""
    p = _split_steps(rng, p)
    step = p.split_steps[int(rng.integers(0, 2))][0]
    onset_min = (step + rng.uniform(-60, 60)) / 60
    return replace(p, onset_min=onset_min, regression=Regression("step", rng.uniform(1.4, 2.0)))


def _late_records(rng: Rng, p: Plan) -> Plan:
    p = _out_of_order(rng, p)
    if rng.random() < 0.5:
        return replace(p, regression=Regression("step", rng.uniform(1.4, 2.0)))
    return replace(p, regression=Regression("err_mult", 10.0))


# The order matters: a family's position seeds its scenarios.
_SETUPS: dict[str, Setup] = {
    "healthy_plain": _plain,
    "healthy_noisy": _plain,  # noisy shapes and wander come from _base
    "healthy_lowtraffic": _low_traffic,
    "healthy_small_canary": _small_canary,
    "healthy_equal": _equal,
    "healthy_warmup": _warmup,
    "healthy_dropped": _dropped,
    "healthy_split_steps": _split_steps,
    "healthy_out_of_order": _out_of_order,
    "shared_load_spike": _load_spike,
    "shared_dep_outage": _dep_outage,
    "reg_latency_1.4x": _fixed("step", 1.4),
    "reg_latency_2x": _fixed("step", 2.0),
    "reg_slow_tail": _slow_tail,
    "reg_slow_drift": _slow_drift,
    "reg_errors_x10": _fixed("err_mult", 10.0),
    "reg_errors_plus2pp": _fixed("err_add", 0.02),
    "reg_errors_lowtraffic": _errors_low_traffic,
    "reg_throughput_halved": _fixed("served", 0.5),
    "reg_during_incident": _during_incident,
    "reg_split_change": _split_change,
    "reg_late_records": _late_records,
    "subtle_latency_1.15x": _fixed("step", 1.15),
    "subtle_errors_x2": _fixed("err_mult", 2.0),
}
FAMILIES: tuple[str, ...] = tuple(_SETUPS)


# ---- stress variants: conditions the families leave out ----------------------------------


def _after_incident(rng: Rng, p: Plan) -> Plan:
    """A shared load spike early in the canary; a regression starts 5-15 minutes after it ends,
    when the incident has left the fleet but may still sit in a judge's slower averages."""
    length = rng.uniform(3, 8) * 60
    start = rng.uniform(2, 10) * 60
    incident = _load_incident(rng, start, length)
    if not p.rolls_back:
        return replace(p, incidents=(incident,))
    return replace(p, incidents=(incident,), onset_min=(incident.end / 60 + rng.uniform(5, 15)))


# name: (families it applies to, what it changes); its draws come from a generator of their own,
# so the family's own draws, and every record a stress does not change, stay as they were
STRESSES: dict[str, tuple[tuple[str, ...], Setup]] = {
    "after_incident": (
        ("healthy_plain", "healthy_small_canary", "reg_latency_1.4x", "reg_latency_2x"),
        _after_incident,
    ),
}


def draw_plan(family: str, seed: int, index: int, stress: str | None = None) -> tuple[Rng, Plan]:
    """The scenario's generator and plan; the simulation goes on drawing from the same
    generator, so the plan is drawn again (the same) rather than stored with its state."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, FAMILIES.index(family), index]))
    plan = _SETUPS[family](rng, _base(rng, family, seed, index))
    if stress is not None:
        families, setup = STRESSES[stress]
        if family not in families:
            raise ValueError(f"stress {stress!r} does not apply to {family!r}")
        key = [seed, FAMILIES.index(family), index, 1 + list(STRESSES).index(stress)]
        plan = setup(np.random.default_rng(np.random.SeedSequence(key)), plan)
    if plan.rolls_back:  # leave a quarter of an hour to catch it
        plan = replace(plan, dur_min=max(plan.dur_min, plan.onset_min + 15))
    return rng, plan


# ---- the scenario as the benchmark sees it -----------------------------------------------


@dataclass(frozen=True, slots=True)
class IndependentSpec:
    """One scenario's ground truth, with the fields the benchmark's scoring and report read
    (named as on a ScenarioSpec); ``params``: the plan, for the record."""

    name: str
    family: str
    seed: int
    index: int
    should_rollback: bool
    onset: float | None  # event time the canary became worse; None when it never did
    subtle: bool
    service: str
    canary_start: float
    canary_end: float
    params: dict[str, Any] = field(default_factory=dict)
    stress: str | None = None

    def summary(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (written beside the generated records)."""
        return asdict(self)


def _service(family: str, index: int) -> str:
    return f"{family.replace('_', '-').replace('.', 'p')}-{index}"


def build(family: str, seed: int, index: int, stress: str | None = None) -> IndependentSpec:
    """The ``index``-th scenario of ``family`` under ``seed`` (and ``stress``, a variant of
    :data:`STRESSES`)."""
    _, p = draw_plan(family, seed, index, stress)
    n_can, onset_w = p.windows()
    return IndependentSpec(
        name=f"{family}-{index}",
        family=family,
        seed=seed,
        index=index,
        should_rollback=p.rolls_back,
        onset=None if onset_w is None else p.t0 + onset_w * WINDOW_S,
        subtle=family.startswith("subtle_"),
        service=_service(family, index),
        canary_start=p.t0,
        canary_end=p.t0 + n_can * WINDOW_S,
        params=asdict(p),
        stress=stress,
    )
