"""Native records as the time series a peer's metrics backend would hold.

Peers query a metrics store after the fact, so they see every record by event time (arrival
order does not matter to them; lateness here is seconds, their intervals are minutes).
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PeerVerdict:
    """``rollback_ts``: event time of the check that rolled back, ``None`` if it never did;
    ``reason``: which check or metric failed."""

    rollback_ts: float | None
    reason: str = ""


@dataclass(slots=True)
class Points:
    """One (role, signal) series sorted by ts: parallel lists of ts, value and count."""

    ts: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)

    def between(self, lo: float, hi: float) -> range:
        """Indices of points with ``lo < ts <= hi``."""
        return range(bisect_right(self.ts, lo), bisect_right(self.ts, hi))

    def since(self, lo: float, hi: float) -> range:
        """Indices of points with ``lo <= ts <= hi``."""
        return range(bisect_left(self.ts, lo), bisect_right(self.ts, hi))


@dataclass(slots=True)
class Series:
    """All series of one service, and when its canary first reported."""

    points: dict[tuple[str, str], Points]
    canary_start: float | None

    def get(self, role: str, signal: str) -> Points:
        return self.points.get((role, signal), Points())


def parse_records(lines: Iterable[str]) -> Series:
    """Group native records by (role, signal), sorted by event time. Roles ``stable`` and
    ``primary`` count as ``baseline``; records without a numeric ``ts`` are skipped."""
    raw: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    first_canary: float | None = None
    for line in lines:
        rec = json.loads(line)
        ts = rec.get("ts")
        if not isinstance(ts, (int, float)):
            continue
        role = "canary" if rec["role"] == "canary" else "baseline"
        if role == "canary" and (first_canary is None or ts < first_canary):
            first_canary = float(ts)
        item = (float(ts), float(rec["value"]), int(rec.get("count") or 0))
        raw.setdefault((role, rec["signal"]), []).append(item)
    points = {}
    for key, items in raw.items():
        items.sort()
        points[key] = Points(
            [t for t, _, _ in items], [v for _, v, _ in items], [c for _, _, c in items]
        )
    return Series(points, first_canary)
