"""The independent generator's simulation: requests per window and pod, read back as the native
records a scrape would give (see the package docstring)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.scenarios.histogram import LAYOUTS, histogram_quantile
from benchmarks.scenarios.independent.plan import (
    HISTORY_WINDOWS,
    WINDOW_S,
    Arr,
    IndependentSpec,
    Plan,
    RegressionKind,
    Rng,
    draw_plan,
)

Record = dict[str, Any]
_GC_P = 0.03  # chance a pod pauses for GC in a window
_LATE_MAX_S = 15.0


def _ar1(rng: Rng, n: int, sd: float, tau_windows: float) -> Arr:
    """A slow wander in log space: stationary AR(1) with marginal sd ``sd`` and correlation time
    ``tau_windows`` windows."""
    phi = math.exp(-1.0 / tau_windows)
    eps = rng.normal(0, sd * math.sqrt(1 - phi * phi), n)
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return x


def _pulse(t: Arr, start: float, end: float, ramp: float) -> Arr:
    """0..1 trapezoid with linear ramps of ``ramp`` seconds: incidents and bursts come and go
    gradually, not as steps."""
    up = np.clip((t - start) / ramp, 0, 1)
    down = np.clip((end - t) / ramp, 0, 1)
    return np.minimum(up, down)


# ---- the simulation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fleet:
    """Per-window conditions both sides share."""

    load: Arr  # total requests per second
    level: Arr  # latency of a typical request on a typical pod, seconds
    err_add: Arr  # error probability from error bursts and dependency outages
    dep_frac: Arr  # share of requests waiting on a failing dependency
    dep_extra: float


@dataclass(frozen=True, slots=True)
class _Canary:
    """Per-window changes to the canary: warm-up and the regression."""

    lat: Arr
    tail: Arr
    err_mult: Arr
    err_add: Arr
    err_set: Arr  # error probability it is set to; negative: not set
    served: Arr


def _traffic(rng: Rng, p: Plan, tw: Arr) -> Arr:
    """Requests per second: daily curve, slow wander, short bursts of 1.3-2x."""
    amp = rng.uniform(0.15, 0.35)
    phase = rng.uniform(0, 2 * math.pi)
    load = p.total_rps * (1 + amp * np.sin(2 * math.pi * (p.t0 + tw) / 86400 + phase))
    load = load * np.exp(_ar1(rng, len(tw), p.traffic_wander_sd, rng.uniform(30, 90)))
    hours = len(tw) * WINDOW_S / 3600
    for _ in range(rng.poisson((6.0 if p.noisy else 2.0) * hours)):
        bs = rng.uniform(tw[0], tw[-1])
        bl = rng.uniform(20, 90)
        load = load * (1 + (rng.uniform(1.3, 2.0) - 1) * _pulse(tw, bs, bs + bl, 10))
    return load


def _fleet(rng: Rng, p: Plan, tw: Arr) -> _Fleet:
    """Traffic, incidents, the fleet's latency level (wander, load, incidents) and error
    bursts: what baseline and canary both see, so a judge must not blame the canary for it."""
    load = _traffic(rng, p, tw)
    lat_inc = np.ones(len(tw))
    err_add = np.zeros(len(tw))
    dep_frac = np.zeros(len(tw))
    dep_extra = 0.0
    for inc in p.incidents:
        pz = _pulse(tw, inc.start, inc.end, inc.ramp)
        if inc.kind == "load":
            load = load * (1 + (inc.traffic - 1) * pz)
            lat_inc = lat_inc * (1 + (inc.lat - 1) * pz)
        else:
            err_add += inc.err * pz
            dep_frac = np.maximum(dep_frac, inc.frac * pz)
            dep_extra = inc.extra
    wander = np.exp(_ar1(rng, len(tw), p.wander_sd, rng.uniform(60, 180)))
    level = p.m0 * wander * (load / p.total_rps) ** p.beta * lat_inc
    hours = len(tw) * WINDOW_S / 3600
    for _ in range(rng.poisson((3.0 if p.noisy else 1.0) * hours)):
        bs = rng.uniform(tw[0], tw[-1])
        bl = rng.uniform(20, 60)
        err_add += rng.uniform(0.01, 0.08) * _pulse(tw, bs, bs + bl, 5)
    return _Fleet(load, level, err_add, dep_frac, dep_extra)


def _split(p: Plan, tw: Arr) -> Arr:
    """The canary's traffic share per window (none before it starts)."""
    split = np.where(tw >= 0, p.split0, 0.0)
    for since, share in p.split_steps:
        split = np.where(tw >= since, share, split)
    return split


def _canary(p: Plan, ks: Arr, tw: Arr, onset_w: int | None) -> _Canary:
    """How the canary differs per window: a warm-up that fades, and the regression from its
    onset window ``onset_w``."""
    n = len(tw)
    after = ks >= onset_w if onset_w is not None else np.zeros(n, bool)
    lat = np.ones(n)
    if p.warm_secs > 0:
        rel = np.clip(1 - tw / p.warm_secs, 0, 1)
        lat = lat * (1 + p.warm_amp * np.where(tw >= 0, rel**1.5, 0))
    r = p.regression
    if r is not None and r.kind == "step":
        lat = np.where(after, lat * r.size, lat)
    elif r is not None and r.kind == "drift":
        frac = np.clip((tw - (onset_w or 0) * WINDOW_S) / r.secs, 0, 1)
        lat = lat * np.where(after, 1 + (r.size - 1) * frac, 1.0)

    def from_onset(kind: RegressionKind, neutral: float) -> Arr:
        if r is None or r.kind != kind:
            return np.full(n, neutral)
        return np.where(after, r.size, neutral)

    return _Canary(
        lat,
        tail=from_onset("tail", 0.0),
        err_mult=from_onset("err_mult", 1.0),
        err_add=from_onset("err_add", 0.0),
        err_set=from_onset("err_set", -1.0),
        served=from_onset("served", 1.0),
    )


def _pod_factors(rng: Rng, p: Plan, n_windows: int, npods: int) -> Arr:
    """Each pod's speed per window: a static factor, a slow drift and a per-window jitter (GC,
    caches); shape (windows, pods)."""
    static = np.exp(rng.normal(0, 0.04 if p.noisy else 0.025, npods))
    drift = np.stack([_ar1(rng, n_windows, 0.015, rng.uniform(60, 240)) for _ in range(npods)], 1)
    jit = rng.normal(0, 0.07 if p.noisy else 0.03, (n_windows, npods))
    return static[None, :] * np.exp(drift + jit)


@dataclass(frozen=True, slots=True)
class _Pods:
    total: int
    canary: int  # canary pods at the first split
    baseline_factors: Arr
    canary_factors: Arr  # as many pods as the canary ever has


def _pods(rng: Rng, p: Plan, n_windows: int) -> _Pods:
    total = int(rng.integers(6, 21))
    n_c = max(1, round(p.split0 * total))
    n_b = max(2, total - n_c)
    n_c_max = max(1, round(0.5 * total)) if p.split_steps else n_c
    pf_b = _pod_factors(rng, p, n_windows, n_b)
    return _Pods(total, n_c, pf_b, _pod_factors(rng, p, n_windows, n_c_max))


def _canary_pods(p: Plan, pods: _Pods, split: float, served: float) -> int:
    """Canary pods serving this window: more as the split steps up, fewer when it serves
    less."""
    npods = max(1, round(split * pods.total)) if p.split_steps else pods.canary
    return max(1, round(npods * served)) if served < 1 else npods


def _latencies(
    rng: Rng, p: Plan, fleet: _Fleet, i: int, n: int, pods: Arr, can: _Canary | None
) -> Arr:
    """Latencies of one side's ``n`` requests in window ``i``, spread over ``pods`` (their
    factors this window); ``can``: the canary's changes, None for the baseline."""
    pod = rng.integers(0, len(pods), n)
    x: Arr = p.dist.draw(rng, n) * fleet.level[i] * pods[pod]
    for g in np.nonzero(rng.random(len(pods)) < _GC_P)[0]:
        m = (pod == g) & (rng.random(n) < rng.uniform(0.01, 0.04))
        x[m] += rng.uniform(1, 4) * p.m0
    if fleet.dep_frac[i] > 0:
        m = rng.random(n) < fleet.dep_frac[i]
        x[m] += fleet.dep_extra * p.m0 * rng.uniform(0.5, 1.5, int(m.sum()))
    if can is not None:
        x = x * can.lat[i]
        if can.tail[i] > 0:
            m = rng.random(n) < can.tail[i]
            x[m] *= rng.uniform(5, 10, int(m.sum()))
    return x


def _error_p(p: Plan, fleet: _Fleet, i: int, can: _Canary | None) -> float:
    """A request's error probability: the fleet's, and the canary's regression on top."""
    if can is None:
        return float(p.err_base + fleet.err_add[i])
    if can.err_set[i] >= 0:
        return float(can.err_set[i] + fleet.err_add[i])
    return float(p.err_base * can.err_mult[i] + fleet.err_add[i] + can.err_add[i])


def _p50_p99(x: Arr, quantiles: str) -> tuple[float, float]:
    """The window's p50 and p99: sample quantiles (``exact``), or read by Prometheus's
    ``histogram_quantile`` from the window's requests counted into one of
    :data:`~benchmarks.scenarios.histogram.LAYOUTS`' bucket layouts."""
    if quantiles == "exact":
        q50, q99 = np.quantile(x, [0.5, 0.99])
        return float(q50), float(q99)
    bounds = np.asarray(LAYOUTS[quantiles])
    cumulative = np.append(np.searchsorted(np.sort(x), bounds, side="right"), len(x))
    cumulative = cumulative.astype(np.float64)
    return histogram_quantile(0.5, bounds, cumulative), histogram_quantile(0.99, bounds, cumulative)


def _window_records(
    rng: Rng, base: Record, ts: float, n: int, x: Arr | None, errors: int, quantiles: str
) -> list[Record]:
    """One side's scrape of a window at ``ts`` (jittered here). With under five requests the
    latency quantiles are sometimes missing, as an exporter may leave them out."""
    ts = round(float(ts + rng.uniform(-0.3, 0.3)), 3)
    head = {**base, "ts": ts}  # ts stays the first key
    out = []
    if x is not None and n > 0 and not (n < 5 and rng.random() < 0.5):
        q50, q99 = _p50_p99(x, quantiles)
        for signal, q in (("latency_p50_seconds", q50), ("latency_p99_seconds", q99)):
            out.append({**head, "signal": signal, "value": round(float(q), 6), "count": n})
    if n > 0:
        out.append({**head, "signal": "error_rate", "value": round(errors / n, 6), "count": n})
    out.append(
        {**head, "signal": "requests_per_second", "value": round(n / WINDOW_S, 4), "count": n}
    )
    return out


def _simulate(rng: Rng, p: Plan, service: str, quantiles: str) -> list[Record]:
    """Every window's scrapes from both sides, in event order per window."""
    n_can, onset_w = p.windows()
    ks = np.arange(-HISTORY_WINDOWS, n_can)
    tw = ks * WINDOW_S + WINDOW_S / 2  # window centres, seconds after the canary start
    fleet = _fleet(rng, p, tw)
    split = _split(p, tw)
    can = _canary(p, ks, tw, onset_w)
    pods = _pods(rng, p, len(tw))
    off_baseline = rng.uniform(0, 3)
    offsets = {"baseline": off_baseline, "canary": rng.uniform(0, 4)}
    recs: list[Record] = []
    for i in range(len(tw)):
        lam_c = fleet.load[i] * split[i] * WINDOW_S
        lam_c_served = lam_c * can.served[i]
        lam_b = fleet.load[i] * (1 - split[i]) * WINDOW_S + (lam_c - lam_c_served)
        sides: list[tuple[str, float, Arr, _Canary | None]] = [
            ("baseline", lam_b, pods.baseline_factors[i], None)
        ]
        if ks[i] >= 0:
            npods = _canary_pods(p, pods, split[i], can.served[i])
            sides.append(("canary", lam_c_served, pods.canary_factors[i, :npods], can))
        end = p.t0 + (ks[i] + 1) * WINDOW_S
        for role, lam, factors, c in sides:
            base = {"ts": 0.0, "service": service, "namespace": "shop", "role": role}  # key order
            n = int(rng.poisson(lam))
            if n == 0:
                recs += _window_records(rng, base, end + offsets[role], 0, None, 0, quantiles)
                continue
            x = _latencies(rng, p, fleet, i, n, factors, c)
            errors = int(rng.binomial(n, min(max(_error_p(p, fleet, i, c), 0.0), 1.0)))
            recs += _window_records(rng, base, end + offsets[role], n, x, errors, quantiles)
    return recs


def _deliver(rng: Rng, p: Plan, recs: list[Record]) -> list[Record]:
    """What reaches the judge: some records lost, the rest in arrival order (up to 0.5 s after
    their ts, or up to 15 s for the late share)."""
    if p.drop_canary or p.drop_baseline:
        drop = {"canary": p.drop_canary, "baseline": p.drop_baseline}
        recs = [r for r in recs if rng.random() >= drop[r["role"]]]
    arrival = []
    for r in recs:
        if p.late_frac and rng.random() < p.late_frac:
            arrival.append(r["ts"] + rng.uniform(0, _LATE_MAX_S))
        else:
            arrival.append(r["ts"] + rng.uniform(0, 0.5))
    order = np.argsort(np.array(arrival), kind="stable")
    return [recs[j] for j in order]


def generate(spec: IndependentSpec, quantiles: str = "exact") -> list[str]:
    """Native JSON records of ``spec`` (one per line, no newline, as ``json.dumps`` writes
    them), in arrival order; latency quantiles as ``quantiles`` says (``exact``, or a bucket
    layout of :data:`~benchmarks.scenarios.histogram.LAYOUTS`). The layout changes the latency
    values only: every random draw, and so every other record, is the same."""
    rng, p = draw_plan(spec.family, spec.seed, spec.index, spec.stress)
    recs = _deliver(rng, p, _simulate(rng, p, spec.service, quantiles))
    return [json.dumps(r) for r in recs]
