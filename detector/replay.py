"""``canary-sentinel replay``: the decision core over a file of native records, in file order.

Who calls this: the CLI, the benchmarks and the tests (``replay_records``). What it promises: the
decisions the live service would make on the same stream (the same
:class:`~detector.pipeline.Pipeline`), with event-time ``ts`` and no ``decided_at``; no rollback
or alert leaves the process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from config.schema import SentinelConfig
from detector.core.types import Decision
from detector.pipeline import Pipeline
from detector.sources.base import DecodeError


@dataclass(slots=True)
class ReplayReport:
    lines: int = 0
    decoded: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    late: int = 0
    decisions: int = 0
    seconds: float = 0.0


def replay_records(lines: Iterable[str | bytes], config: SentinelConfig) -> list[Decision]:
    """Decisions for ``lines`` (native JSON records, arrival order); blank lines are skipped."""
    return Pipeline(config).feed_all(lines)


def replay_file(
    src: Path,
    dst: IO[bytes],
    config: SentinelConfig,
    progress: IO[str] | None = None,
    deadletter: IO[bytes] | None = None,
) -> ReplayReport:
    """Replay ``src`` into ``dst`` (one decision record a line); returns the counts."""
    pipe = Pipeline(config)
    rep = ReplayReport()
    t0 = time.perf_counter()
    next_note = t0 + 2.0
    with src.open("rb") as fh:
        for raw in fh:
            rep.lines += 1
            if not raw.strip():
                continue
            fed = pipe.feed(raw.rstrip(b"\r\n"))
            if fed.error is not None and deadletter is not None:
                _deadletter(deadletter, rep.lines, fed.error)
            rep.decoded += len(fed.records)
            for d in fed.decisions:
                dst.write(orjson.dumps(d.to_record()) + b"\n")
                rep.decisions += 1
            if progress is not None and rep.lines % 4096 == 0:
                now = time.perf_counter()
                if now >= next_note:
                    next_note = now + 2.0
                    rate = rep.lines / (now - t0)
                    print(f"replay: {rep.lines:,} lines, {rate:,.0f}/s", file=progress)
    rep.bad = dict(pipe.bad)
    rep.late = pipe.engine.stats.late
    rep.seconds = time.perf_counter() - t0
    return rep


def _deadletter(out: IO[bytes], line: int, err: DecodeError) -> None:
    """One dead-letter line per unusable record: the whole line's, or each of its batch's."""
    for r in err.rejections(b""):
        doc: dict[str, object] = {"line": line, "reason": str(r.error), "kind": r.error.kind}
        if r.index is not None:
            doc["index"] = r.index
        out.write(orjson.dumps(doc) + b"\n")


def main_replay(src: str, out: str, config: SentinelConfig, deadletter: str | None) -> int:
    path = Path(src)
    if not path.is_file():
        print(f"replay: {src}: no such file", file=sys.stderr)
        return 2
    dl = open(deadletter, "wb") if deadletter else None  # noqa: SIM115
    try:
        if out == "-":
            rep = replay_file(path, sys.stdout.buffer, config, sys.stderr, dl)
        else:
            with open(out, "wb") as dst:
                rep = replay_file(path, dst, config, sys.stderr, dl)
    finally:
        if dl is not None:
            dl.close()
    bad = sum(rep.bad.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(rep.bad.items()))
    print(
        f"replay: {rep.lines:,} lines, {rep.decoded:,} records, {bad:,} undecodable"
        + (f" ({detail})" if detail else "")
        + f", {rep.late:,} too late, {rep.decisions} decisions in {rep.seconds:.2f} s",
        file=sys.stderr,
    )
    return 0
