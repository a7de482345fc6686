"""Log records to signals: per role and sample interval, the error-level rate and the rate of
message templates never seen before, emitted as ordinary samples with ``count`` = records.

Who calls this: the engine, for each decoded log record. What it promises: a bucket is emitted
once, when the first record of a later bucket of the same role arrives; the known-template set is
bounded (oldest forgotten first) so a chatty service cannot grow it without limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from detector.core.types import LogRecord, Role, Sample, SignalKind

ERROR_LEVELS = frozenset({"error", "err", "fatal", "critical", "crit", "alert", "emerg", "panic"})
MAX_TEMPLATES = 5000
_MASK = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|0x[0-9a-fA-F]+|\b[0-9a-fA-F]{16,}\b|\d+(?:\.\d+)?|\"[^\"]*\"|'[^']*'"
)


def template_of(message: str) -> str:
    """The message with variable parts masked.

    >>> template_of('user 42 timed out after 3.5s (id 0xdeadbeef, "bob")')
    'user # timed out after #s (id #, #)'
    """
    return _MASK.sub("#", message)[:200]


@dataclass(slots=True)
class _Bucket:
    index: int = -1
    total: int = 0
    errors: int = 0
    new: int = 0


@dataclass(slots=True)
class LogState:
    buckets: dict[Role, _Bucket] = field(default_factory=dict)
    known: dict[str, None] = field(default_factory=dict)  # insertion-ordered set


def _emit(r: LogRecord, role: Role, b: _Bucket, interval: float) -> list[Sample]:
    ts = (b.index + 1) * interval
    return [
        Sample(
            ts,
            r.service,
            r.namespace,
            role,
            signal,
            n / b.total,
            SignalKind.ERROR_RATE,
            b.total,
            r.labels,
        )
        for signal, n in (("log_error_rate", b.errors), ("log_new_template_rate", b.new))
    ]


def add_log(state: LogState, r: LogRecord, interval: float) -> list[Sample]:
    """Count one record; return the samples of the bucket it closed, if any."""
    index = int(r.ts // interval)
    b = state.buckets.get(r.role)
    out: list[Sample] = []
    if b is None:
        b = state.buckets[r.role] = _Bucket(index=index)
    elif index > b.index:
        if b.total:
            out = _emit(r, r.role, b, interval)
        b.index, b.total, b.errors, b.new = index, 0, 0, 0
    # a record for an already-closed bucket (late, within lateness) counts in the open one
    b.total += 1
    if r.level.lower() in ERROR_LEVELS:
        b.errors += 1
    t = template_of(r.message)
    if t not in state.known:
        b.new += 1
        state.known[t] = None
        if len(state.known) > MAX_TEMPLATES:
            del state.known[next(iter(state.known))]
    return out
