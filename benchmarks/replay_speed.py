"""Replay throughput, against a plain JSON parse of the same records in the same run.

Usage: ``python -m benchmarks.replay_speed [--input FILE.jsonl] [--samples 200000] [--seed 1]
[--repeat 3] [--json]``.

Who runs this: a person checking that the decision core keeps up with a partition's traffic.
What it promises: samples/s of ``detector.replay.replay_records`` and of a ``json.loads``-only
pass over the very same in-memory lines (best of ``--repeat`` runs each), and their ratio. No
fixed time reference: the ratio says what the decision core costs on top of merely reading the
records, on whatever machine runs it. Without ``--input`` the records are canary scenarios
(:mod:`benchmarks.scenarios`, every family in turn, one service each) up to ``--samples``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.scenarios import FAMILIES, build, generate
from config.loader import load_config
from config.schema import SentinelConfig


def scenario_lines(samples: int, seed: int) -> list[str]:
    """At least ``samples`` records: whole scenarios, each family in turn."""
    out: list[str] = []
    i = 0
    fams = list(FAMILIES)
    while len(out) < samples:
        out += generate(build(fams[i % len(fams)], seed, i // len(fams)))
        i += 1
    return out


def best_rate(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best samples/s of ``repeat`` runs of ``fn`` over ``n`` records."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def measure(lines: Sequence[str], config: SentinelConfig, repeat: int) -> dict[str, float]:
    from detector.replay import replay_records

    def parse_only() -> None:
        for line in lines:
            json.loads(line)

    json_rate = best_rate(parse_only, len(lines), repeat)
    replay_rate = best_rate(lambda: replay_records(lines, config), len(lines), repeat)
    return {
        "samples": float(len(lines)),
        "replay_samples_per_s": replay_rate,
        "json_loads_samples_per_s": json_rate,
        "replay_over_json_ratio": replay_rate / json_rate,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.replay_speed", description=__doc__)
    ap.add_argument("--input", type=Path, help="native JSONL to replay (default: generate)")
    ap.add_argument("--samples", type=int, default=200_000, help="records to generate")
    ap.add_argument("--seed", type=int, default=1, help="scenario seed when generating")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each pass; the best counts")
    ap.add_argument("--config", type=Path, help="canary-sentinel config")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args(argv)
    if args.input is not None:
        lines = [ln for ln in args.input.read_text().splitlines() if ln.strip()]
    else:
        print(f"generating {args.samples} records ...", file=sys.stderr, flush=True)
        lines = scenario_lines(args.samples, args.seed)
    config = load_config(args.config)
    print(f"timing {len(lines)} records x {args.repeat} ...", file=sys.stderr, flush=True)
    r = measure(lines, config, args.repeat)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{'pass':<22}{'samples/s':>14}")
        print(f"{'replay':<22}{r['replay_samples_per_s']:>14,.0f}")
        print(f"{'json.loads only':<22}{r['json_loads_samples_per_s']:>14,.0f}")
        print(f"{'ratio replay/json':<22}{r['replay_over_json_ratio']:>14.3f}")
        print(f"({int(r['samples'])} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
