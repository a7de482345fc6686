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
  Gaussian with a variance that is the sum of both sides' short-term noise, each estimated from
  successive differences of its own samples (robust to the level shift that a regression is;
  the baseline's two hours of history make the estimate good from the canary's first sample);
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


def alarm_threshold(alpha: float, horizon: int, alternatives: int = len(_MEAN_GRID)) -> float:
    """``log(K * horizon / alpha)``: the CUSUM level that bounds false alarms by ``alpha``.

    >>> round(alarm_threshold(0.01, 360), 2)
    12.28
    """
    return math.log(alternatives * max(horizon, 1) / alpha)


@dataclass(slots=True)
class CheckResult:
    """One check: ``score`` (the largest CUSUM), whether it is past ``threshold``, and the
    figures behind it (means over the recent paired samples, in the signal's unit)."""

    score: float
    threshold: float
    failed: bool
    canary: float
    baseline: float
    effect: float


class NoiseTracker:
    """Short-term noise of one side of a signal, from successive differences of its (log) value.

    ``var()`` is the variance of one sample around the local level: robust to a level shift
    (a step moves one difference only, and differences are clipped at five sigma) and to slow
    daily trends. Until ``n`` reaches a few samples it returns ``prior``.

    >>> t = NoiseTracker()
    >>> for i in range(50):
    ...     t.add(0.1 * (-1) ** i)
    >>> round(t.var(), 3)
    0.02
    """

    __slots__ = ("last", "n", "sq")

    def __init__(self) -> None:
        self.n = 0
        self.last = 0.0
        self.sq = 0.0  # EW mean of d^2 / 2

    def add(self, x: float) -> None:
        if self.n > 0:
            d2 = 0.5 * (x - self.last) ** 2
            if self.n > 5:
                cap = 25.0 * self.sq
                d2 = d2 if d2 < cap else cap
            self.sq += (d2 - self.sq) * (1.0 / self.n if self.n < 10 else 0.05)
        self.last = x
        self.n += 1

    def var(self, prior: float = 0.0) -> float:
        if self.n < 4:
            return prior
        if self.n < 12:  # shrink towards the prior while the estimate is young
            w = (self.n - 1) / 12.0
            return w * self.sq + (1.0 - w) * max(prior, self.sq)
        return self.sq


class MeanShiftTest:
    """Sequential test that the canary's (log) level exceeds the baseline's by more than
    ``min_log_effect``; ``higher_is_worse=False`` tests for a drop instead.

    Each update takes the paired log-ratio ``x`` and its variance (the sum of both sides' noise,
    from :class:`NoiseTracker`). With ``learn_reference`` the null level is not 0 but learned
    from the signal itself (throughput, whose canary/baseline ratio is the traffic split).

    >>> t = MeanShiftTest(min_log_effect=math.log(1.1), threshold=10.0)
    >>> [t.update(0.01 * ((-1) ** i), 1.0, 0.01).failed for i in range(20)][-1]
    False
    >>> any(t.update(math.log(2.0), 1.0, 0.01).failed for i in range(10))
    True
    """

    __slots__ = (
        "cusum",
        "higher_is_worse",
        "learn_reference",
        "min_log_effect",
        "n",
        "recent",
        "ref",
        "threshold",
        "var_floor",
    )

    def __init__(
        self,
        min_log_effect: float,
        threshold: float,
        *,
        higher_is_worse: bool = True,
        learn_reference: bool = False,
        var_floor: float = 0.02**2,
    ) -> None:
        self.min_log_effect = min_log_effect
        self.threshold = threshold
        self.higher_is_worse = higher_is_worse
        self.learn_reference = learn_reference
        self.var_floor = var_floor
        self.cusum = [0.0] * len(_MEAN_GRID)
        self.n = 0
        self.ref = 0.0
        self.recent = 0.0  # EW mean of x, for the evidence shown to people

    def update(
        self,
        x: float,
        weight: float,
        var: float,
        *,
        extra_effect: float = 0.0,
        floor_ref: float = math.nan,
    ) -> CheckResult:
        """Add one paired observation ``x`` (a log-ratio) with ``weight`` in (0, 1] and noise
        variance ``var``. ``extra_effect`` raises the bar for this observation (the warm-up
        allowance); ``floor_ref`` is a least expected reference (for throughput: the share the
        traffic split implies), used when the learned reference is lower."""
        self.n += 1
        sign = 1.0 if self.higher_is_worse else -1.0
        if self.learn_reference:
            if self.n == 1:
                self.ref = x
            else:
                dev = (x - self.ref) * sign
                band = max(self.min_log_effect, 3.0 * math.sqrt(var))
                if dev < -band:
                    # clearly better than the reference: the traffic split was raised; follow
                    self.ref += (x - self.ref) * 0.5
                elif dev < self.min_log_effect:
                    # within the band: track the mean, slowly (an upper envelope would bias the
                    # reference and turn noise into false drops)
                    self.ref += (x - self.ref) * 0.05
                # worse beyond the minimum effect: never learned
            if floor_ref == floor_ref and (floor_ref - self.ref) * sign < 0.0:
                self.ref = floor_ref
        dev = (x - self.ref) * sign
        self.recent += (x - self.recent) * (1.0 if self.n == 1 else 0.3)
        excess = dev - self.min_log_effect - extra_effect
        inv_var = weight / max(var, self.var_floor)
        best = 0.0
        cusum = self.cusum
        # one observation may add at most half the threshold: no single sample decides alone
        cap = 0.5 * self.threshold
        for k, mu in enumerate(_MEAN_GRID):
            llr = inv_var * mu * (excess - 0.5 * mu)
            s = cusum[k] + (llr if llr < cap else cap)
            s = s if s > 0.0 else 0.0
            cusum[k] = s
            if s > best:
                best = s
        return CheckResult(
            score=best,
            threshold=self.threshold,
            failed=best >= self.threshold,
            canary=self.recent,
            baseline=self.ref,
            effect=math.exp(self.recent - self.ref),
        )

    def to_state(self) -> list[float]:
        return [float(self.n), self.ref, self.recent, *self.cusum]


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

    def update(self, c_err: float, c_req: float, b_err: float, b_req: float) -> CheckResult:
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
        return CheckResult(
            score=best,
            threshold=self.threshold,
            failed=best >= self.threshold,
            canary=c_rate,
            baseline=b_rate,
            effect=c_rate / b_rate if b_rate > 0 else (math.inf if c_rate > 0 else 1.0),
        )

    def to_state(self) -> list[float]:
        return [self.c_err, self.c_req, self.b_err, self.b_req, *self.cusum]
