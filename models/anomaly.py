"""First version of the per-signal model: exponentially weighted mean and variance (River's
``stats.EWMean``/``stats.EWVar``) of the value, scored as a z-score, with anomalous points
learned at a reduced rate (River's ``AnomalyFilter`` idea) so a regression is not absorbed."""

from __future__ import annotations

import math

from river import stats


class EWZScoreModel:
    """Robust-ish z-score model of one signal.

    >>> m = EWZScoreModel()
    >>> for v in [1.0, 1.1, 0.9, 1.0, 1.05, 0.95] * 5:
    ...     _ = m.score_one(v); m.learn_one(v)
    >>> m.score_one(1.0) < 2 < m.score_one(3.0)
    True
    """

    def __init__(self, alpha: float = 0.05, warmup: int = 10, protect_z: float = 6.0) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.protect_z = protect_z
        self._mean = stats.EWMean(fading_factor=alpha)
        self._var = stats.EWVar(fading_factor=alpha)
        self.n = 0

    def score_one(self, x: float) -> float:
        if self.n < self.warmup:
            return 0.0
        mean = self._mean.get()
        sd = math.sqrt(max(self._var.get(), 0.0))
        floor = 1e-3 * max(abs(mean), 1e-9)
        return abs(x - mean) / max(sd, floor)

    def learn_one(self, x: float) -> None:
        if self.n >= self.warmup and self.score_one(x) > self.protect_z:
            # Anomalous: nudge the model only slightly towards it, by clipping the point.
            mean = self._mean.get()
            sd = math.sqrt(max(self._var.get(), 0.0))
            x = mean + math.copysign(self.protect_z * sd, x - mean)
        self._mean.update(x)
        self._var.update(x)
        self.n += 1

    def to_state(self) -> list[float]:
        return [float(self.n), self._mean.get(), self._var.get()]

