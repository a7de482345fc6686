"""Latency quantiles the way most production systems get them: from a Prometheus histogram.

Who calls this: :mod:`benchmarks.scenarios.simulate`, when the canary benchmark runs with
``--quantiles`` other than ``exact``. What it promises: each window's requests are counted into
fixed buckets (``le`` upper bounds, cumulative, as a Prometheus histogram exposes them), and p50
and p99 are read back with :func:`histogram_quantile`, which follows Prometheus's
``bucketQuantile`` (promql/quantile.go): linear interpolation inside the bucket that holds the
rank ``q * count``, the first bucket starting at 0, a rank in the ``+Inf`` bucket giving the
highest finite bound.

Linear interpolation assumes requests are spread evenly inside a bucket. Latency is not: near a
bucket's lower bound a few per cent more slowness moves the reading by much of the bucket's
width. With wide buckets two healthy pod groups whose latencies differ by a few per cent can
read p99s far apart. And under about 100 requests the p99's rank falls in the bucket of the
slowest request, so that one request decides the reading. These layouts let the benchmark
measure both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from config.detection import BUCKET_PRESETS

Arr = NDArray[Any]

# Upper bounds in seconds. `prometheus`: the client libraries' default buckets; `x2` and `x1.2`:
# exponential buckets from 1 ms growing by that factor (Prometheus's native histograms grow by
# 2 ** 2 ** -schema: 2 at schema 0, 1.19 at schema 2; their default, schema 3, is finer).
LAYOUTS: dict[str, tuple[float, ...]] = {
    "prometheus": BUCKET_PRESETS["prometheus"],
    "x2": tuple(0.001 * 2.0**k for k in range(15)),
    "x1.2": tuple(0.001 * 1.2**k for k in range(56)),
}
MODES = ("exact", *LAYOUTS)


def histogram_quantile(q: float, bounds: Arr, cumulative: Arr) -> float:
    """Prometheus's ``histogram_quantile(q, ...)`` of one histogram: ``bounds`` are the finite
    ``le`` bounds (ascending), ``cumulative`` the counts at or below each, followed by the total
    (the ``+Inf`` bucket). NaN when the histogram is empty.

    >>> b = np.array([0.1, 0.2, 0.4])
    >>> round(histogram_quantile(0.5, b, np.array([10.0, 30.0, 40.0, 40.0])), 9)  # rank 20
    0.15
    >>> histogram_quantile(0.99, b, np.array([10.0, 30.0, 40.0, 50.0]))  # in +Inf: top bound
    0.4
    """
    total = float(cumulative[-1])
    if total <= 0.0:
        return math.nan
    rank = q * total
    b = int(np.searchsorted(cumulative[:-1], rank, side="left"))
    if b == len(bounds):
        return float(bounds[-1])
    start = 0.0 if b == 0 else float(bounds[b - 1])
    below = 0.0 if b == 0 else float(cumulative[b - 1])
    return start + (float(bounds[b]) - start) * (rank - below) / (float(cumulative[b]) - below)


def quantiles(
    layout: str,
    sigma: float,
    mu: Arr,
    tail: Arr,
    shift: Arr,
    n: Arr,
    rng: np.random.Generator,
    mixture_cdf: Callable[[Arr, Any, Any], Arr],
    exact_below: int,
) -> tuple[Arr, Arr]:
    """p50 and p99 of each window read from a histogram of its ``n`` requests, whose log-latency
    is ``mu + sigma * (N(0, 1) + shift * Bernoulli(tail))``: below ``exact_below`` requests drawn
    one by one, above it bucket counts drawn at once (multinomial) from ``mixture_cdf(z, tail,
    shift)``, that log-latency's CDF in units of ``sigma`` (the simulator's own, passed in so
    both read one formula). Windows with no requests get NaN (they write no latency record)."""
    bounds = np.asarray(LAYOUTS[layout])
    log_bounds = np.log(bounds)
    p50 = np.full(mu.shape, math.nan)
    p99 = np.full(mu.shape, math.nan)
    for i in np.nonzero(n > 0)[0]:
        m = int(n[i])
        if m < exact_below:
            slow = rng.random(m) < tail[i]
            x = mu[i] + sigma * (rng.normal(0.0, 1.0, m) + shift[i] * slow)
            cum = np.searchsorted(np.sort(x), log_bounds, side="right").astype(np.float64)
        else:
            z = (log_bounds - mu[i]) / sigma
            f = mixture_cdf(z, tail[i], shift[i])
            p = np.clip(np.diff(np.concatenate(([0.0], f, [1.0]))), 0.0, None)
            cum = np.cumsum(rng.multinomial(m, p / p.sum()))[:-1].astype(np.float64)
        cumulative = np.append(cum, float(m))
        p50[i] = histogram_quantile(0.5, bounds, cumulative)
        p99[i] = histogram_quantile(0.99, bounds, cumulative)
    return p50, p99
