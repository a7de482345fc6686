"""What each kind of evidence of the NAB detector earns and costs at a profile's threshold.

Usage: ``python -m benchmarks.nab --by-evidence``. Who reads this: a person changing
:class:`benchmarks.nab.NabDetector`, deciding which evidence to sharpen or drop. What it promises:
for each profile, at the corpus-wide threshold that profile's sweep chose, every row the
detector alarms on is charged to the kind of evidence it scored by: a false positive (and its
cost in the profile's raw score) or the first detection of a window (and its credit; later
detections in a window are free). The windows nothing detected cost the profile's ``fn`` weight
each. Credits plus costs plus the missed windows' cost is the profile's raw score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from benchmarks.nab_scoring import DataFile, Profile, probation_rows, row_weights


@dataclass(slots=True)
class Tally:
    """One kind of evidence at one threshold."""

    false_positives: int = 0
    fp_cost: float = 0.0
    windows: int = 0
    credit: float = 0.0


@dataclass(slots=True)
class Breakdown:
    """All kinds of evidence at one profile's threshold, and the windows nobody detected."""

    profile: Profile
    threshold: float
    tallies: dict[str, Tally] = field(default_factory=dict)
    windows: int = 0
    missed: list[tuple[str, int, int]] = field(default_factory=list)  # file, first and last row

    @property
    def raw(self) -> float:
        """The profile's raw score, rebuilt from the tallies."""
        earned = sum(t.fp_cost + t.credit for t in self.tallies.values())
        return earned - self.profile.fn * len(self.missed)

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "windows": self.windows,
            "missed_windows": [list(m) for m in self.missed],
            "evidence": {k: asdict(t) for k, t in self.tallies.items()},
        }


def by_evidence(
    files: Sequence[DataFile],
    scores: Sequence[Sequence[float]],
    evidence: Sequence[Sequence[str]],
    profile: Profile,
    threshold: float,
    kinds: Sequence[str] = (),
) -> Breakdown:
    """Charge every row scored at or above ``threshold`` to its kind of evidence (``kinds``
    are listed first, in that order, even when they raised nothing)."""
    out = Breakdown(profile, threshold, {k: Tally() for k in kinds})
    for f, sc, ev in zip(files, scores, evidence, strict=True):
        prob = probation_rows(len(f))
        caught: set[int] = set()
        for k, (w, weight) in enumerate(row_weights(len(f), f.windows, profile)):
            i = prob + k
            if sc[i] < threshold:
                continue
            t = out.tallies.setdefault(ev[i] or "none", Tally())
            if w < 0:
                t.false_positives += 1
                t.fp_cost += weight
            elif w not in caught:
                caught.add(w)
                t.windows += 1
                t.credit += weight
        out.windows += len(f.windows)
        out.missed += [(f.name, lo, hi) for w, (lo, hi) in enumerate(f.windows) if w not in caught]
    return out


def _detector_score(unit: float) -> float:
    """The inverse of :func:`benchmarks.nab.to_unit`: the detector's own score."""
    if unit >= 1.0 or math.isinf(unit):
        return math.inf
    return math.expm1(unit / (1.0 - unit))


def format_breakdown(b: Breakdown) -> str:
    """A short table: a line per kind of evidence, then the missed windows, one a line."""
    lines = [
        f"{b.profile.name} at threshold {b.threshold:.4f} (detector score "
        f"{_detector_score(b.threshold):.2f}): {b.windows - len(b.missed)} of {b.windows} windows "
        f"detected",
        f"  {'evidence':<10}{'FPs':>6}{'FP cost':>10}{'windows':>9}{'credit':>9}",
    ]
    for kind, t in b.tallies.items():
        lines.append(
            f"  {kind:<10}{t.false_positives:>6}{t.fp_cost:>10.2f}{t.windows:>9}{t.credit:>9.2f}"
        )
    missed = len(b.missed)
    lines.append(
        f"  {'missed':<10}{'':>6}{'':>10}{missed:>9}{-b.profile.fn * missed:>9.2f}"
        f"   (raw score {b.raw:.2f})"
    )
    lines += [f"    {name} rows {lo}-{hi}" for name, lo, hi in b.missed]
    return "\n".join(lines)
