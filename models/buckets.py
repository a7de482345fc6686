"""Latency quantiles read from histogram buckets, read again with a density shaped like a tail.

Who calls this: :mod:`detector.core.signals`, once per sample of a latency signal whose
settings name the histogram buckets it is computed from (``histogram_buckets``). What it
promises: :meth:`BucketReading.read` maps a value that Prometheus's ``histogram_quantile``
returned to a value in the same bucket, monotonically and continuously across buckets (every
bucket bound maps to itself), so that both sides of a comparison are read the same way.

Why: ``histogram_quantile`` interpolates linearly inside the bucket that holds the quantile, as
if requests were spread evenly over it. Around a p99 they are not: the density falls steeply
towards the bucket's upper bound, so a quantile just past a bound reads far into the bucket.
With the client libraries' default buckets, a canary 3 % slower than a baseline whose p99 sits
just under 0.1 s reads 0.100-0.154 s (10th to 90th percentile) against the baseline's 0.0997:
17 % slower on average, sample after sample, which a sequential test calls a regression. Read
again, 4 %. A real regression inside one bucket still reads as one: a p99 of 0.11 s made 1.4x
and 2x slower reads 1.47x and 1.88x read again, 1.37x and 1.42x linearly (lognormal latencies
of log-spread 0.35; ``tests/models/test_buckets.py``).

The reading is redone with the density inside the bucket taken as a power law, ``x ** -(a+1)``,
where ``a`` is the local tail index a lognormal with log-spread :data:`SIGMA_REF` has at the
quantile: ``a = z_q / SIGMA_REF`` (0 at the median: evenly spread in log-latency; 4.65 at the
p99). The share ``f`` of the bucket below the quantile, which ``histogram_quantile`` used, is
kept; only the latency it points to changes.
"""

from __future__ import annotations

import bisect
import math
import re
from itertools import pairwise
from statistics import NormalDist

# Log-spread of the lognormal whose tail shape is assumed inside a bucket. Measured on the canary
# benchmark's histogram readings (default buckets, seeds 1-20): a p99 index of 2 (a spread of
# 1.2) left 1 shared incident rolled back and 2 slow tails missed; 3 left the rollback; 4 and 7
# (spreads 0.58 and 0.33) rolled back nothing and caught every regression.
SIGMA_REF = 0.5

_QUANTILE_IN_NAME = re.compile(r"(?:^|[_.-])p(\d{2,4})(?:$|[_.-])")


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


def tail_index(q: float) -> float:
    """``a`` of the assumed density ``x ** -(a+1)`` at quantile ``q``: ``z_q / SIGMA_REF``.

    >>> round(tail_index(0.99), 2), tail_index(0.5)
    (4.65, 0.0)
    """
    return NormalDist().inv_cdf(q) / SIGMA_REF


class BucketReading:
    """Reads values of one signal's ``histogram_quantile`` again (see the module docstring).

    ``bounds`` are the finite ``le`` bounds, ascending and positive; ``q`` the quantile the
    signal reports (None: spread evenly in log-latency, the median's shape). Values in the first
    bucket (from 0) and at or beyond the last bound are returned unchanged: below the first
    bound there is no positive lower edge to shape a density from, and beyond the last one
    ``histogram_quantile`` returns the bound itself.

    >>> r = BucketReading((0.05, 0.1, 0.25, 0.5), 0.99)
    >>> round(r.read(0.15), 4), r.read(0.1), r.read(0.25)
    (0.1089, 0.1, 0.25)
    >>> round(BucketReading((0.05, 0.1, 0.25, 0.5), 0.5).read(0.175), 4)  # sqrt(0.1 * 0.25)
    0.1581
    """

    __slots__ = ("_a", "_bounds", "_low_share")

    def __init__(self, bounds: tuple[float, ...], q: float | None) -> None:
        self._bounds = bounds
        self._a = 0.0 if q is None else tail_index(q)
        a = self._a
        # per bucket k (from bounds[k-1] to bounds[k]): 1 - (lo/hi)**a, the power law's share
        # normaliser; log(hi/lo) when a is 0
        self._low_share = tuple(
            math.log(hi / lo) if a == 0.0 else 1.0 - (lo / hi) ** a for lo, hi in pairwise(bounds)
        )

    def read(self, value: float) -> float:
        """``value`` read again: the same share of its bucket, under the tail-shaped density."""
        bounds = self._bounds
        k = bisect.bisect_left(bounds, value)  # bounds[k-1] < value <= bounds[k]
        if k == 0 or k >= len(bounds) or value == bounds[k]:
            return value
        lo = bounds[k - 1]
        f = (value - lo) / (bounds[k] - lo)
        c = self._low_share[k - 1]
        if self._a == 0.0:
            return lo * math.exp(f * c)
        return float(lo * (1.0 - f * c) ** (-1.0 / self._a))
