"""Latency quantiles read from histogram buckets, read again with a density shaped like latency.

Who calls this: :mod:`detector.core.signals`, once per sample of a latency signal whose
settings name the histogram buckets it is computed from (``histogram_buckets``). What it
promises: :meth:`BucketReading.read` maps a value that Prometheus's ``histogram_quantile``
returned to a value in the same bucket, monotonically and continuously across buckets (every
bucket bound maps to itself), so that both sides of a comparison are read the same way.

Why: ``histogram_quantile`` interpolates linearly inside the bucket that holds the quantile, as
if requests were spread evenly over it. They are not: around a p99 the density falls steeply
towards the bucket's upper bound, and even around a median it falls away from the quantile
across a bucket 2.5x wide, so a quantile just past a bound reads far into the bucket. With the
client libraries' default buckets, a canary 3 % slower than a baseline whose p99 sits just under
0.1 s reads 0.100-0.154 s (10th to 90th percentile) against the baseline's 0.0997: 17 % slower
on average, sample after sample, which a sequential test calls a regression. Read again, 3 %.
A real regression inside one bucket still reads as one: a p99 of 0.11 s made 1.4x and 2x
slower reads 1.56x and 2.02x read again, 1.37x and 1.42x linearly (lognormal latencies of
log-spread 0.35; ``tests/models/test_buckets.py``).

The reading keeps the share ``f`` of its bucket that ``histogram_quantile`` found below the
quantile, and asks which latency ``x`` in the bucket a lognormal of log-spread
:data:`SIGMA_REF` would put there: the one whose ``q``-quantile is ``x`` and which puts the
share ``f`` of the bucket's requests below ``x``. Each bucket's answers are tabulated once per
layout and quantile (:data:`_GRID` points, interpolated: within 1e-4 of the exact solution).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from itertools import pairwise
from statistics import NormalDist

# Log-spread of the lognormal whose shape is assumed inside a bucket. Chosen first for a power
# law with this lognormal's slope at the p99 (default buckets, seeds 1-20): the slope of a
# spread of 1.2 left 1 shared incident rolled back and 2 slow tails missed, of 0.8 the rollback,
# of 0.58 and 0.33 nothing. The lognormal itself then did as well there, and rolled back fewer
# canaries 5-8 % slower than their baselines, whose p50 sits at a bucket bound (README).
SIGMA_REF = 0.5
_GRID = 129  # tabulated latencies per bucket

_QUANTILE_IN_NAME = re.compile(r"(?:^|[_.-])p(\d{2,4})(?:$|[_.-])")
_NORMAL = NormalDist()


def quantile_of(name: str) -> float | None:
    """The quantile a signal's name says it reports (``p99`` 0.99, ``p999`` 0.999, ``p50``
    0.5), or None.

    >>> quantile_of("latency_p99_seconds"), quantile_of("p999"), quantile_of("error_rate")
    (0.99, 0.999, None)
    """
    m = _QUANTILE_IN_NAME.search(name)
    if m is None:
        return None
    digits = m.group(1)
    return int(digits) / float(10 ** len(digits))


def top_count(q: float) -> float:
    """Below this many requests a window's ``q``-quantile is at (or in the bucket of) its
    slowest request: ``1 / (1 - q)``.

    >>> round(top_count(0.99), 6)
    100.0
    """
    return 1.0 / (1.0 - q)


def _table(lo: float, hi: float, q: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For latencies ``x`` spaced evenly in log from ``lo`` to ``hi``: the share of the bucket
    below ``x`` under the lognormal whose ``q``-quantile is ``x``; and ``log(x)``."""
    z = _NORMAL.inv_cdf(q)
    llo, lhi = math.log(lo), math.log(hi)
    shares, logs = [0.0], [llo]
    for i in range(1, _GRID - 1):
        lx = llo + (lhi - llo) * i / (_GRID - 1)
        below_lo = _NORMAL.cdf(z - (lx - llo) / SIGMA_REF)
        below_hi = _NORMAL.cdf(z + (lhi - lx) / SIGMA_REF)
        f = (q - below_lo) / (below_hi - below_lo) if below_hi > below_lo else shares[-1]
        shares.append(min(max(f, shares[-1]), 1.0))  # monotone, whatever the rounding
        logs.append(lx)
    shares.append(1.0)
    logs.append(lhi)
    return tuple(shares), tuple(logs)


class BucketReading:
    """Reads values of one signal's ``histogram_quantile`` again (see the module docstring).

    ``bounds`` are the finite ``le`` bounds, ascending and positive; ``q`` the quantile the
    signal reports (None: read as a median). Values in the first bucket (from 0) and at or
    beyond the last bound are returned unchanged: below the first bound there is no positive
    lower edge to shape a density from, and beyond the last one ``histogram_quantile`` returns
    the bound itself.

    >>> r = BucketReading((0.05, 0.1, 0.25, 0.5), 0.99)
    >>> round(r.read(0.15), 4), r.read(0.1), r.read(0.25)
    (0.1081, 0.1, 0.25)
    >>> round(BucketReading((0.05, 0.1, 0.25, 0.5), 0.5).read(0.175), 4)
    0.1581
    """

    __slots__ = ("_bounds", "_q", "_tables", "top_count")

    def __init__(self, bounds: tuple[float, ...], q: float | None) -> None:
        self._bounds = bounds
        self._q = q
        p = 0.5 if q is None else q
        # below this many requests, a window's q-quantile lies in its slowest request's bucket
        self.top_count = top_count(p)
        self._tables = tuple(_table(lo, hi, p) for lo, hi in pairwise(bounds))

    def __reduce__(self) -> tuple[object, tuple[tuple[float, ...], float | None]]:
        # a checkpoint holds the layout and the quantile, not the tables (a few kB per bucket)
        return shared_reading, (self._bounds, self._q)

    def read(self, value: float) -> float:
        """``value`` read again: the same share of its bucket, under the lognormal's shape."""
        bounds = self._bounds
        k = bisect.bisect_left(bounds, value)  # bounds[k-1] < value <= bounds[k]
        if k == 0 or k >= len(bounds) or value == bounds[k]:
            return value
        lo = bounds[k - 1]
        f = (value - lo) / (bounds[k] - lo)
        shares, logs = self._tables[k - 1]
        j = bisect.bisect_left(shares, f)
        if j == 0:
            return lo
        f0, f1 = shares[j - 1], shares[j]
        t = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
        return math.exp(logs[j - 1] + t * (logs[j] - logs[j - 1]))


@functools.cache
def shared_reading(bounds: tuple[float, ...], q: float | None) -> BucketReading:
    """The one :class:`BucketReading` of a layout and quantile, shared by every signal that
    reads them (and by every checkpoint restored)."""
    return BucketReading(bounds, q)
