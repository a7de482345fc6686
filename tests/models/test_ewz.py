"""EWZScore, the decision core's per-sample model, is EWZScoreModel bit for bit."""

from __future__ import annotations

import doctest
import pickle
import random

import pytest

import models.ewz
from models.anomaly import EWZScoreModel
from models.ewz import EWZScore


def _stream(seed: int, n: int) -> list[float]:
    """Gaussian noise with level shifts, outliers, zeros and a constant stretch."""
    rng = random.Random(seed)
    scale = 10 ** rng.uniform(-4, 4)
    level = rng.gauss(0.0, 5.0)
    out: list[float] = []
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            level += rng.gauss(0.0, 10.0) * scale
        if r > 0.97:
            out.append(level + 40.0 * scale * rng.gauss(0.0, 1.0))
        elif r > 0.95:
            out.append(0.0)
        elif 100 <= i < 130:
            out.append(level)
        else:
            out.append(level + scale * rng.gauss(0.0, 1.0))
    return out


def test_docstring_examples_run() -> None:
    assert doctest.testmod(models.ewz).failed == 0


@pytest.mark.parametrize(
    ("alpha", "warmup", "protect_z"),
    [(0.05, 10, 6.0), (0.05, 30, 3.0), (0.003, 10, 8.0), (0.5, 0, 1.0), (1.0, 10, 6.0)],
)
@pytest.mark.parametrize("seed", range(8))
def test_same_scores_and_state_as_ewzscoremodel(
    alpha: float, warmup: int, protect_z: float, seed: int
) -> None:
    ref = EWZScoreModel(alpha, warmup, protect_z)
    fast = EWZScore(alpha, warmup, protect_z)
    for x in _stream(seed, 400):
        assert fast.score_learn_one(x) == ref.score_learn_one(x)
        assert fast.to_state() == ref.to_state()
    assert fast.n == ref.n


def test_pickles_exactly() -> None:
    xs = _stream(1, 300)
    m = EWZScore()
    for x in xs[:200]:
        m.score_learn_one(x)
    copy = pickle.loads(pickle.dumps(m))
    assert [copy.score_learn_one(x) for x in xs[200:]] == [m.score_learn_one(x) for x in xs[200:]]
