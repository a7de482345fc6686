"""Turn a :class:`~benchmarks.scenarios.spec.ScenarioSpec` into native metric records.

Who calls this: the canary benchmark and the replay-speed benchmark. What it promises: the same
spec gives the same records, byte for byte (all randomness comes from a generator seeded by the
spec); records are native JSON lines (DESIGN.md) in *arrival* order, which differs from event
order by each record's producer lag.

The model, per 10 s window and side: requests ~ Poisson(rps * interval), with rps following a
daily load curve, the traffic split and any throughput effect; per-request latency is lognormal
(median and sigma from the spec) mixed with a slow tail (a small fraction of requests ``tail_k``
times slower); latency rises with load; each side's latency level wanders slowly and
independently (pods differ). p50 and p99 come from the window's own requests: simulated
request by request below ``_EXACT_BELOW`` requests, otherwise the true quantile plus the
sample quantile's asymptotic noise ``sqrt(p(1-p)/n) / f(q)``; or, on request, read from a
histogram of the window's requests as Prometheus reads one (:mod:`.histogram`). Errors ~
Binomial(requests, p).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.scenarios import histogram
from benchmarks.scenarios.spec import ScenarioSpec

_EXACT_BELOW = 400
_DAY = 86400.0
_LEVEL_CORRELATION_S = 600.0
Arr = NDArray[Any]

SIGNALS = (
    ("latency_p50_seconds", "latency"),
    ("latency_p99_seconds", "latency"),
    ("error_rate", "error_rate"),
    ("requests_per_second", "throughput"),
)


def _phi(z: Arr) -> Arr:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26, error below 1e-7: ample for p99)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1.0 + np.sign(z) * erf), dtype=np.float64)


def mixture_cdf(z: Arr, tail: Any, shift: Any) -> Arr:
    """The CDF at ``z`` (standard units of the main lognormal) of the mixture
    ``(1 - tail) N(0, 1) + tail N(shift, 1)``: a request's log-latency, slow tail included."""
    return np.asarray((1.0 - tail) * _phi(z) + tail * _phi(z - shift), dtype=np.float64)


def _mixture_quantile(p: float, tail: Arr, shift: Arr) -> Arr:
    """The p-quantile, in standard units of the main lognormal, of the mixture
    ``(1 - tail) N(0, 1) + tail N(shift, 1)`` (bisection, vectorised over windows)."""
    lo = np.full(tail.shape, -12.0)
    hi = np.full(tail.shape, 12.0) + shift
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, tail, shift) < p
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.asarray(0.5 * (lo + hi), dtype=np.float64)


def _effect_profile(spec: ScenarioSpec, ts: Arr, side: str, kind: str) -> list[Arr]:
    """For each effect of ``kind`` touching ``side``: its strength in [0, 1] at each ts."""
    out = []
    for e in spec.effects:
        if e.kind != kind or (e.side != "both" and e.side != side):
            continue
        active = (ts >= e.start) & (ts < e.end)
        if e.kind == "warmup":
            strength = np.exp(-np.maximum(ts - e.start, 0.0) / max(e.ramp, 1.0))
        elif e.ramp > 0:
            strength = np.clip((ts - e.start) / e.ramp, 0.0, 1.0)
        else:
            strength = np.ones_like(ts)
        out.append(np.where(active, strength, 0.0) * 1.0)
    return out


def _factors(spec: ScenarioSpec, ts: Arr, side: str, kind: str, neutral: float) -> Arr:
    acc = np.full(ts.shape, neutral)
    effects = [e for e in spec.effects if e.kind == kind and e.side in ("both", side)]
    for e, s in zip(effects, _effect_profile(spec, ts, side, kind), strict=True):
        if kind in ("error_add", "tail"):
            acc = acc + e.factor * s
        else:
            acc = acc * (1.0 + (e.factor - 1.0) * s)
    return acc


def _side_windows(
    spec: ScenarioSpec, side: str, rng: np.random.Generator, quantiles: str
) -> dict[str, Arr]:
    start = spec.t0 if side == "baseline" else spec.canary_start
    k = np.arange(1, round((spec.canary_end - start) / spec.interval) + 1)
    ts = start + k * spec.interval
    weight = np.array([spec.weight_at(float(t)) for t in ts])
    if side == "canary":
        share = weight
    elif spec.baseline_mode == "equal":
        share = np.where(ts > spec.canary_start, weight, 1.0)
    else:
        share = 1.0 - weight
    daily = 1.0 + spec.daily_amplitude * np.sin(2 * math.pi * (ts / _DAY + spec.daily_phase))
    load = daily * _factors(spec, ts, side, "load", 1.0)
    rps = spec.total_rps * load * share * _factors(spec, ts, side, "throughput", 1.0)
    n = rng.poisson(np.maximum(rps, 0.0) * spec.interval).astype(np.float64)
    # Latency: rises with load; each side's level wanders on its own.
    rho = math.exp(-spec.interval / _LEVEL_CORRELATION_S)
    eps = rng.normal(0.0, spec.level_noise * math.sqrt(1 - rho * rho), ts.shape)
    level = np.empty_like(ts)
    acc = rng.normal(0.0, spec.level_noise)
    for i in range(len(ts)):
        acc = rho * acc + eps[i]
        level[i] = acc
    lat = np.maximum(0.8, 1.0 + 0.3 * (load - 1.0))
    lat = lat * _factors(spec, ts, side, "latency", 1.0) * _factors(spec, ts, side, "warmup", 1.0)
    mu = np.log(spec.latency_median * lat) + level
    if spec.jitter > 0:
        mu = mu + rng.normal(0.0, spec.jitter, ts.shape)
    tail = np.clip(_factors(spec, ts, side, "tail", spec.tail_fraction), 0.0, 0.5)
    shift = np.full(ts.shape, math.log(spec.tail_k) / spec.latency_sigma)
    if quantiles == "exact":
        p50, p99 = _quantiles(spec.latency_sigma, mu, tail, shift, n, rng)
    else:
        p50, p99 = histogram.quantiles(
            quantiles, spec.latency_sigma, mu, tail, shift, n, rng, mixture_cdf, _EXACT_BELOW
        )
    err_p = spec.error_p * _factors(spec, ts, side, "error_mult", 1.0)
    err_p = np.clip(err_p + _factors(spec, ts, side, "error_add", 0.0), 0.0, 1.0)
    errors = rng.binomial(n.astype(np.int64), err_p).astype(np.float64)
    return {"ts": ts, "n": n, "p50": p50, "p99": p99, "errors": errors, "weight": weight}


def _quantiles(
    sigma: float, mu: Arr, tail: Arr, shift: Arr, n: Arr, rng: np.random.Generator
) -> tuple[Arr, Arr]:
    out = []
    for p in (0.5, 0.99):
        zq = _mixture_quantile(p, tail, shift)
        dens = ((1 - tail) * np.exp(-0.5 * zq**2) + tail * np.exp(-0.5 * (zq - shift) ** 2)) / (
            math.sqrt(2 * math.pi) * sigma
        )
        q = np.exp(mu + sigma * zq)
        # density of x at q is dens / q; sd of the sample quantile is sqrt(p(1-p)/n) / f(q)
        sd = np.sqrt(p * (1 - p) / np.maximum(n, 1.0)) * q / np.maximum(dens, 1e-12)
        out.append(np.maximum(q + rng.normal(0.0, 1.0, q.shape) * sd, q * 0.05))
    p50, p99 = out
    for i in np.nonzero((n > 0) & (n < _EXACT_BELOW))[0]:
        m = int(n[i])
        logs = mu[i] + sigma * (rng.normal(0.0, 1.0, m) + shift[i] * (rng.random(m) < tail[i]))
        x = np.exp(logs)
        p50[i], p99[i] = np.quantile(x, 0.5), np.quantile(x, 0.99)
    return p50, p99


def generate(spec: ScenarioSpec, quantiles: str = "exact") -> list[str]:
    """Native JSON records of ``spec`` (one per line, no newline), in arrival order.

    ``quantiles`` says how each window's p50 and p99 are taken from its requests: ``exact``
    (the sample quantiles) or a bucket layout of :mod:`benchmarks.scenarios.histogram`, read the
    way Prometheus's ``histogram_quantile`` reads it."""
    if quantiles not in histogram.MODES:
        choices = ", ".join(histogram.MODES)
        raise ValueError(f"unknown quantiles {quantiles!r}; choose from {choices}")
    rng = np.random.default_rng(spec.seed)
    timed: list[tuple[float, int, str]] = []
    seq = 0
    for side in ("baseline", "canary"):
        w = _side_windows(spec, side, rng, quantiles)
        phase = float(rng.uniform(0.0, 3.0))
        lags = rng.uniform(0.2, max(spec.max_lateness, 0.3), (len(w["ts"]), len(SIGNALS)))
        dropped = rng.random(len(w["ts"])) < (spec.drop_fraction if side == "canary" else 0.0)
        rev = spec.canary_revision if side == "canary" else spec.baseline_revision
        for i, t in enumerate(w["ts"]):
            if side == "canary" and (dropped[i] or any(a <= t < b for a, b in spec.gaps)):
                continue
            n = int(w["n"][i])
            ts = round(float(t) + phase, 3)
            values = (
                float(w["p50"][i]),
                float(w["p99"][i]),
                float(w["errors"][i]) / n if n else 0.0,
                n / spec.interval,
            )
            labels = {"revision": rev, "weight": f"{w['weight'][i] * 100:g}"}
            for j, ((signal, kind), value) in enumerate(zip(SIGNALS, values, strict=True)):
                if n == 0 and kind == "latency":
                    continue  # no requests, no latency quantile
                rec = {
                    "ts": ts,
                    "service": spec.service,
                    "namespace": spec.namespace,
                    "role": side,
                    "signal": signal,
                    "kind": kind,
                    "value": round(value, 9),
                    "count": n,
                    "labels": labels,
                }
                timed.append((ts + float(lags[i, j]), seq, json.dumps(rec, separators=(",", ":"))))
                seq += 1
    timed.sort()
    return [line for _, _, line in timed]
