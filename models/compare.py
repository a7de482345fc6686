"""Canary-vs-baseline comparison: sequential tests that may be checked after every paired sample.

Who calls this: :mod:`detector.core.signals`, once per paired (canary, baseline) sample of a
signal. What it promises: a test reports ``fail`` only when the canary is worse than the baseline
by more than the configured minimum effect, with the false-alarm probability over a whole rollout
kept near the configured budget however often it is checked.

The statistic is a CUSUM over a small grid of alternatives (an "e-detector", Shin, Ramdas and
Rinaldo 2023, built on the mixture tests of Lindon et al., KDD 2022): each alternative keeps the
log-likelihood ratio of "worse by mu" against "worse by exactly the minimum effect", restarted at
zero whenever the evidence turns against it, so a regression that starts in the middle of a
rollout is caught as fast as one present from the start, and evidence from a healthy past does
not dilute it. The alarm threshold ``log(K * horizon / alpha)`` bounds the false-alarm
probability over ``horizon`` checks by ``alpha`` (Lorden's bound, union over the K alternatives).

Two families of data:

- continuous signals (latency, saturation): the paired log-ratio ``log(canary / baseline)``,
  Gaussian with a scale estimated from successive differences (robust to the level shift that a
  regression is);
- counts (error rates with ``count``): errors of both sides pooled per paired sample, and the
  share that fell on the canary tested against the share its traffic explains (conditional
  binomial), so 5 % canary traffic against 95 % stable is handled exactly, and sparse error
  series (zeros with a few errors) are evidence, not noise (Kayenta #426).
- throughput: the log-ratio ``log(canary / baseline)`` against its own learned reference level
  (the traffic split); the reference follows rises at once (the split was raised) and never
  learns a drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Alternatives, as multiples of the evidence scale: beyond-minimum log effects for continuous
# signals; rate ratios beyond the null ratio for counts.
_MEAN_GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
_RATIO_GRID = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# E|x_t - x_{t-1}| = 2 sigma / sqrt(pi) for iid Gaussian x, so sigma = E|d| * sqrt(pi) / 2
_HALF_SQRT_PI = math.sqrt(math.pi) / 2.0


def alarm_threshold(alpha: float, horizon: int, alternatives: int = len(_MEAN_GRID)) -> float:
    """``log(K * horizon / alpha)``: the CUSUM level that bounds false alarms by ``alpha``.

    >>> round(alarm_threshold(0.01, 360), 2)
    12.28
    """
    return math.log(alternatives * max(horizon, 1) / alpha)


@dataclass(slots=True)
class TestResult:
    """One check: ``score`` (the largest CUSUM), whether it is past ``threshold``, and the
    figures behind it (means over the recent paired samples, in the signal's unit)."""

    score: float
    threshold: float
    failed: bool
    canary: float
    baseline: float
    effect: float


class MeanShiftTest:
    """Sequential test that the canary's (log) level exceeds the baseline's by more than
    ``min_log_effect``; ``higher_is_worse=False`` tests for a drop instead.

    With ``learn_reference`` the null level is not 0 but learned from the signal itself (for
    throughput, whose canary/baseline ratio is the traffic split).

    >>> t = MeanShiftTest(min_log_effect=math.log(1.1), threshold=10.0)
    >>> [t.update(0.01 * ((-1) ** i), 1.0).failed for i in range(20)][-1]
    False
    >>> any(t.update(math.log(2.0) + 0.01 * ((-1) ** i), 1.0).failed for i in range(10))
    True
    """

    __slots__ = (
        "cusum",
        "higher_is_worse",
        "last_x",
        "learn_reference",
        "min_log_effect",
        "n",
        "recent",
        "ref",
        "scale",
        "scale_floor",
        "threshold",
    )

    def __init__(
        self,
        min_log_effect: float,
        threshold: float,
        *,
        higher_is_worse: bool = True,
        learn_reference: bool = False,
        scale_floor: float = 0.02,
    ) -> None:
        self.min_log_effect = min_log_effect
        self.threshold = threshold
        self.higher_is_worse = higher_is_worse
        self.learn_reference = learn_reference
        self.scale_floor = scale_floor
        self.cusum = [0.0] * len(_MEAN_GRID)
        self.n = 0
        self.last_x = 0.0
        self.scale = 0.0  # EW mean of |successive difference|
        self.ref = 0.0
        self.recent = 0.0  # EW mean of x, for the evidence shown to people

    def sigma(self) -> float:
        return max(self.scale * _HALF_SQRT_PI, self.scale_floor)

    def update(self, x: float, weight: float) -> TestResult:
        """Add one paired observation ``x`` (a log-ratio) with ``weight`` in (0, 1]."""
        sigma = self.sigma()
        if self.n > 0:
            d = abs(x - self.last_x)
            d = min(d, 5.0 * sigma) if self.n > 3 else d
            self.scale += (d - self.scale) * (0.5 if self.n < 4 else 0.1)
        self.last_x = x
        self.n += 1
        if self.learn_reference:
            if self.n == 1:
                self.ref = x
            elif (x - self.ref) * (1 if self.higher_is_worse else -1) < self.min_log_effect:
                # learn what is not worse; rises of a throughput ratio (split raised) at once
                better = (self.ref - x) * (1 if self.higher_is_worse else -1) > 0
                self.ref += (x - self.ref) * (0.5 if better else 0.1)
        dev = (x - self.ref) if self.higher_is_worse else (self.ref - x)
        self.recent += (x - self.recent) * (1.0 if self.n == 1 else 0.3)
        excess = dev - self.min_log_effect
        inv_var = weight / (sigma * sigma)
        best = 0.0
        cusum = self.cusum
        for k, mult in enumerate(_MEAN_GRID):
            mu = mult
            s = cusum[k] + inv_var * mu * (excess - 0.5 * mu)
            s = s if s > 0.0 else 0.0
            cusum[k] = s
            if s > best:
                best = s
        return TestResult(
            score=best,
            threshold=self.threshold,
            failed=best >= self.threshold,
            canary=self.recent,
            baseline=self.ref,
            effect=math.exp(self.recent - self.ref),
        )

    def to_state(self) -> list[float]:
        return [float(self.n), self.last_x, self.scale, self.ref, self.recent, *self.cusum]

    def load_state(self, state: list[float]) -> None:
        self.n = int(state[0])
        self.last_x, self.scale, self.ref, self.recent = state[1], state[2], state[3], state[4]
        self.cusum = list(state[5:])


class CountRatioTest:
    """Sequential test that the canary's event rate (errors per request) exceeds the baseline's
    by more than ``min_ratio`` (relative) and ``min_abs`` (absolute), from counts.

    >>> t = CountRatioTest(min_ratio=1.1, min_abs=0.0, threshold=10.0)
    >>> any(t.update(1, 100, 20, 1900).failed for _ in range(30))  # same 1 % rate
    False
    >>> any(t.update(10, 100, 20, 1900).failed for _ in range(5))  # 10x the rate
    True
    """

    __slots__ = ("b_err", "b_req", "c_err", "c_req", "cusum", "min_abs", "min_ratio", "threshold")

    def __init__(self, min_ratio: float, min_abs: float, threshold: float) -> None:
        self.min_ratio = max(min_ratio, 1.0)
        self.min_abs = min_abs
        self.threshold = threshold
        self.cusum = [0.0] * len(_RATIO_GRID)
        # exponentially weighted totals, for the null rate and the evidence shown
        self.c_err = 0.0
        self.c_req = 0.0
        self.b_err = 0.0
        self.b_req = 0.0

    def null_ratio(self) -> float:
        base_rate = (self.b_err + 0.5) / (self.b_req + 1.0)
        return max(self.min_ratio, (base_rate + self.min_abs) / base_rate)

    def update(self, c_err: float, c_req: float, b_err: float, b_req: float) -> TestResult:
        rho0 = self.null_ratio()
        pooled = c_err + b_err
        best = 0.0
        cusum = self.cusum
        if pooled > 0 and c_req > 0 and b_req > 0:
            pi0 = rho0 * c_req / (rho0 * c_req + b_req)
            # one paired sample may add at most half the threshold: error bursts are
            # over-dispersed, so no single interval decides alone
            cap = 0.5 * self.threshold
            for k, mult in enumerate(_RATIO_GRID):
                rho = rho0 * mult
                pik = rho * c_req / (rho * c_req + b_req)
                llr = c_err * math.log(pik / pi0) + b_err * math.log((1.0 - pik) / (1.0 - pi0))
                s = cusum[k] + (llr if llr < cap else cap)
                s = s if s > 0.0 else 0.0
                cusum[k] = s
                if s > best:
                    best = s
        else:
            best = max(cusum)
        decay = 0.8
        self.c_err = self.c_err * decay + c_err
        self.c_req = self.c_req * decay + c_req
        self.b_err = self.b_err * 0.98 + b_err
        self.b_req = self.b_req * 0.98 + b_req
        c_rate = self.c_err / self.c_req if self.c_req > 0 else 0.0
        b_rate = self.b_err / self.b_req if self.b_req > 0 else 0.0
        return TestResult(
            score=best,
            threshold=self.threshold,
            failed=best >= self.threshold,
            canary=c_rate,
            baseline=b_rate,
            effect=c_rate / b_rate if b_rate > 0 else (math.inf if c_rate > 0 else 1.0),
        )

    def to_state(self) -> list[float]:
        return [self.c_err, self.c_req, self.b_err, self.b_req, *self.cusum]

    def load_state(self, state: list[float]) -> None:
        self.c_err, self.c_req, self.b_err, self.b_req = state[0], state[1], state[2], state[3]
        self.cusum = list(state[4:])
