"""The decision core's per-sample anomaly model: :class:`models.anomaly.EWZScoreModel`, with its
state in plain floats.

Who calls this: :class:`detector.core.signals.SignalState`, once per sample of each role, through
``score_learn_one``. What it promises: the same scores and the same learned state as
``EWZScoreModel`` with the same parameters, bit for bit (``tests/models/test_ewz.py`` checks it
on streams with outliers, constants and level shifts), at a fraction of the cost, and a pickle
that is a handful of floats.

The recurrences are the ones ``EWZScoreModel`` gets from its exact-then-exponential level
(``models.anomaly._Level``): Welford's mean and variance until ``ceil(1 / alpha)`` samples, then
River's ``EWMean`` and ``EWVar`` started from that estimate. River 0.26 computes those as
``m = alpha * x + (1 - alpha) * m`` (the first update sets ``m = x``), and ``EWVar`` as two such
means, of ``x`` and of ``x * x``, the variance being ``mean(x^2) - mean(x)^2``; they are written
out here in the same order of operations, so every float rounds the same way.
"""

from __future__ import annotations

import math

_sqrt = math.sqrt
_copysign = math.copysign


class EWZScore:
    """``|x - mean| / sd`` of one signal, anomalous points learned as one sigma from the mean.

    Parameters as :class:`models.anomaly.EWZScoreModel`: ``alpha`` the weight of the newest
    value, ``warmup`` samples before any score, ``protect_z`` the score beyond which a point is
    shrunk before it is learned.

    >>> m = EWZScore()
    >>> zs = [m.score_learn_one(v) for v in [1.0, 1.1, 0.9, 1.0, 1.05, 0.95] * 5]
    >>> zs[0] == 0.0 and m.score_learn_one(1.0) < 2 < m.score_learn_one(3.0)
    True
    """

    __slots__ = (
        "alpha",
        "beta",
        "exact_until",
        "m2",
        "mean",
        "n",
        "protect_z",
        "scored_ew_from",
        "sq",
        "vmean",
        "warmup",
    )

    def __init__(self, alpha: float = 0.05, warmup: int = 10, protect_z: float = 6.0) -> None:
        self.alpha = alpha
        self.beta = 1.0 - alpha  # River keeps it too, rounded once
        self.warmup = warmup
        self.protect_z = protect_z
        self.exact_until = max(2, math.ceil(1.0 / alpha))
        self.scored_ew_from = max(self.exact_until, warmup)
        self.n = 0
        # Welford's running mean and sum of squared deviations until exact_until, then the
        # mean of the EWMean
        self.mean = 0.0
        self.m2 = 0.0
        # EWVar's own two means, of x and of x * x (it does not share the level's mean)
        self.vmean = 0.0
        self.sq = 0.0

    def score_learn_one(self, x: float) -> float:
        """The score of ``x`` against what came before, then ``x`` learned (prequential)."""
        n = self.n
        if n < self.scored_ew_from:
            return self._score_learn_early(x)
        # the steady state (scored, exponentially weighted), written out: it runs per sample
        mean = self.mean
        vmean = self.vmean
        sq = self.sq
        sd = _sqrt(sq - vmean * vmean)
        floor = 1e-3 * abs(mean)
        if floor < 1e-9:
            floor = 1e-9
        if floor > sd:
            sd = floor
        z = abs(x - mean) / sd
        if z > self.protect_z:
            x = mean + _copysign(sd, x - mean)
        a = self.alpha
        b = self.beta
        self.n = n + 1
        ax = a * x  # River's two means each compute it; one product, the same float
        self.mean = ax + b * mean
        self.vmean = ax + b * vmean
        self.sq = a * (x * x) + b * sq
        return z

    def _score_learn_early(self, x: float) -> float:
        n = self.n
        if n < self.warmup:
            self._learn(x)
            return 0.0
        mean = self.mean
        if n >= self.exact_until:
            vmean = self.vmean
            var = self.sq - vmean * vmean
        else:
            var = self.m2 / n if n else 0.0
        sd = math.sqrt(var)
        floor = 1e-3 * abs(mean)
        if floor < 1e-9:
            floor = 1e-9
        if floor > sd:
            sd = floor
        z = abs(x - mean) / sd
        self._learn(mean + math.copysign(sd, x - mean) if z > self.protect_z else x)
        return z

    def _learn(self, x: float) -> None:
        n = self.n + 1
        self.n = n
        if n > self.exact_until:
            a = self.alpha
            b = self.beta
            self.mean = a * x + b * self.mean
            self.vmean = a * x + b * self.vmean
            self.sq = a * (x * x) + b * self.sq
            return
        delta = x - self.mean
        mean = self.mean + delta / n
        self.mean = mean
        self.m2 += delta * (x - mean)
        if n == self.exact_until:
            self._start_ew(mean, self.m2 / n)

    def _start_ew(self, mean: float, var: float) -> None:
        # EWVar's first update sets its mean and zero variance; a second update at distance d
        # gives variance alpha*(1-alpha)*d^2: two points reproduce the exact estimate
        a = self.alpha
        if var > 0.0 and 0.0 < a < 1.0:
            d = math.sqrt(var / (a * (1.0 - a)))
            x1 = mean - a * d
            x2 = x1 + d
            self.vmean = a * x2 + (1.0 - a) * x1
            self.sq = a * (x2 * x2) + (1.0 - a) * (x1 * x1)
        else:
            self.vmean = mean
            self.sq = mean * mean

    def to_state(self) -> list[float]:
        """``[n, mean, variance]``, as ``EWZScoreModel.to_state``."""
        if self.n >= self.exact_until:
            return [float(self.n), self.mean, self.sq - self.vmean * self.vmean]
        return [float(self.n), self.mean, self.m2 / self.n if self.n else 0.0]
