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
- throughput: the canary's share of the pooled requests against the share its learned
  reference (the traffic split) implies, binomial like the error test; the reference follows
  rises at once (the split was raised) and never learns a drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

# Alternatives, as multiples of the evidence scale: beyond-minimum log effects for continuous
# signals; rate ratios beyond the null ratio for counts.
_MEAN_GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
_RATIO_GRID = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# Throughput: ratios beyond the null of "the canary lost min_drop of its share". Its first
# alternative lies nearer the null than an error rate's: a drop is bounded (the canary cannot lose
# more than all of its share), and one a little past the minimum is worth catching.
_DROP_GRID = (1.2, 1.5, 2.0, 3.0, 5.0, 10.0)


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
    """Noise of one side of a signal, from its own (log) values.

    ``var()`` is the short-term variance of one sample around the local level, from successive
    differences: robust to a level shift (a step moves one difference only, and differences are
    clipped at five sigma) and to slow daily trends. Until ``n`` reaches a few samples it
    returns ``prior``.

    ``wander()`` is the variance of the slow drift of the level itself (minutes-scale average
    against a half-hour average): two groups of pods drift apart by about that much without
    anything being wrong, so the comparison must not call such an offset a regression. Past the
    first 100 samples each sample may count at most ``WANDER_CAP`` times the current estimate:
    a shared incident moves the whole fleet's level at once, which says nothing about how far
    two groups of pods drift apart, and unclipped it would raise the allowance tenfold for the
    next half hour and hide a regression that starts during or after the incident. The clip
    alone is not enough: an incident drags the half-hour level along, which then sits apart
    from the fleet's for half an hour after the incident has ended, and that gap was still read
    as drift (on :mod:`benchmarks.scenarios.independent`'s physics, a 1.4x regression starting
    15 minutes after a shared load spike was missed in 20 of 30 runs). So a sample more than
    ``EXCURSION_SD2 ** 0.5`` standard deviations (short-term noise and drift together) from the
    half-hour level is an excursion: the level moves towards it by ``EXCURSION_STEP`` of that
    limit only (a lasting shift, such as a new stable version, is followed within hours), and
    neither it nor a minute-scale level that far out teaches the drift estimate anything.

    >>> t = NoiseTracker()
    >>> for i in range(50):
    ...     t.add(0.1 * (-1) ** i)
    >>> round(t.var(), 3)
    0.02
    """

    __slots__ = ("fast", "last", "n", "slow", "sq", "wsq")

    WANDER_CAP = 3.0  # one sample counts at most this many times the drift estimate
    EXCURSION_SD2 = 5.0**2  # beyond 5 sd of noise and drift from the slow level: an excursion
    EXCURSION_STEP = 0.001  # how far (in limits) the slow level follows an excursion per sample
    NOISE_SHARE = 0.15 / 1.85  # the share of the short-term variance the fast average keeps

    def __init__(self) -> None:
        self.n = 0
        self.last = 0.0
        self.sq = 0.0  # EW mean of d^2 / 2
        self.fast = 0.0  # EW level over about a minute
        self.slow = 0.0  # EW level over about half an hour
        self.wsq = 0.0  # EW mean of (fast - slow)^2

    def add(self, x: float) -> None:
        # called for every sample: fields are read once into locals, and past the first 100
        # samples (the steady state) the rates are constants
        n = self.n
        self.n = n + 1
        if n == 0:
            self.fast = self.slow = self.last = x
            return
        d2 = 0.5 * (x - self.last) ** 2
        self.last = x
        sq = self.sq
        fast = self.fast
        slow = self.slow
        wsq = self.wsq
        if n >= 100:
            cap = 25.0 * sq
            self.sq = sq + ((d2 if d2 < cap else cap) - sq) * 0.05
            fast = self.fast = fast + (x - fast) * 0.15
            # an excursion (see the class): the slow level creeps towards it, so that a lasting
            # shift is followed in the end, and the drift estimate learns nothing from it, nor
            # from the minute-scale level while that is still out there
            dev = x - slow
            lim2 = self.EXCURSION_SD2 * (sq + wsq)
            if dev * dev > lim2 > 0.0:
                lim = math.sqrt(lim2)
                self.slow = slow + (lim if dev > 0.0 else -lim) * self.EXCURSION_STEP
                return
            slow = self.slow = slow + dev * 0.01
            w2 = (fast - slow) ** 2
            if w2 > lim2 > 0.0:
                return
            cap = self.WANDER_CAP * max(wsq, self.NOISE_SHARE * self.sq)
            self.wsq = wsq + ((w2 if w2 < cap else cap) - wsq) * 0.01
            return
        if n > 5:
            cap = 25.0 * sq
            d2 = d2 if d2 < cap else cap
        self.sq = sq + (d2 - sq) * (1.0 / n if n < 10 else 0.05)
        fast = self.fast = fast + (x - fast) * 0.15
        rate = 1.0 / n
        slow = self.slow = slow + (x - slow) * rate
        self.wsq = wsq + ((fast - slow) ** 2 - wsq) * rate

    def var(self, prior: float = 0.0) -> float:
        if self.n < 4:
            return prior
        if self.n < 12:  # shrink towards the prior while the estimate is young
            w = (self.n - 1) / 12.0
            return w * self.sq + (1.0 - w) * max(prior, self.sq)
        return self.sq

    def wander(self) -> float:
        """Variance of the slow level drift (short-term noise averaged out as far as the
        minute-scale average does)."""
        if self.n < 30:
            return 0.0
        # the fast average still carries part of the short-term noise: about a/(2-a) of it
        return max(self.wsq - self.sq * self.NOISE_SHARE, 0.0)


def upper_mean(n: int, total: float, sq: float) -> float:
    """The mean of ``n`` values from their sum ``total`` and sum of squares ``sq``, plus its
    standard error."""
    mean = total / n
    return mean + math.sqrt(max(sq / n - mean * mean, 0.0) / n)


def accumulate(
    n: int, a: float, b: float, xa: float, xb: float, most: int
) -> tuple[int, float, float]:
    """Add ``xa`` and ``xb`` to the count and the two sums ``a`` and ``b`` of running means
    (of a value and its square, or of two counts): plain sums up to ``most`` values,
    exponentially weighted (by 1 / ``most``) past them."""
    if n < most:
        return n + 1, a + xa, b + xb
    return n, a + (xa - a / n), b + (xb - b / n)


def mean_step(cusum: list[float], inv_var: float, excess: float, cap: float) -> float:
    """One CUSUM step per alternative of "the mean exceeds the bar by ``mu``" (of
    ``_MEAN_GRID``), for an observation ``excess`` above the bar with inverse variance
    ``inv_var``; each step adds at most ``cap``. Returns the largest CUSUM."""
    best = 0.0
    for k, mu in enumerate(_MEAN_GRID):
        llr = inv_var * mu * (excess - 0.5 * mu)
        v = cusum[k] + (llr if llr < cap else cap)
        v = v if v > 0.0 else 0.0
        cusum[k] = v
        if v > best:
            best = v
    return best


def binomial_step(
    cusum: list[float],
    rho0: float,
    events: float,
    exposure: float,
    other_events: float,
    other_exposure: float,
    cap: float,
    grid: tuple[float, ...] = _RATIO_GRID,
) -> float:
    """One CUSUM step per alternative of "``events`` per ``exposure`` exceed
    ``other_events`` per ``other_exposure`` by more than ``rho0``" (``rho0`` times each ratio
    of ``grid``), conditional on the pooled events (binomial); each step adds at most ``cap``.
    Returns the largest CUSUM."""
    if events + other_events <= 0 or exposure <= 0 or other_exposure <= 0:
        return max(cusum)
    pi0 = rho0 * exposure / (rho0 * exposure + other_exposure)
    q0 = 1.0 - pi0
    log = math.log
    best = 0.0
    for k, mult in enumerate(grid):
        expected = rho0 * mult * exposure
        pik = expected / (expected + other_exposure)
        llr = events * log(pik / pi0) + other_events * log((1.0 - pik) / q0)
        v = cusum[k] + (llr if llr < cap else cap)
        v = v if v > 0.0 else 0.0
        cusum[k] = v
        if v > best:
            best = v
    return best


class MeanShiftTest:
    """Sequential test that the canary's (log) level exceeds the baseline's by more than
    ``min_log_effect``.

    Each update takes the paired log-ratio ``x`` and its variance (the sum of both sides' noise,
    from :class:`NoiseTracker`).

    The canary's own healthy offset is a second reference. A small canary's tail quantile reads
    low beside a large baseline's (the p99 of 80 requests is about their largest, that of 2,000
    is not), so a canary can sit measurably below its baseline while healthy, and a regression
    that doubles its tail may still read only a little above the baseline. While the test sees
    no evidence (its largest CUSUM below ``OWN_GATE`` of the threshold), updates that pass
    ``learn=True`` are averaged into that offset; once ``OWN_MIN`` of them are in, the bar is
    the lower of "``min_log_effect`` above the baseline" and "``min_log_effect`` above the
    offset (plus its standard error), and above the baseline". The canary must still end up
    slower than its baseline; a canary that was faster and becomes equal is not flagged. The
    offset belongs to a sampling regime: ``regime`` (the log of the canary's count) moving by
    more than ``OWN_GUARD`` from where the offset was learned (a raised traffic split, a
    different load) forgets it, since the small-count offset changes with the count. Samples
    without a count (``regime`` NaN) are neither learned nor change the regime.

    The canary's noise is not allowed to learn the regression either: see :meth:`held_var`.

    A second statistic, for an exact tail quantile of a small canary: its tail shape
    (:meth:`shape_step`), whose evidence counts towards the check's score too.

    >>> t = MeanShiftTest(min_log_effect=math.log(1.1), threshold=10.0)
    >>> [t.update(0.01 * ((-1) ** i), 1.0, 0.01).failed for i in range(20)][-1]
    False
    >>> any(t.update(math.log(2.0), 1.0, 0.01).failed for i in range(10))
    True
    """

    __slots__ = (
        "cusum",
        "min_log_effect",
        "n",
        "own_bar",
        "own_n",
        "own_regime",
        "own_sq",
        "own_sum",
        "quiet_regime",
        "quiet_var",
        "recent",
        "regime",
        "shape_best",
        "shape_cusum",
        "shape_n",
        "shape_sq",
        "shape_sum",
        "threshold",
        "var_floor",
    )

    OWN_MIN = 20  # learned samples before the own offset is a reference
    OWN_MAX = 100  # past this many, the offset is an exponentially weighted mean
    OWN_GATE = 0.1  # learn only while the largest CUSUM is below this share of the threshold
    OWN_GUARD = math.log(1.3)  # a regime change beyond this forgets the offset
    QUIET_VAR_GROWTH = 1.5  # while evidence is held, the variance may grow this much at most
    # The most of the threshold one observation may add: no two samples decide alone. A canary of
    # a few pods has windows whose tail one paused pod lifts 4-6x; two such windows in a row, at
    # half the threshold each, took a healthy small canary of the independent generator to 97 %
    # of it (seed 15, shared_dep_outage-2). At 0.4 its healthy and shared-incident canaries of
    # seeds 1-40 held 80 % at most; at 0.35, 74 %, but the median time to a rollback on its
    # seeds 17-40 rose from 53.5 s to 60.9 s (one more sample), against 53.8 s at 0.4.
    SAMPLE_CAP = 0.4
    # The tail-shape test (see shape_step): one shape sample adds at most SHAPE_CAP of the
    # threshold, and its minimum effect is SHAPE_EFFECT of min_log_effect. A signal judged by
    # both tests splits its false-positive budget between them, SHAPE_SHARE to the shape and the
    # rest to the level (Lorden's bound for each at its share: together, the budget), so each
    # counts its evidence against the threshold raised by the log of one over its share.
    SHAPE_CAP = 0.2
    SHAPE_EFFECT = 0.5
    SHAPE_SHARE = 1.0 / 3.0

    def __init__(
        self, min_log_effect: float, threshold: float, *, var_floor: float = 0.02**2
    ) -> None:
        self.min_log_effect = min_log_effect
        self.threshold = threshold
        self.var_floor = var_floor
        self.cusum = [0.0] * len(_MEAN_GRID)
        self.n = 0
        self.recent = 0.0  # EW mean of x, for the evidence shown to people
        self._forget_own()
        self.regime = math.nan  # EW log count of the canary's samples
        self.quiet_var = math.nan  # the canary's variance when the test last held no evidence
        self.quiet_regime = math.nan  # and the regime then
        # the tail-shape test's CUSUM (see shape_step), made by its first sample
        self.shape_cusum: list[float] | None = None
        self.shape_best = 0.0  # the largest of shape_cusum

    def _forget_own(self) -> None:
        self.own_n = 0
        self.own_sum = 0.0
        self.own_sq = 0.0
        self.own_regime = math.nan
        self.own_bar = self.min_log_effect
        # the canary's own healthy tail shape (see shape_step), of the same regime
        self.shape_n = 0
        self.shape_sum = 0.0
        self.shape_sq = 0.0

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        for k, v in state[1].items():
            setattr(self, k, v)
        if "own_bar" not in state[1]:  # a checkpoint from before the own offset
            self._forget_own()
            self.regime = math.nan
        if "quiet_var" not in state[1]:  # from before the canary's variance was held
            self.quiet_var = self.quiet_regime = math.nan
        if "shape_cusum" not in state[1]:  # from before the tail-shape test
            self.shape_cusum = None
            self.shape_best = 0.0
            self.shape_n = 0
            self.shape_sum = self.shape_sq = 0.0

    def bar(self) -> float:
        """The effective minimum log effect: ``min_log_effect``, or lower when the canary's own
        healthy offset (see the class) is a reference."""
        return self.own_bar

    def _learn_own(self, x: float) -> None:
        if self.own_n == 0:
            self.own_regime = self.regime
        n, self.own_sum, self.own_sq = accumulate(
            self.own_n, self.own_sum, self.own_sq, x, x * x, self.OWN_MAX
        )
        self.own_n = n
        if n >= self.OWN_MIN:
            m = self.min_log_effect
            ref = upper_mean(n, self.own_sum, self.own_sq) + m
            self.own_bar = m if ref >= m else (ref if ref > 0.0 else 0.0)

    def held_var(self, var: float) -> float:
        """The canary's noise variance to judge its next sample by, given its current estimate
        ``var``.

        The estimate comes from the canary's own recent samples, so a regression that widens
        their spread (a slow tail: a few much slower requests make a p99 jump about) would raise
        the variance it is judged against and hide itself. While the test holds evidence (its
        largest CUSUM at ``OWN_GATE`` of the threshold or more), the variance is therefore at
        most ``QUIET_VAR_GROWTH`` times the canary's variance when it last held none, rescaled
        to the canary's count regime (quantile noise goes as 1/count, so less traffic may still
        raise it)."""
        if max(self.cusum) < self.OWN_GATE * self.threshold:
            self.quiet_var = var
            self.quiet_regime = self.regime
            return var
        cap = self.QUIET_VAR_GROWTH * self.quiet_var
        shift = self.quiet_regime - self.regime
        if shift == shift:  # both regimes known
            cap *= math.exp(shift)
        return cap if var > cap else var  # var while quiet_var is NaN (never quiet)

    def shape_step(
        self,
        y: float,
        weight: float,
        var: float,
        *,
        extra_effect: float = 0.0,
        low_read: float = 0.0,
        learn: bool = False,
    ) -> None:
        """Add one tail-shape sample ``y``: the paired log-ratio of a tail quantile less that of
        the median of the same window, with noise variance ``var`` (both signals' noise).

        Why: the slow requests of a slow-request tail lift a small canary's exact p99 in only
        some of its windows (when one of them lands in its top few), so its readings jump
        between where they were and far above, and their mean rises less than the bar and the
        drift allowance leave room for. Pods drifting apart move the median and the tail alike,
        so the shape needs no drift allowance; a slow tail moves the tail alone.

        A paused pod (GC) moves a small canary's tail without its median as well, for a window
        or two: each shape sample therefore adds at most ``SHAPE_CAP`` of the threshold, a
        slow tail's many moderate samples add up, a pause's few large ones do not. The bar is
        ``SHAPE_EFFECT`` of the minimum effect, lowered by ``low_read`` (a small canary's exact
        tail reads low) to no less than zero, and by the canary's own healthy shape (learned
        as the own offset is, plus its standard error) to no less than ``-low_read``.
        ``extra_effect`` raises the bar for this sample (the warm-up allowance). Its evidence
        counts towards :meth:`update`'s score when that says ``shaped`` (see SHAPE_SHARE)."""
        m = self.SHAPE_EFFECT * self.min_log_effect
        bar = m - low_read
        bar = bar if bar > 0.0 else 0.0
        n = self.shape_n
        if n >= self.OWN_MIN:
            ref = upper_mean(n, self.shape_sum, self.shape_sq) + m
            ref = ref if ref > -low_read else -low_read
            bar = ref if ref < bar else bar
        excess = y - bar - extra_effect
        inv_var = weight / (var if var > self.var_floor else self.var_floor)
        cap = self.SHAPE_CAP * self.threshold
        cusum = self.shape_cusum
        if cusum is None:
            cusum = self.shape_cusum = [0.0] * len(_MEAN_GRID)
        best = self.shape_best = mean_step(cusum, inv_var, excess, cap)
        gate = self.OWN_GATE * self.threshold
        if learn and best < gate and max(self.cusum) < gate:
            # the healthy shape, learned while neither test holds evidence
            self.shape_n, self.shape_sum, self.shape_sq = accumulate(
                n, self.shape_sum, self.shape_sq, y, y * y, self.OWN_MAX
            )

    def update(
        self,
        x: float,
        weight: float,
        var: float,
        *,
        extra_effect: float = 0.0,
        regime: float = math.nan,
        learn: bool = False,
        low_read: float = 0.0,
        clip: float = math.inf,
        shaped: bool = False,
    ) -> CheckResult:
        """Add one paired observation ``x`` (a log-ratio) with ``weight`` in (0, 1] and noise
        variance ``var``. ``extra_effect`` raises the bar for this observation (the warm-up
        allowance); ``regime`` and ``learn`` feed the canary's own offset (see the class).
        ``low_read`` is how much lower than the baseline's the canary's reading is expected to
        read for its sample size alone (an exact tail quantile of fewer requests); the bar is
        lowered by as much, to no less than the baseline itself, as the own offset's is.
        ``clip``: the observation's excess over the bar counts at most this many standard
        deviations (for readings that one request can lift far). ``shaped``: the signal is
        judged by its tail shape too (:meth:`shape_step`), whose evidence then counts, each
        test at its share of the budget (SHAPE_SHARE)."""
        self.n += 1
        self.recent += (x - self.recent) * (1.0 if self.n == 1 else 0.3)
        if regime == regime:  # a sample without a count neither moves the regime nor is learned
            r = self.regime
            r = self.regime = regime if r != r else r + (regime - r) * 0.3
            if self.own_n and abs(r - self.own_regime) > self.OWN_GUARD:
                self._forget_own()
        bar = self.own_bar
        if low_read > 0.0:
            low_bar = self.min_log_effect - low_read
            low_bar = low_bar if low_bar > 0.0 else 0.0
            bar = low_bar if low_bar < bar else bar
        excess = x - bar - extra_effect
        v = max(var, self.var_floor)
        if clip < math.inf:
            lim = clip * math.sqrt(v)
            if excess > lim:
                excess = lim
        inv_var = weight / v
        # one observation may add at most SAMPLE_CAP of the threshold (see there)
        best = mean_step(self.cusum, inv_var, excess, self.SAMPLE_CAP * self.threshold)
        if learn and regime == regime and best < self.OWN_GATE * self.threshold:
            self._learn_own(x)
        if shaped:  # the level and the tail shape share the budget (see SHAPE_SHARE)
            t = self.threshold
            share = self.SHAPE_SHARE
            best *= t / (t - math.log(1.0 - share))
            shape = self.shape_best * t / (t - math.log(share))
            best = shape if shape > best else best
        return CheckResult(
            score=best,
            threshold=self.threshold,
            failed=best >= self.threshold,
            canary=self.recent,
            baseline=0.0,
            effect=math.exp(self.recent),
        )

    def to_state(self) -> list[float]:
        return [float(self.n), self.recent, *self.cusum, float(self.own_n), self.own_sum]


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
        # one paired sample may add at most half the threshold: error bursts are over-dispersed,
        # so no single interval decides alone
        best = binomial_step(
            self.cusum, self.null_ratio(), c_err, c_req, b_err, b_req, 0.5 * self.threshold
        )
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


class ThroughputTest:
    """Sequential test that the canary serves less than its expected share of requests, by more
    than ``min_drop`` (a fraction), from request counts.

    The expected share is a learned reference of the canary/baseline request ratio (the traffic
    split), floored by the split the records state when they do (``weight``):

    - it starts as the pooled ratio of the first samples, so one lucky window cannot set a
      share the canary never reaches again;
    - while the test holds no evidence (its largest CUSUM under ``LEARN_GATE`` of the
      threshold), every sample is averaged in (as counts, so small counts do not bias it):
      a plain mean of the first ``MEMORY`` samples, then an exponentially weighted one over
      about as many; while it holds some, none is, so a drop is not taught to it. Learning only
      the samples above "the minimum drop below it" instead biased it upwards wherever one
      window's share is noisier than the minimum drop: at 5 canary requests a window each lucky
      window lifted it and no unlucky one brought it down, and within the hour a healthy
      canary's share read as a drop (the independent generator's seed 70
      ``healthy_lowtraffic-3``, a reference 1.5x its share, rolled back at 38 minutes; in
      simulation, 30 of 30 such canaries rolled back within the hour, and 14 of 30 at 18
      canary requests a window). A short memory has a cost of its own: a halved share's
      evidence falls back under the gate now and then, and each such sample was learned, 5 %
      of the way, so the reference followed the drop down before the evidence could build (the
      independent generator's seed 117 ``reg_throughput_halved-3``, 45 canary requests a
      window, never caught; in simulation, 28 of 100 halved shares of 5 % canaries at 18
      requests a window uncaught after 20 minutes, none with the plain mean). Once the mean
      holds ``MEMORY`` samples, one more moves it by 1/``MEMORY`` of its distance;
    - a clearly higher share (beyond the minimum effect and three standard deviations) in three
      samples in a row means the split was raised: the reference moves there;
    - a change of the stated split starts the learning again.

    Given the pooled requests of a paired sample, the baseline's are binomial: the test asks
    whether the baseline got more than ``1 / (1 - min_drop)`` times its expected part, so a
    canary at 10 requests a window is judged as exactly as one at 10,000. Its alternatives
    (``_DROP_GRID``) start at 1.2 times that: a drop a little past the minimum is caught too (in
    the same simulation, a 40 % drop at 45 requests a window was caught within 20 minutes 98
    times in 100, against 37 with the first alternative at 1.5).

    >>> t = ThroughputTest(min_drop=0.25, threshold=10.0)
    >>> any(t.update(50, 950).failed for _ in range(60))
    False
    >>> any(t.update(20, 950).failed for _ in range(10))
    True
    """

    __slots__ = (
        "cusum",
        "floor",
        "learned",
        "min_drop",
        "n",
        "recent",
        "ref",
        "req_b",
        "req_c",
        "rise",
        "threshold",
    )

    FIRST = 6  # samples pooled into the first reference
    RISE = 3  # samples in a row that show a raised split
    LEARN_GATE = 0.1  # the reference learns while the CUSUM is under this share of the threshold
    MEMORY = 60  # learned samples the reference is the plain mean of (then weighted alike)

    def __init__(self, min_drop: float, threshold: float) -> None:
        self.min_drop = min(max(min_drop, 0.0), 0.95)
        self.threshold = threshold
        self.cusum = [0.0] * len(_DROP_GRID)
        self.n = 0
        self.ref = 0.0
        self.recent = 0.0
        self.req_c = 0.0  # requests behind the reference: sums over `learned` samples
        self.req_b = 0.0
        self.learned = 0
        self.rise: list[float] = []  # x of the current run of clearly higher samples
        self.floor = math.nan

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        fields = dict(state[1])
        if "learned" not in fields:
            # a checkpoint from before the plain mean: past FIRST samples, its ew_c and ew_b
            # were one window's requests, exponentially weighted over about 20
            n = min(int(cast(float, fields["n"])), 20)
            scale = n if n >= self.FIRST else 1
            fields["learned"] = n
            fields["req_c"] = cast(float, fields.pop("ew_c")) * scale
            fields["req_b"] = cast(float, fields.pop("ew_b")) * scale
        for k, v in fields.items():
            setattr(self, k, v)

    def _learn(self, x: float, c_req: float, b_req: float, var: float) -> None:
        k = self.learned
        if self.n > self.FIRST:  # the first FIRST samples are all pooled
            min_effect = -math.log1p(-self.min_drop)
            dev = x - self.ref
            if dev > max(min_effect, 3.0 * math.sqrt(var)):
                self.rise.append(x)
                if len(self.rise) >= self.RISE:
                    # the split was raised: the reference starts again from these samples, at
                    # the baseline's requests a window so far
                    self.ref = sum(self.rise) / len(self.rise)
                    self.learned = len(self.rise)
                    self.req_b = self.req_b / k * self.learned if k else float(self.learned)
                    self.req_c = math.exp(self.ref) * self.req_b
                    self.rise = []
                return
            self.rise = []
            if max(self.cusum) >= self.LEARN_GATE * self.threshold:
                return
        self.learned, self.req_c, self.req_b = accumulate(
            k, self.req_c, self.req_b, c_req, b_req, self.MEMORY
        )
        self.ref = math.log((self.req_c + 0.5) / (self.req_b + 0.5))

    def update(self, c_req: float, b_req: float, floor_ref: float = math.nan) -> CheckResult:
        """Add one paired sample: requests of canary and baseline in the same window, and the
        least log-ratio the stated split implies (NaN when unknown)."""
        if floor_ref != self.floor and not (floor_ref != floor_ref and self.floor != self.floor):
            # the stated split changed: learn the new share from scratch
            self.floor = floor_ref
            self.n = self.learned = 0
            self.req_c = self.req_b = 0.0
            self.rise = []
        x = math.log((c_req + 0.5) / (b_req + 0.5))
        var = 1.0 / (c_req + 0.5) + 1.0 / (b_req + 0.5)
        self.n += 1
        self._learn(x, c_req, b_req, var)
        if floor_ref == floor_ref and floor_ref > self.ref:
            self.ref = floor_ref
        self.recent += (x - self.recent) * (1.0 if self.n == 1 else 0.3)
        best = binomial_step(
            self.cusum,
            1.0 / (1.0 - self.min_drop),
            b_req,
            1.0,
            c_req,
            math.exp(self.ref),
            0.5 * self.threshold,
            _DROP_GRID,
        )
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
