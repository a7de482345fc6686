"""The mean-shift test's second reference: the canary's own healthy offset from its baseline.

A small canary's p99 reads below a large baseline's while healthy; a tail regression then lifts it
well above where it was, yet only a little above the baseline. These tests pin what the own
offset may and may not do: catch that rise, never flag a canary that merely becomes equal to its
baseline, forget the offset when the canary's count regime changes, and not learn the regression.
"""

from __future__ import annotations

import math
import pickle
import random

from models.compare import MeanShiftTest, alarm_threshold

M = math.log(1.1)
THRESHOLD = alarm_threshold(0.01, 360)
SD = 0.15  # noise of one paired p99 log-ratio at ~80 canary requests
REGIME = math.log(80.0)


def _feed(
    t: MeanShiftTest,
    level: float,
    n: int,
    rng: random.Random,
    regime: float = REGIME,
    learn: bool = True,
) -> int | None:
    """``n`` samples around ``level``; the index of the first failed check, if any."""
    for i in range(n):
        x = level + rng.gauss(0.0, SD)
        if t.update(x, 1.0, SD * SD, regime=regime, learn=learn).failed:
            return i
    return None


def test_a_rise_above_the_canarys_own_healthy_offset_is_caught() -> None:
    # healthy at 0.8x of the baseline's reading, then 1.13x of it (1.4x of its own level)
    caught = []
    for seed in range(20):
        rng = random.Random(seed)
        t = MeanShiftTest(M, THRESHOLD)
        assert _feed(t, math.log(0.8), 45, rng) is None
        assert t.bar() < M
        caught.append(_feed(t, math.log(1.13), 90, rng))
    assert all(c is not None for c in caught), caught


def test_without_the_own_offset_the_same_rise_is_missed() -> None:
    # the same data, but no count regime (records without counts): only the baseline bar stands
    missed = 0
    for seed in range(20):
        rng = random.Random(seed)
        t = MeanShiftTest(M, THRESHOLD)
        _feed(t, math.log(0.8), 45, rng, regime=math.nan)
        assert t.bar() == M
        missed += _feed(t, math.log(1.13), 90, rng, regime=math.nan) is None
    assert missed >= 15


def test_a_canary_that_becomes_equal_to_its_baseline_is_not_flagged() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        t = MeanShiftTest(M, THRESHOLD)
        _feed(t, math.log(0.8), 45, rng)
        assert t.bar() >= 0.0
        assert _feed(t, 0.0, 300, rng) is None


def test_a_change_of_count_regime_forgets_the_offset() -> None:
    rng = random.Random(1)
    t = MeanShiftTest(M, THRESHOLD)
    _feed(t, math.log(0.8), 45, rng)
    assert t.bar() < M
    # the traffic split doubled: the small-count offset no longer holds
    _feed(t, math.log(0.9), 5, rng, regime=REGIME + math.log(2.0))
    assert t.own_n < MeanShiftTest.OWN_MIN
    assert t.bar() == M


def test_samples_without_a_count_keep_the_offset_but_are_not_learned() -> None:
    rng = random.Random(2)
    t = MeanShiftTest(M, THRESHOLD)
    _feed(t, math.log(0.8), 45, rng)
    n, bar = t.own_n, t.bar()
    _feed(t, math.log(0.8), 10, rng, regime=math.nan)
    assert (t.own_n, t.bar()) == (n, bar)


def test_the_offset_is_learned_only_past_warm_up_and_while_there_is_no_evidence() -> None:
    rng = random.Random(3)
    t = MeanShiftTest(M, THRESHOLD)
    _feed(t, math.log(0.8), 45, rng, learn=False)  # warm-up samples: not learned
    assert t.own_n == 0
    _feed(t, math.log(0.8), 45, rng)
    learned = t.own_n
    # a regression: once the evidence builds, it stops being averaged into the offset
    _feed(t, math.log(2.0), 10, rng)
    assert t.own_n - learned <= 2
    assert t.bar() < M


def test_a_checkpoint_from_before_the_own_offset_restores() -> None:
    t = MeanShiftTest(M, THRESHOLD)
    t.update(0.3, 1.0, 0.01)
    fields = ("cusum", "min_log_effect", "n", "recent", "threshold", "var_floor")
    old = MeanShiftTest.__new__(MeanShiftTest)
    state = pickle.loads(pickle.dumps({k: getattr(t, k) for k in fields}))  # a deep copy
    old.__setstate__((None, state))
    assert old.own_n == 0 and old.bar() == M
    assert old.update(0.3, 1.0, 0.01).score == t.update(0.3, 1.0, 0.01).score


def test_pickles_exactly() -> None:
    rng = random.Random(4)
    t = MeanShiftTest(M, THRESHOLD)
    _feed(t, math.log(0.8), 60, rng)
    u = pickle.loads(pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL))
    assert u.to_state() == t.to_state()
    assert (u.regime, u.own_regime, u.own_sq) == (t.regime, t.own_regime, t.own_sq)
