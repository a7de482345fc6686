"""Memory and checkpoint size of the per-signal state, against the raw window a peer judge keeps.

Usage: ``python -m benchmarks.state_size [--seed 1] [--instances 2] [--signals 100000]
[--config FILE] [--json]``.

Who runs this: a person checking that one worker can hold the state of ``--signals`` signals.
What it promises: the state is what a worker really holds: every family of canary scenarios
(:mod:`benchmarks.scenarios`) is replayed through the decision core to its end, each service's
state is checkpointed (pickled, as the live service does) and restored, and the memory the
restored states take is traced (``tracemalloc``), so shared objects count once, as they do in
a worker. Printed per signal: bytes in memory (the service-level state, such as the policy and
the log templates, shared out over its signals), bytes per checkpoint, and the projection to
``--signals`` signals. The reference, measured in the same run, is the window a Kayenta-style
judge keeps per signal: one hour of 10 s samples of both sides, as Python floats in lists.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.scenarios import FAMILIES, build, generate
from config.loader import load_config
from config.schema import SentinelConfig

WINDOW_SAMPLES = 360  # one hour of 10 s samples


def traced(make: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated after ``make()`` returns, and what it returned (kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = make()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, obj
    finally:
        tracemalloc.stop()


def window_bytes(signals: int) -> int:
    """Memory of ``signals`` raw windows: per signal, canary and baseline lists of
    ``WINDOW_SAMPLES`` distinct floats."""

    def make() -> list[tuple[list[float], list[float]]]:
        return [
            ([float(i) + 0.5 for i in range(WINDOW_SAMPLES)],
             [float(i) + 0.25 for i in range(WINDOW_SAMPLES)])
            for _ in range(signals)
        ]  # fmt: skip

    size, _ = traced(make)
    return size


def measure(seed: int, instances: int, config: SentinelConfig) -> dict[str, float]:
    from detector.pipeline import Pipeline

    pipeline = Pipeline(config)
    for family in FAMILIES:
        for i in range(instances):
            pipeline.feed_all(generate(build(family, seed, i)))
    states = list(pipeline.engine.services.values())
    signals = sum(len(st.signals) for st in states)
    blobs = [pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL) for st in states]
    engine = Pipeline(config).engine

    def restore() -> None:
        for blob in blobs:
            engine.restore(pickle.loads(blob))

    memory, _ = traced(restore)
    window = window_bytes(min(signals, 200))
    return {
        "services": float(len(states)),
        "signals": float(signals),
        "memory_bytes_per_signal": memory / signals,
        "checkpoint_bytes_per_signal": sum(map(len, blobs)) / signals,
        "window_bytes_per_signal": window / min(signals, 200),
    }


def table(r: dict[str, float], projected: int) -> str:
    mem, ckpt, win = (
        r["memory_bytes_per_signal"],
        r["checkpoint_bytes_per_signal"],
        r["window_bytes_per_signal"],
    )
    mib = 1024 * 1024
    return "\n".join(
        [
            f"{int(r['signals'])} signals of {int(r['services'])} services, replayed to the end",
            f"{'per signal':<34}{'bytes':>10}{f'{projected:,} signals':>20}",
            f"{'state in memory (restored)':<34}{mem:>10,.0f}{mem * projected / mib:>16,.0f} MiB",
            f"{'checkpoint (pickle)':<34}{ckpt:>10,.0f}{ckpt * projected / mib:>16,.0f} MiB",
            f"{'raw 1 h window (reference)':<34}{win:>10,.0f}{win * projected / mib:>16,.0f} MiB",
            f"{'ratio state/window':<34}{mem / win:>10.3f}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.state_size", description=__doc__)
    ap.add_argument("--seed", type=int, default=1, help="scenario seed")
    ap.add_argument("--instances", type=int, default=2, help="scenarios per family")
    ap.add_argument("--signals", type=int, default=100_000, help="project to this many signals")
    ap.add_argument(
        "--config",
        type=Path,
        help="canary-sentinel config (exact_quantiles: true adds the tail-shape test's state)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args(argv)
    print(f"replaying {len(FAMILIES) * args.instances} scenarios ...", file=sys.stderr)
    r = measure(args.seed, args.instances, load_config(args.config))
    r["ratio_state_to_window"] = r["memory_bytes_per_signal"] / r["window_bytes_per_signal"]
    r["projected_signals"] = float(args.signals)
    r["projected_memory_mib"] = r["memory_bytes_per_signal"] * args.signals / (1024 * 1024)
    print(json.dumps(r, indent=1) if args.json else table(r, args.signals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
