"""Per-signal online models (the :class:`models.base.SignalModel` seam).

Who calls this: ``benchmarks.nab`` runs :class:`CalibratedZModel` over the NAB corpus; the
decision core (``detector.core.signals``) runs :class:`EWZScoreModel`'s arithmetic through its
plain-float twin :class:`models.ewz.EWZScore` (same results bit for bit, a fraction of the cost),
and older checkpoints still hold ``EWZScoreModel`` itself. Both are prequential and see one value
at a time (no look-ahead).

Two models, both built on River's exponentially weighted statistics (``stats.EWMean`` and
``stats.EWVar``, Finch's incremental recursions):

- :class:`EWZScoreModel`: ``|x - mean| / sd``, anomalous points shrunk before they are learned.
- :class:`CalibratedZModel`: the same z-score, then calibrated against the signal's *own* tail by
  a peaks-over-threshold fit (an online quantile ``u`` of past z-scores and the mean exceedance
  ``b`` above it, as in SPOT, Siffer et al., KDD 2017). The score is the Gaussian-equivalent
  number of sigmas of the estimated tail probability, so a heavy-tailed signal (tweet counts,
  disk bytes) must move further than a quiet one to score the same. This makes one threshold
  mean roughly the same false-alarm rate on every signal, which a raw z-score does not.

Both cost about a microsecond per call and keep five floats of state.
"""

from __future__ import annotations

import math

from river import stats


def _sd_floor(mean: float) -> float:
    # A constant signal has zero variance; without a floor its first wobble scores infinity.
    return max(1e-3 * abs(mean), 1e-9)


def _protected(x: float, mean: float, sd: float) -> float:
    """What an anomalous point teaches: one sigma towards it. Clipping at the alarm level
    instead (``mean + protect_z * sd``) inflates the EW variance by about ``alpha * protect_z^2``
    per point (x2.6 per sample at alpha 0.05, z 6), so a sustained regression stops scoring
    within a few samples. At one sigma the variance stays put and the mean creeps
    ``alpha`` sigmas per sample: a real level change is still learned, over hundreds of samples.
    """
    return mean + math.copysign(sd, x - mean)


def _new_stats(alpha: float, mean: float, var: float) -> tuple[stats.EWMean, stats.EWVar]:
    """River EW statistics started at a given mean and variance.

    EWVar's first update sets its mean and zero variance; a second update at distance ``d`` then
    gives mean ``x1 + alpha*d`` and variance ``alpha*(1-alpha)*d^2``: two points reproduce any
    (mean, var) pair.
    """
    m = stats.EWMean(fading_factor=alpha)
    v = stats.EWVar(fading_factor=alpha)
    m.update(mean)
    if var > 0.0 and 0.0 < alpha < 1.0:
        d = math.sqrt(var / (alpha * (1.0 - alpha)))
        x1 = mean - alpha * d
        v.update(x1)
        v.update(x1 + d)
    else:
        v.update(mean)
    return m, v


class _Level:
    """Mean and variance of a signal: exact (Welford) over the first ``1/alpha`` samples, then
    River's ``EWMean``/``EWVar`` started from that estimate.

    Why not EW from the first sample: River's EW statistics start at the first value, so with
    ``alpha`` 0.003 the mean stays near the first sample for hundreds of samples and the
    variance is biased low by ``1 - (1-alpha)^n``; every early point then looks anomalous, and
    anomaly protection would freeze the model on its first value.
    """

    __slots__ = ("_ew_mean", "_ew_var", "_m2", "_mean", "alpha", "exact_until", "n")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.exact_until = max(2, math.ceil(1.0 / alpha))
        self.n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._ew_mean: stats.EWMean | None = None
        self._ew_var: stats.EWVar | None = None

    def get(self) -> tuple[float, float]:
        """``(mean, variance)``; ``(0, 0)`` before the first sample."""
        if self._ew_mean is not None and self._ew_var is not None:
            return self._ew_mean.get(), self._ew_var.get()
        return self._mean, (self._m2 / self.n if self.n else 0.0)

    def update(self, x: float) -> None:
        self.n += 1
        if self._ew_mean is not None and self._ew_var is not None:
            self._ew_mean.update(x)
            self._ew_var.update(x)
            return
        delta = x - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (x - self._mean)
        if self.n >= self.exact_until:
            self._ew_mean, self._ew_var = _new_stats(self.alpha, self._mean, self._m2 / self.n)

    def state(self) -> list[float]:
        mean, var = self.get()
        return [float(self.n), mean, var]

    @classmethod
    def restore(cls, alpha: float, n: int, mean: float, var: float) -> _Level:
        lv = cls(alpha)
        lv.n = n
        if n >= lv.exact_until:
            lv._ew_mean, lv._ew_var = _new_stats(alpha, mean, var)
        else:
            lv._mean, lv._m2 = mean, var * n
        return lv


class EWZScoreModel:
    """Exponentially weighted z-score of one signal, with anomaly protection.

    ``alpha`` is River's fading factor (weight of the newest value); ``protect_z``: a point
    beyond it is learned as if it lay one sigma from the mean (:func:`_protected`), so a
    regression is not absorbed as the new normal within a few samples.

    >>> m = EWZScoreModel()
    >>> for v in [1.0, 1.1, 0.9, 1.0, 1.05, 0.95] * 5:
    ...     _ = m.score_one(v); m.learn_one(v)
    >>> m.score_one(1.0) < 2 < m.score_one(3.0)
    True
    """

    __slots__ = ("_level", "alpha", "protect_z", "warmup")

    def __init__(self, alpha: float = 0.05, warmup: int = 10, protect_z: float = 6.0) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.protect_z = protect_z
        self._level = _Level(alpha)

    @property
    def n(self) -> int:
        """Samples learned."""
        return self._level.n

    def _z(self, x: float) -> tuple[float, float, float]:
        mean, var = self._level.get()
        sd = max(math.sqrt(var), _sd_floor(mean))
        return abs(x - mean) / sd, mean, sd

    def score_one(self, x: float) -> float:
        if self._level.n < self.warmup:
            return 0.0
        return self._z(x)[0]

    def learn_one(self, x: float) -> None:
        if self._level.n >= self.warmup:
            z, mean, sd = self._z(x)
            if z > self.protect_z:
                x = _protected(x, mean, sd)
        self._level.update(x)

    def score_learn_one(self, x: float) -> float:
        """``score_one(x)`` then ``learn_one(x)`` in one pass (the engine's hot path)."""
        level = self._level
        if level.n < self.warmup:
            level.update(x)
            return 0.0
        z, mean, sd = self._z(x)
        level.update(_protected(x, mean, sd) if z > self.protect_z else x)
        return z

    def to_state(self) -> list[float]:
        """``[n, mean, variance]``."""
        return self._level.state()

    @classmethod
    def from_state(
        cls, state: list[float], alpha: float = 0.05, warmup: int = 10, protect_z: float = 6.0
    ) -> EWZScoreModel:
        """Rebuild a model from :meth:`to_state` (equal up to float rounding)."""
        m = cls(alpha, warmup, protect_z)
        m._level = _Level.restore(alpha, int(state[0]), state[1], state[2])
        return m


# A Gaussian signal's z-scores: 99.5% quantile about 2.8, mean exceedance above it about 0.33.
_PRIOR_U = 2.8
_PRIOR_B = 0.33


class CalibratedZModel:
    """EW z-score calibrated by a peaks-over-threshold fit of its own tail.

    Parameters: ``alpha``, River's fading factor of the level and scale (0.003: a memory of a
    few hundred samples); ``protect_z``, raw z beyond which a point is learned as one sigma and
    kept out of the tail fit (``None``: learn everything, adapting to level shifts);
    ``tail_q``, the quantile of past z-scores above which the tail is fitted; ``tail_rate``, how
    fast the mean exceedance adapts; ``tail_cap``, the largest exceedance (in units of the
    current mean exceedance) one point may teach; ``warmup``, samples before any score; ``log``,
    model ``sign(x)*log1p(|x|)`` instead of ``x`` (for positive, heavy-tailed signals).

    ``score_one`` returns ``sqrt(2 L)`` where ``L = -ln(1 - tail_q) + (z - u) / b`` is the fitted
    negative log tail probability (about the Gaussian sigmas of an event that rare); below ``u``
    it is ``z`` scaled so the score is continuous and monotone in ``z``.

    >>> m = CalibratedZModel(warmup=20)
    >>> for i in range(400):
    ...     v = 1.0 + 0.1 * math.sin(i)
    ...     _ = m.score_one(v); m.learn_one(v)
    >>> m.score_one(1.0) < 3 < 6 < m.score_one(3.0)
    True
    """

    __slots__ = (
        "_l0",
        "_last",
        "_level",
        "alpha",
        "b",
        "log",
        "protect_z",
        "tail_cap",
        "tail_q",
        "tail_rate",
        "u",
        "warmup",
    )

    def __init__(
        self,
        alpha: float = 0.003,
        warmup: int = 30,
        protect_z: float | None = 8.0,
        tail_q: float = 0.995,
        tail_rate: float = 0.05,
        tail_cap: float = 5.0,
        log: bool = False,
    ) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.protect_z = protect_z
        self.tail_q = tail_q
        self.tail_rate = tail_rate
        self.tail_cap = tail_cap
        self.log = log
        self._level = _Level(alpha)
        self.u = _PRIOR_U  # running tail_q-quantile of the raw z-scores
        self.b = _PRIOR_B  # mean exceedance of z above u
        self._l0 = -math.log1p(-tail_q)
        # (x, t, z, mean, sd) of the last score_one: learn_one of the same x reuses it.
        self._last: tuple[float, float, float, float, float] | None = None

    @property
    def n(self) -> int:
        """Samples learned."""
        return self._level.n

    def _t(self, x: float) -> float:
        if not self.log:
            return x
        return math.log1p(x) if x >= 0.0 else -math.log1p(-x)

    def _z(self, t: float) -> tuple[float, float, float]:
        mean, var = self._level.get()
        sd = max(math.sqrt(var), _sd_floor(mean))
        return abs(t - mean) / sd, mean, sd

    def raw_z(self, x: float) -> float:
        """The uncalibrated z-score of ``x`` (0 before the first sample)."""
        return self._z(self._t(x))[0] if self._level.n > 0 else 0.0

    def score_one(self, x: float) -> float:
        if self._level.n < self.warmup:
            return 0.0
        t = self._t(x)
        z, mean, sd = self._z(t)
        self._last = (x, t, z, mean, sd)
        l0 = self._l0
        if z <= self.u:
            return z * math.sqrt(2.0 * l0) / max(self.u, 1e-12)
        return math.sqrt(2.0 * (l0 + (z - self.u) / max(self.b, 1e-12)))

    def learn_one(self, x: float) -> None:
        last, self._last = self._last, None
        if last is not None and last[0] == x:
            _, t, z, mean, sd = last
        else:
            t = self._t(x)
            if self._level.n == 0:
                self._level.update(t)
                return
            z, mean, sd = self._z(t)
        anomalous = (
            self.protect_z is not None and z > self.protect_z and self._level.n >= self.warmup
        )
        if anomalous:
            t = _protected(t, mean, sd)
        self._level.update(t)
        if anomalous or self._level.n <= self.warmup:
            # The tail describes normal extremes: neither incidents nor the warm-up's own
            # unsettled estimates may teach it.
            return
        # Robbins-Monro step of the quantile, the step scaled to the quantile itself.
        u, b = self.u, self.b
        exc = z - u
        self.u = u + 0.01 * max(u, 1e-3) * ((1.0 if exc > 0.0 else 0.0) - (1.0 - self.tail_q))
        if exc > 0.0:
            self.b = b + self.tail_rate * (min(exc, self.tail_cap * b) - b)

    def to_state(self) -> list[float]:
        """``[n, mean, variance, u, b]``."""
        return [*self._level.state(), self.u, self.b]

    @classmethod
    def from_state(cls, state: list[float], **params: float | bool | None) -> CalibratedZModel:
        """Rebuild a model from :meth:`to_state` and the same constructor parameters."""
        m = cls(**params)  # type: ignore[arg-type]
        m._level = _Level.restore(m.alpha, int(state[0]), state[1], state[2])
        m.u, m.b = state[3], state[4]
        return m
