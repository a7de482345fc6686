"""The per-signal models keep the SignalModel contract (models/base.py)."""

from __future__ import annotations

import doctest
import math
import pickle
import random

import pytest

import models.anomaly
from models.anomaly import CalibratedZModel, EWZScoreModel
from models.base import SignalModel

Model = EWZScoreModel | CalibratedZModel


def _models() -> list[Model]:
    return [EWZScoreModel(), CalibratedZModel(), CalibratedZModel(protect_z=None, log=True)]


MODELS = pytest.mark.parametrize("which", range(3), ids=["ewz", "calibrated", "calibrated-log"])


def _feed(m: Model, xs: list[float]) -> list[float]:
    out = []
    for x in xs:
        out.append(m.score_one(x))
        m.learn_one(x)
    return out


def _gauss(n: int, seed: int = 1, mu: float = 10.0, sd: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mu, sd) for _ in range(n)]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(models.anomaly).failed == 0


@MODELS
def test_is_a_signal_model(which: int) -> None:
    m: SignalModel = _models()[which]
    assert m.score_one(1.0) == 0.0  # nothing learned yet: no opinion


@MODELS
def test_scores_are_non_negative_and_score_one_does_not_learn(which: int) -> None:
    model = _models()[which]
    scores = _feed(model, _gauss(300))
    assert all(s >= 0.0 for s in scores)
    before = model.to_state()
    for x in (0.0, 10.0, 1e6):
        model.score_one(x)
    assert model.to_state() == before


@MODELS
def test_scores_keep_resolution_far_in_the_tail(which: int) -> None:
    model = _models()[which]
    _feed(model, _gauss(300))
    far = [model.score_one(10.0 + d) for d in (5.0, 50.0, 5e3, 5e6)]
    assert far == sorted(far) and len(set(far)) == 4
    assert model.score_one(10.0) < 3.0 < model.score_one(20.0)


@pytest.mark.parametrize("which", [0, 1], ids=["ewz", "calibrated"])
def test_protection_keeps_a_sustained_shift_anomalous(which: int) -> None:
    model = _models()[which]
    _feed(model, _gauss(400))
    shifted = _feed(model, _gauss(40, seed=2, mu=30.0))
    assert min(shifted[-10:]) > 6.0


def test_without_protection_a_level_shift_is_learned() -> None:
    m = CalibratedZModel(protect_z=None, alpha=0.05)
    _feed(m, _gauss(400))
    shifted = _feed(m, _gauss(300, seed=2, mu=30.0))
    assert shifted[-1] < 3.0


def test_calibration_discounts_a_heavy_tailed_signal() -> None:
    # the same raw z scores lower on a series whose normal includes big excursions
    calm, wild = CalibratedZModel(), CalibratedZModel()
    rng = random.Random(3)
    _feed(calm, _gauss(2000))
    _feed(
        wild, [10.0 + rng.gauss(0, 1) * (8.0 if rng.random() < 0.02 else 1.0) for _ in range(2000)]
    )
    x_calm = 10.0 + 6.0 * math.sqrt(calm.to_state()[2])
    x_wild = 10.0 + 6.0 * math.sqrt(wild.to_state()[2])
    assert calm.raw_z(x_calm) == pytest.approx(wild.raw_z(x_wild), rel=0.05)
    assert wild.score_one(x_wild) < calm.score_one(x_calm)


def test_constant_signal_does_not_score_infinity() -> None:
    for m in _models():
        _feed(m, [5.0] * 100)
        s = m.score_one(5.001)
        assert math.isfinite(s)


@MODELS
def test_pickles_exactly(which: int) -> None:
    model = _models()[which]
    xs = _gauss(300)
    _feed(model, xs[:200])
    copy = pickle.loads(pickle.dumps(model))
    assert _feed(copy, xs[200:]) == _feed(model, xs[200:])


def test_state_is_a_handful_of_floats_and_restores() -> None:
    xs = _gauss(400)
    ew = EWZScoreModel()
    _feed(ew, xs[:300])
    ew2 = EWZScoreModel.from_state(ew.to_state())
    assert _feed(ew2, xs[300:]) == pytest.approx(_feed(ew, xs[300:]), rel=1e-9)
    cz = CalibratedZModel(log=True)
    _feed(cz, xs[:300])
    state = cz.to_state()
    assert len(state) == 5 and all(isinstance(v, float) for v in state)
    cz2 = CalibratedZModel.from_state(state, log=True)
    assert _feed(cz2, xs[300:]) == pytest.approx(_feed(cz, xs[300:]), rel=1e-9)


def test_score_learn_one_equals_score_then_learn() -> None:
    import random

    from models.anomaly import EWZScoreModel

    rng = random.Random(3)
    a, b = EWZScoreModel(), EWZScoreModel()
    for i in range(500):
        x = rng.gauss(10.0, 1.0) + (30.0 if i in (200, 201, 350) else 0.0)
        z = a.score_one(x)
        a.learn_one(x)
        assert b.score_learn_one(x) == z
        assert a.to_state() == b.to_state()
