"""The comparison's hot arithmetic keeps its recurrences to the last bit: NoiseTracker and
binomial_step against their plain statements (the order of operations fixes every rounding)."""

from __future__ import annotations

import doctest
import math
import random

import pytest

import models.compare
from models.compare import _RATIO_GRID, NoiseTracker, binomial_step


class _PlainNoise:
    """NoiseTracker's recurrences as first written, one statement per quantity."""

    def __init__(self) -> None:
        self.n = 0
        self.last = self.sq = self.fast = self.slow = self.wsq = 0.0

    def add(self, x: float) -> None:
        if self.n > 0:
            d2 = 0.5 * (x - self.last) ** 2
            if self.n > 5:
                cap = 25.0 * self.sq
                d2 = d2 if d2 < cap else cap
            limit2 = 25.0 * (self.sq + self.wsq)  # five sd, before this sample's update
            self.sq += (d2 - self.sq) * (1.0 / self.n if self.n < 10 else 0.05)
            self.fast += (x - self.fast) * 0.15
            if self.n >= 100 and (x - self.slow) ** 2 > limit2 > 0.0:  # an excursion
                self.slow += math.copysign(math.sqrt(limit2), x - self.slow) * 0.001
            else:
                self.slow += (x - self.slow) * (1.0 / self.n if self.n < 100 else 0.01)
                w2 = (self.fast - self.slow) ** 2
                if self.n < 100:
                    self.wsq += (w2 - self.wsq) * (1.0 / self.n)
                elif not w2 > limit2 > 0.0:  # nor while the minute-scale level is out there
                    w2 = min(w2, 3.0 * max(self.wsq, (0.15 / 1.85) * self.sq))
                    self.wsq += (w2 - self.wsq) * 0.01
        else:
            self.fast = self.slow = x
        self.last = x
        self.n += 1


def _plain_binomial_step(
    cusum: list[float],
    rho0: float,
    events: float,
    exposure: float,
    other_events: float,
    other_exposure: float,
    cap: float,
) -> float:
    if events + other_events <= 0 or exposure <= 0 or other_exposure <= 0:
        return max(cusum)
    pi0 = rho0 * exposure / (rho0 * exposure + other_exposure)
    best = 0.0
    for k, mult in enumerate(_RATIO_GRID):
        rho = rho0 * mult
        pik = rho * exposure / (rho * exposure + other_exposure)
        llr = events * math.log(pik / pi0) + other_events * math.log((1.0 - pik) / (1.0 - pi0))
        v = cusum[k] + (llr if llr < cap else cap)
        v = v if v > 0.0 else 0.0
        cusum[k] = v
        if v > best:
            best = v
    return best


def test_docstring_examples_run() -> None:
    assert doctest.testmod(models.compare).failed == 0


@pytest.mark.parametrize("seed", range(20))
def test_noise_tracker_keeps_its_recurrences(seed: int) -> None:
    rng = random.Random(seed)
    scale = 10 ** rng.uniform(-3, 3)
    level = rng.gauss(0.0, 3.0)
    fast, plain = NoiseTracker(), _PlainNoise()
    wild = seed % 2 == 0  # outliers and zeros; calm series reach the drift estimate's guards
    incident = 0  # samples left of a shared incident (an excursion that ends)
    for _ in range(600):
        r = rng.random() if wild else 0.5
        if r < 0.02:
            level += 10.0 * scale
        if incident == 0 and rng.random() < 0.02:
            incident = rng.randrange(3, 40)
        shift = 30.0 * scale if incident else 0.0
        incident = max(incident - 1, 0)
        x = 0.0 if r > 0.97 else level + shift + scale * rng.gauss(0.0, 40.0 if r < 0.05 else 1.0)
        fast.add(x)
        plain.add(x)
        assert (fast.n, fast.last, fast.sq, fast.fast, fast.slow, fast.wsq) == (
            plain.n,
            plain.last,
            plain.sq,
            plain.fast,
            plain.slow,
            plain.wsq,
        )


def test_binomial_step_keeps_its_recurrence() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        args = (
            rng.choice([1.0, 1.5, rng.uniform(1.0, 3.0)]),
            rng.choice([0, 1, rng.randrange(50), rng.uniform(0.0, 100.0)]),
            rng.choice([0.0, 1.0, float(rng.randrange(1, 5000))]),
            rng.choice([0, rng.randrange(200)]),
            rng.choice([float(rng.randrange(1, 50000)), rng.uniform(0.1, 100.0)]),
            rng.uniform(1.0, 20.0),
        )
        a = [rng.uniform(0.0, 5.0) for _ in _RATIO_GRID]
        b = list(a)
        assert binomial_step(a, *args) == _plain_binomial_step(b, *args)
        assert a == b
