"""Scale-free novelty of one signal: new ranges and departures from its daily profile.

Who calls this: ``benchmarks.nab`` builds its per-signal detector from these pieces beside the
calibrated z-scores of :mod:`models.anomaly`; they are online (one value at a time, no look-ahead)
and keep a handful of floats (the daily profile one per slot of the day, the daily echo one pair
per notable score of the last day and a bit).

- :class:`RangeNovelty`: how far a value lies outside everything the signal has shown so far, in
  units of that range. A new record is rare in a long stable history and measured in the
  signal's own units, so one tolerance means the same on every signal.
- :class:`RollingMean`: the mean of the last ``width`` values, so that :class:`RangeNovelty` can
  see a sustained new level that no single noisy value reaches.
- :class:`DailyProfile`: the value expected at this time of day (an exponentially weighted mean
  per slot of the day), and how much of the signal's variance that profile leaves unexplained.
  For a strongly daily signal the departure from the profile is the anomaly, not the value:
  a missing daily peak, or a flat line where the day should rise.
- :class:`DailyEcho`: the largest notable score of about one day earlier (the same time of day,
  within a tolerance), so that a spike repeated on the signal's daily schedule (a nightly job,
  a daily batch) can be told from a spike at a time of day that has not seen one.
"""

from __future__ import annotations

import math
from collections import deque

DAY_SECONDS = 86_400.0


class RangeNovelty:
    """Excess of a value beyond the range seen so far, as a fraction of that range.

    ``score_one(x)`` is ``max(x - max_seen, min_seen - x) / (max_seen - min_seen)`` when that is
    positive and the model has learned more than ``warmup`` values, else 0. ``learn_one`` widens
    the range.

    >>> r = RangeNovelty(warmup=3)
    >>> for v in (1.0, 3.0, 2.0, 2.5):
    ...     r.learn_one(v)
    >>> r.score_one(2.0), r.score_one(4.0), r.score_one(0.0)
    (0.0, 0.5, 0.5)
    """

    __slots__ = ("hi", "lo", "n", "warmup")

    def __init__(self, warmup: int = 50) -> None:
        self.warmup = warmup
        self.n = 0
        self.lo = math.inf
        self.hi = -math.inf

    def score_one(self, x: float) -> float:
        span = self.hi - self.lo
        if self.n <= self.warmup or span <= 0.0:
            return 0.0
        return max(x - self.hi, self.lo - x, 0.0) / span

    def learn_one(self, x: float) -> None:
        self.n += 1
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)

    def to_state(self) -> list[float]:
        """``[n, min, max]``."""
        return [float(self.n), self.lo, self.hi]


class RollingMean:
    """Mean of the last ``width`` values (``None`` until ``width`` values have been seen).

    >>> m = RollingMean(3)
    >>> [m.update(v) for v in (1.0, 2.0, 3.0, 7.0)]
    [None, None, 2.0, 4.0]
    """

    __slots__ = ("_sum", "_window", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self._window: deque[float] = deque()
        self._sum = 0.0

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        if len(window) > self.width:
            # Recomputed rather than subtracted when the window slides, so that rounding error
            # cannot accumulate over a long-lived signal.
            window.popleft()
            self._sum = math.fsum(window)
        else:
            self._sum += x
        return self._sum / self.width if len(window) == self.width else None


class DailyProfile:
    """The expected value per slot of the day, and the share of variance it leaves unexplained.

    The slot length is the signal's sampling interval, taken as the median of its first
    ``interval_samples`` gaps (no value is profiled before that). ``residual(ts, x)`` returns
    ``x`` minus the slot's expected value once that slot has been seen on ``min_days`` earlier
    occasions, else ``None``; it also updates ``unexplained``: an exponentially weighted mean of
    the squared residuals over an exponentially weighted variance of the values (``alpha``
    memory), near 0 for a signal its profile predicts and about 1 or more for one it does not.
    ``learn_one(ts, x)`` moves the slot's expectation by ``slot_rate`` towards ``x``.

    >>> p = DailyProfile(interval_samples=2)
    >>> out = []
    >>> for day in range(4):
    ...     for hour in range(24):
    ...         ts = day * 86400.0 + hour * 3600.0
    ...         v = 10.0 if 8 <= hour < 18 else 1.0
    ...         out.append(p.residual(ts, v)); p.learn_one(ts, v)
    >>> out[-1], p.unexplained < 0.01
    (0.0, True)
    >>> p.residual(4 * 86400.0 + 12 * 3600.0, 1.0)  # noon, yet the night-time value
    -9.0
    """

    __slots__ = (
        "_deltas",
        "_last_ts",
        "_mean",
        "_n",
        "_resid_sq",
        "_slots",
        "_var",
        "alpha",
        "interval",
        "interval_samples",
        "min_days",
        "slot_rate",
    )

    def __init__(
        self,
        slot_rate: float = 0.5,
        alpha: float = 0.003,
        min_days: int = 2,
        interval_samples: int = 10,
    ) -> None:
        self.slot_rate = slot_rate
        self.alpha = alpha
        self.min_days = min_days
        self.interval_samples = interval_samples
        self.interval: float | None = None
        self._deltas: list[float] = []
        self._last_ts: float | None = None
        self._slots: dict[int, list[float]] = {}  # slot -> [expected value, times seen]
        self._n = 0
        self._mean = 0.0
        self._var = 0.0
        self._resid_sq: float | None = None

    @property
    def unexplained(self) -> float:
        """Mean squared residual over the variance of the values (``inf`` until known)."""
        if self._resid_sq is None:
            return math.inf
        return self._resid_sq / max(self._var, 1e-12)

    def _slot(self, ts: float) -> int | None:
        if self.interval is None:
            return None
        return round((ts % DAY_SECONDS) / self.interval)

    def residual(self, ts: float, x: float) -> float | None:
        self._n += 1
        a = max(self.alpha, 1.0 / self._n)
        d = x - self._mean
        self._mean += a * d
        self._var = (1.0 - a) * (self._var + a * d * d)
        slot = self._slot(ts)
        entry = self._slots.get(slot) if slot is not None else None
        if entry is None or entry[1] < self.min_days:
            return None
        r = x - entry[0]
        rs = self._resid_sq
        self._resid_sq = r * r if rs is None else rs + self.alpha * (r * r - rs)
        return r

    def learn_one(self, ts: float, x: float) -> None:
        if self.interval is None:
            if self._last_ts is not None:
                self._deltas.append(ts - self._last_ts)
            self._last_ts = ts
            if len(self._deltas) >= self.interval_samples:
                gaps = sorted(self._deltas)
                self.interval = max(gaps[len(gaps) // 2], 1.0)
            return
        slot = self._slot(ts)
        assert slot is not None
        entry = self._slots.get(slot)
        if entry is None:
            self._slots[slot] = [x, 1.0]
        else:
            entry[0] += self.slot_rate * (x - entry[0])
            entry[1] += 1.0


class QuietRecord:
    """The longest stretch below the signal's usual level so far: a service gone quiet.

    A run is consecutive values at or below an exponentially weighted mean (``alpha``, exact
    while fewer than ``1/alpha`` values have been seen). ``update(x)`` returns True once per run,
    on the row where the current run becomes longer than every earlier completed run and at
    least ``min_run`` rows long, after ``warmup`` values and at least ``min_runs`` completed runs:
    among ``k`` exchangeable runs the newest is the longest with chance ``1/k``, so a record
    among few runs means little. A spiky signal whose spikes stop, or a busy one that flatlines
    at its floor, shows no single unusual value; the length of the silence is the evidence.

    >>> q = QuietRecord(min_run=3, warmup=5, min_runs=5)
    >>> pattern = [0.0, 0.0, 9.0] * 10 + [0.0] * 4
    >>> [i for i, v in enumerate(pattern) if q.update(v)]
    [32]
    """

    __slots__ = (
        "_fired",
        "_mean",
        "_n",
        "_run",
        "_side",
        "alpha",
        "longest",
        "min_run",
        "min_runs",
        "runs",
        "warmup",
    )

    def __init__(
        self, alpha: float = 0.003, min_run: int = 20, warmup: int = 100, min_runs: int = 100
    ) -> None:
        self.alpha = alpha
        self.min_run = min_run
        self.warmup = warmup
        self.min_runs = min_runs
        self.runs = 0
        self.longest = 0
        self._mean = 0.0
        self._n = 0
        self._run = 0
        self._side = 0
        self._fired = False

    def update(self, x: float) -> bool:
        self._n += 1
        side = 1 if x > self._mean else -1
        if side == self._side:
            self._run += 1
        else:
            if self._side < 0:
                self.longest = max(self.longest, self._run)
                self.runs += 1
            self._side, self._run, self._fired = side, 1, False
        self._mean += max(self.alpha, 1.0 / self._n) * (x - self._mean)
        if (
            side < 0
            and not self._fired
            and self._n > self.warmup
            and self._run >= self.min_run
            and self._run > self.longest
            and self.runs >= self.min_runs
        ):
            self._fired = True
            return True
        return False


class DailyEcho:
    """The largest notable score from about one day earlier: a spike that repeats on schedule.

    ``remember(ts, score)`` keeps ``score`` if it is at least ``floor`` (smaller scores are never
    an echo, so the memory stays a handful of entries). ``echo(ts)`` returns the largest score
    remembered at a time in ``[ts - period - tolerance, ts - period + tolerance]`` (seconds), or
    0 when there is none; it forgets everything older than that window, so timestamps must not
    decrease. Online: ``echo`` sees only scores remembered before it is called.

    >>> e = DailyEcho(floor=3.0, tolerance=600.0)
    >>> e.remember(0.0, 5.0); e.remember(300.0, 2.0); e.remember(7200.0, 4.0)
    >>> e.echo(DAY_SECONDS + 500.0), e.echo(DAY_SECONDS + 3600.0), e.echo(DAY_SECONDS + 7000.0)
    (5.0, 0.0, 4.0)
    """

    __slots__ = ("_events", "floor", "period", "tolerance")

    def __init__(
        self, floor: float = 3.0, tolerance: float = 3600.0, period: float = DAY_SECONDS
    ) -> None:
        self.floor = floor
        self.tolerance = tolerance
        self.period = period
        self._events: deque[tuple[float, float]] = deque()

    def echo(self, ts: float) -> float:
        events = self._events
        start = ts - self.period - self.tolerance
        while events and events[0][0] < start:
            events.popleft()
        end = ts - self.period + self.tolerance
        best = 0.0
        for t, score in events:
            if t > end:
                break
            best = max(best, score)
        return best

    def remember(self, ts: float, score: float) -> None:
        if score >= self.floor:
            self._events.append((ts, score))
