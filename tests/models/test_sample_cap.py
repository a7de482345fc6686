"""One observation adds at most a share of the threshold to the mean-shift test: no two samples
decide alone, however extreme (a small canary whose one pod pauses for GC reads far above its
baseline for a window or two)."""

from __future__ import annotations

import math

from models.compare import MeanShiftTest, alarm_threshold


def test_no_two_samples_decide_alone() -> None:
    # a small canary whose one paused pod lifts two windows in a row far above its baseline:
    # two such samples, however extreme, stay below the threshold; a third reaches it
    t = MeanShiftTest(math.log(1.1), alarm_threshold(0.001, 360))
    for i in range(30):
        t.update(0.05 * (-1) ** i, 1.0, 0.01)
    two = [t.update(3.0, 1.0, 0.01) for _ in range(2)]
    assert not two[-1].failed and two[-1].score <= 2 * MeanShiftTest.SAMPLE_CAP * t.threshold
    assert t.update(3.0, 1.0, 0.01).failed
