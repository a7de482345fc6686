"""NAB scoring, implemented from its published description (Ahmad et al., Neurocomputing 2017,
and the NAB v1.1 README): anomaly windows, probationary period, the scaled sigmoid, one
corpus-wide threshold per profile found by sweeping every distinct score, and the normalisation
to 0 (null detector) .. 100 (perfect detector).

Called by :mod:`benchmarks.nab` and by the tests. Pure functions over in-memory rows: loading the
corpus lives in :func:`load_corpus`, which reads only the data CSVs, the windows JSON and the
profiles JSON of a NAB checkout.
"""

from __future__ import annotations

import csv
import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750


@dataclass(frozen=True, slots=True)
class Profile:
    """One NAB cost profile (``config/profiles.json``)."""

    name: str
    tp: float
    fn: float
    fp: float


DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile("standard", 1.0, 1.0, 0.11),
    Profile("reward_low_FP_rate", 1.0, 1.0, 0.22),
    Profile("reward_low_FN_rate", 1.0, 2.0, 0.11),
)


@dataclass(frozen=True, slots=True)
class DataFile:
    """One NAB series: ``name`` is ``category/file.csv``; ``windows`` are inclusive row-index
    pairs, already mapped from the label timestamps."""

    name: str
    timestamps: tuple[str, ...]
    values: tuple[float, ...]
    windows: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.values)


def scaled_sigmoid(y: float) -> float:
    """NAB's ``2 / (1 + exp(5y)) - 1``, pinned to -1 from ``y >= 3``."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n: int) -> int:
    """Rows at the start of a file that are never scored."""
    return min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX_ROWS)


def row_weights(
    n: int, windows: Sequence[tuple[int, int]], profile: Profile
) -> list[tuple[int, float]]:
    """What detecting each row would be worth, before the threshold is known.

    Returns, for every scorable row (after the probationary period), ``(window, weight)``:
    inside window ``w`` (0-based) the true-positive credit ``tp * s(y) / s(-1)``; outside any
    window ``window == -1`` and the (negative) false-positive cost.
    """
    max_tp = scaled_sigmoid(-1.0)
    out: list[tuple[int, float]] = []
    prob = probation_rows(n)
    wi = 0
    prev: tuple[int, int] | None = None
    for i in range(n):
        while wi < len(windows) and i > windows[wi][1]:
            prev = windows[wi]
            wi += 1
        cur = windows[wi] if wi < len(windows) and windows[wi][0] <= i else None
        if i < prob:
            continue
        if cur is not None:
            left, right = cur
            width = right - left + 1
            y = -(right - i + 1) / width
            out.append((wi, profile.tp * scaled_sigmoid(y) / max_tp))
        elif prev is None:
            out.append((-1, -profile.fp))
        else:
            left, right = prev
            width = right - left + 1
            y = (i - right) / max(width - 1, 1)
            out.append((-1, profile.fp * scaled_sigmoid(y)))
    return out


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The best corpus-wide threshold of one profile and what it scores."""

    threshold: float
    raw: float
    raw_perfect: float
    raw_null: float

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.raw_perfect, self.raw_null)


def normalise(raw: float, raw_perfect: float, raw_null: float) -> float:
    """NAB's ``100 * (raw - raw_null) / (raw_perfect - raw_null)``."""
    return 100.0 * (raw - raw_null) / (raw_perfect - raw_null)


def _rows_for(
    files: Sequence[DataFile], scores: Sequence[Sequence[float]], profile: Profile
) -> tuple[list[tuple[float, int, float]], int]:
    rows: list[tuple[float, int, float]] = []
    nwin = 0
    for f, sc in zip(files, scores, strict=True):
        if len(sc) != len(f):
            raise ValueError(f"{f.name}: {len(sc)} scores for {len(f)} rows")
        prob = probation_rows(len(f))
        for k, (w, weight) in enumerate(row_weights(len(f), f.windows, profile)):
            rows.append((sc[prob + k], -1 if w < 0 else nwin + w, weight))
        nwin += len(f.windows)
    return rows, nwin


def sweep(
    files: Sequence[DataFile], scores: Sequence[Sequence[float]], profile: Profile
) -> SweepResult:
    """Find the threshold (a row is a detection when ``score >= threshold``) with the best raw
    score summed over all ``files``, trying every distinct score and "never alarm".

    Only the earliest detection of a window counts (its credit is the largest, since credit falls
    towards the right edge); every detection outside windows counts.
    """
    rows, nwin = _rows_for(files, scores, profile)
    rows.sort(key=lambda r: -r[0])
    best_credit = [-profile.fn] * nwin
    total = -profile.fn * nwin
    best_raw, best_thr = total, math.inf
    i = 0
    while i < len(rows):
        thr = rows[i][0]
        # All rows sharing one score switch on together.
        while i < len(rows) and rows[i][0] == thr:
            _, w, weight = rows[i]
            if w < 0:
                total += weight
            elif weight > best_credit[w]:
                total += weight - best_credit[w]
                best_credit[w] = weight
            i += 1
        if total > best_raw:
            best_raw, best_thr = total, thr
    return SweepResult(best_thr, best_raw, profile.tp * nwin, -profile.fn * nwin)


def raw_score(
    files: Sequence[DataFile], scores: Sequence[Sequence[float]], profile: Profile, threshold: float
) -> float:
    """The raw score of ``files`` at a fixed threshold (used for the held-out figure)."""
    rows, nwin = _rows_for(files, scores, profile)
    best_credit = [-profile.fn] * nwin
    total = 0.0
    for score, w, weight in rows:
        if score < threshold:
            continue
        if w < 0:
            total += weight
        else:
            best_credit[w] = max(best_credit[w], weight)
    return total + sum(best_credit)


def parse_ts(s: str) -> datetime:
    """A NAB timestamp as written in the CSVs and labels (naive; the labels add microseconds)."""
    return datetime.fromisoformat(s.strip())


def map_windows(
    timestamps: Sequence[str], windows: Iterable[Sequence[str]]
) -> tuple[tuple[int, int], ...]:
    """Label windows (timestamp pairs; the JSON carries microseconds, the CSVs do not) to
    inclusive row-index pairs, comparing parsed times."""
    times = [parse_ts(t) for t in timestamps]
    out: list[tuple[int, int]] = []
    for start, end in windows:
        lo = bisect_left(times, parse_ts(start))
        hi = bisect_right(times, parse_ts(end)) - 1
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


def load_profiles(nab_dir: Path) -> tuple[Profile, ...]:
    """The cost profiles of ``config/profiles.json``, in NAB's order."""
    path = nab_dir / "config" / "profiles.json"
    if not path.exists():
        return DEFAULT_PROFILES
    raw = json.loads(path.read_text())
    out = []
    for name in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        cm = raw[name]["CostMatrix"]
        out.append(Profile(name, cm["tpWeight"], cm["fnWeight"], cm["fpWeight"]))
    return tuple(out)


def load_corpus(nab_dir: Path) -> list[DataFile]:
    """Every data file named in ``labels/combined_windows.json``, sorted by name."""
    windows = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(windows):
        with (nab_dir / "data" / name).open(newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            ts: list[str] = []
            vals: list[float] = []
            for row in reader:
                ts.append(row[0])
                vals.append(float(row[1]))
        files.append(DataFile(name, tuple(ts), tuple(vals), map_windows(ts, windows[name])))
    return files
