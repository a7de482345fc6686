"""Range, rolling-mean, daily-profile, daily-echo and silence novelty (models/novelty.py)."""

from __future__ import annotations

import doctest
import math
import random

import models.novelty
from models.novelty import (
    DAY_SECONDS,
    DailyEcho,
    DailyProfile,
    QuietRecord,
    RangeNovelty,
    RollingMean,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(models.novelty).failed == 0


def test_range_novelty_is_scale_free() -> None:
    def excess(scale: float) -> float:
        r = RangeNovelty(warmup=10)
        rng = random.Random(5)
        for _ in range(500):
            r.learn_one(scale * rng.uniform(0.0, 1.0))
        return r.score_one(scale * 1.3)

    assert math.isclose(excess(1.0), excess(1e6), rel_tol=1e-9)
    assert 0.25 < excess(1.0) < 0.35


def test_range_novelty_is_silent_during_warmup_and_inside_the_range() -> None:
    r = RangeNovelty(warmup=100)
    for i in range(101):
        assert r.score_one(float(i * i)) == 0.0  # up to and including the 100th value learned
        r.learn_one(float(i % 7))
    assert r.score_one(3.0) == 0.0
    assert r.score_one(12.0) > 0.0


def test_rolling_mean_stays_exact_over_a_long_stream() -> None:
    m = RollingMean(20)
    out = None
    for i in range(200_000):
        out = m.update(1e9 if i % 2 else 0.1)
    assert out is not None and math.isclose(out, (1e9 + 0.1) / 2, rel_tol=1e-12)


def _feed(p: DailyProfile, rows: list[tuple[float, float]]) -> list[float | None]:
    out = []
    for ts, v in rows:
        out.append(p.residual(ts, v))
        p.learn_one(ts, v)
    return out


def test_daily_profile_explains_a_daily_signal_and_not_noise() -> None:
    rng = random.Random(2)
    daily = [
        (i * 300.0, (80.0 if 96 <= i % 288 < 216 else 20.0) + rng.gauss(0, 1))
        for i in range(288 * 6)
    ]
    noise = [(i * 300.0, rng.gauss(50, 10)) for i in range(288 * 6)]
    p, q = DailyProfile(), DailyProfile()
    _feed(p, daily)
    _feed(q, noise)
    assert p.unexplained < 0.05 < 0.5 < q.unexplained


def test_daily_profile_waits_for_enough_days() -> None:
    p = DailyProfile(min_days=2)
    rows = [(i * 3600.0, float(i % 24)) for i in range(24 * 4)]
    out = _feed(p, rows)
    assert all(r is None for r in out[:24])
    assert all(r is not None for r in out[24 * 3 :])
    assert p.interval == 3600.0


def test_quiet_record_fires_once_when_a_busy_signal_goes_quiet() -> None:
    values = [50.0 if i % 10 == 0 else 1.0 for i in range(3000)] + [1.0] * 300
    q = QuietRecord()
    fired = [i for i, v in enumerate(values) if q.update(v)]
    assert len(fired) == 1 and 3000 < fired[0] < 3030


def test_quiet_record_rarely_fires_on_noise() -> None:
    # Records among >= 100 earlier runs: about log(runs) of them in a long stream, not hundreds.
    rng = random.Random(9)
    q = QuietRecord()
    fired = sum(q.update(rng.gauss(0.0, 1.0)) for _ in range(100_000))
    assert fired <= 5


def test_daily_echo_finds_yesterdays_score_within_the_tolerance_only() -> None:
    e = DailyEcho(floor=3.0, tolerance=3600.0)
    e.remember(10_000.0, 6.0)
    day = DAY_SECONDS
    assert e.echo(day + 10_000.0 - 3600.0) == 6.0
    assert e.echo(day + 10_000.0 + 3600.0) == 6.0
    e2 = DailyEcho(floor=3.0, tolerance=3600.0)
    e2.remember(10_000.0, 6.0)
    assert e2.echo(day + 10_000.0 - 3601.0) == 0.0  # yesterday's spike is still an hour away
    assert e2.echo(day + 10_000.0 + 3601.0) == 0.0  # and now more than an hour past


def test_daily_echo_ignores_small_scores_and_takes_the_largest() -> None:
    e = DailyEcho(floor=3.0, tolerance=600.0)
    for k, score in enumerate((2.9, 4.0, 7.0, 3.5)):
        e.remember(k * 300.0, score)
    assert e.echo(DAY_SECONDS) == 7.0
    f = DailyEcho(floor=3.0, tolerance=600.0)
    f.remember(0.0, 2.9)
    assert f.echo(DAY_SECONDS) == 0.0


def test_daily_echo_keeps_a_bounded_memory() -> None:
    # A week of five-minute rows, every one notable: only about a day and an hour is kept.
    e = DailyEcho(floor=0.0, tolerance=3600.0)
    for i in range(7 * 288):
        e.echo(i * 300.0)
        e.remember(i * 300.0, 1.0)
    assert len(e._events) <= 288 + 13
