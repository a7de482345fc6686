"""Canary scenarios with ground truth, judged by canary-sentinel and by two peers.

Usage: ``python -m benchmarks.canary_scenarios [--seed 1|1-120] [--workers 1] [--instances 5]
[--families a,b] [--config FILE] [--out-dir DIR] [--quantiles exact] [--quantiles-unknown]
[--stress NAME] [--json] [--generator families|independent]``.

Who runs this: a person tuning the comparison and the policy, and CI on a held-out seed. What it
promises: for every family (healthy, shared incidents, regressions, subtle regressions) and in
total, the detection rate, the false-rollback rate and the median and p90 time from onset to the
rollback decision (event time), for our ``replay`` and for the Flagger- and Kayenta-style judges
of :mod:`benchmarks.peers`, all fed the same records. Scenarios come from
:mod:`benchmarks.scenarios` and depend only on ``--seed``. ``--quantiles`` says how each
window's p50 and p99 are taken from its requests: ``exact`` sample quantiles (the default), or
read from a histogram with one of :mod:`benchmarks.scenarios.histogram`'s bucket layouts as
Prometheus's ``histogram_quantile`` reads it (``prometheus``: the client libraries' default
buckets; ``x2``, ``x1.2``: exponential buckets growing by that factor). Our judge is told how
they were taken, as a user who knows would tell it: ``detection.exact_quantiles`` for exact
ones, ``detection.histogram_buckets`` (the layout) for the others; not when ``--config`` sets
either, or with ``--quantiles-unknown``. ``--stress`` runs one of
:mod:`benchmarks.scenarios.stress`'s variants instead of the plain families: conditions the
families leave out (a regression after a shared incident, pods that drift apart more, a canary
slightly slower than its baseline), over the families each variant applies to.
``--generator independent`` draws the scenarios from :mod:`benchmarks.scenarios.independent`
instead: a second generator, written apart from the judge's tuning, with its own families and
physics; ``--quantiles`` reads its simulated requests through the same bucket layouts, and
``--stress after_incident`` is its own variant (a regression 5-15 minutes after a shared load
spike).

``--seed A-B`` judges every seed of the range and reports them together (``--out-dir`` then
keeps one folder per seed); ``--workers N`` spreads the scenarios over N processes, with the
same outcomes.

Scoring: a scenario that should not roll back and does is a false rollback; one that should is
detected when the first rollback comes at or after the onset (a rollback before the onset is a
false rollback: it was not caused by the regression).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.peers import flagger, kayenta
from benchmarks.peers.series import PeerVerdict, parse_records
from benchmarks.scenarios import FAMILIES, ScenarioSpec, build, generate, group_of, independent
from benchmarks.scenarios.histogram import LAYOUTS, MODES
from benchmarks.scenarios.stress import STRESSES, build_stressed, families_for
from benchmarks.sweep import parse_seeds, sweep, tasks
from config.schema import SentinelConfig

JUDGES = ("ours", "flagger", "kayenta")
GROUPS = ("healthy", "shared", "regression", "subtle")
GENERATORS = ("families", "independent")
Judge = Callable[[list[str]], PeerVerdict]
Spec = ScenarioSpec | independent.IndependentSpec


def ours(config: SentinelConfig) -> Judge:
    """Our judge: the ``replay`` decision core over the records in arrival order."""
    from detector.core.types import Action
    from detector.replay import replay_records

    def run(lines: list[str]) -> PeerVerdict:
        for d in replay_records(lines, config):
            if d.action is Action.ROLLBACK:
                return PeerVerdict(d.ts, d.reason)
        return PeerVerdict(None)

    return run


def peer_judges() -> dict[str, Judge]:
    return {
        "flagger": lambda lines: flagger.judge(parse_records(lines)),
        "kayenta": lambda lines: kayenta.judge(parse_records(lines)),
    }


def make_judges(config: SentinelConfig, wanted: Sequence[str]) -> dict[str, Judge]:
    """The judges named in ``wanted`` (of ``JUDGES``), ours with ``config``."""
    available: dict[str, Judge] = {"ours": ours(config), **peer_judges()}
    return {j: available[j] for j in wanted}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One judge on one scenario."""

    rollback_ts: float | None
    reason: str
    detected: bool
    false_rollback: bool
    delay: float | None  # onset -> rollback, seconds, when detected


def score(spec: Spec, verdict: PeerVerdict) -> Outcome:
    ts = verdict.rollback_ts
    if ts is None:
        return Outcome(None, verdict.reason, False, False, None)
    if not spec.should_rollback or spec.onset is None:
        return Outcome(ts, verdict.reason, False, True, None)
    if ts < spec.onset:
        return Outcome(ts, verdict.reason, False, True, None)
    return Outcome(ts, verdict.reason, True, False, ts - spec.onset)


def summarise(rows: Sequence[tuple[Spec, Outcome]]) -> dict[str, Any]:
    """Detection rate (over scenarios that should roll back), false-rollback rate (over all),
    median and p90 onset->rollback delay (over detections); and the counts behind the rates."""
    should = [o for s, o in rows if s.should_rollback]
    caught = sum(o.detected for o in should)
    wrong = sum(o.false_rollback for _, o in rows)
    delays = [o.delay for _, o in rows if o.delay is not None]
    return {
        "n": len(rows),
        "should": len(should),
        "caught": caught,
        "false_rollbacks": wrong,
        "detection_rate": caught / len(should) if should else None,
        "false_rollback_rate": wrong / len(rows) if rows else None,
        "median_s": float(np.median(delays)) if delays else None,
        "p90_s": float(np.percentile(delays, 90)) if delays else None,
    }


def _lines(spec: Spec, quantiles: str) -> list[str]:
    if isinstance(spec, ScenarioSpec):
        return generate(spec, quantiles)
    return independent.generate(spec, quantiles)


def judge_one(
    spec: Spec, judges: dict[str, Judge], out_dir: Path | None, quantiles: str
) -> tuple[dict[str, Outcome], int, float]:
    """Generate one scenario (latency quantiles as ``quantiles`` says), keep it in ``out_dir``
    when given, run every judge on it and score the outcomes; with the record count and the
    seconds it took."""
    t = time.perf_counter()
    lines = _lines(spec, quantiles)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{spec.name}.jsonl").write_text("\n".join(lines) + "\n")
        (out_dir / f"{spec.name}.spec.json").write_text(json.dumps(spec.summary(), indent=1))
    outcomes = {name: score(spec, judge(lines)) for name, judge in judges.items()}
    return outcomes, len(lines), time.perf_counter() - t


def progress_line(spec: Spec, outcomes: dict[str, Outcome], records: int, secs: float) -> str:
    """One scenario's progress line: its name, size, time and each judge's rollback (seconds
    after the canary's start, ``-`` for none)."""
    marks = " ".join(
        f"{n}={'-' if o.rollback_ts is None else round(o.rollback_ts - spec.canary_start)}"
        for n, o in outcomes.items()
    )
    return f"{spec.name:<32} {records:>6} records {secs:5.1f}s  {marks}"


def run(
    specs: Iterable[Spec],
    judges: dict[str, Judge],
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    quantiles: str = "exact",
) -> list[tuple[Spec, dict[str, Outcome]]]:
    """Generate each scenario (latency quantiles as ``quantiles`` says), run every judge on it,
    score the outcomes."""
    results = []
    for spec in specs:
        outcomes, records, secs = judge_one(spec, judges, out_dir, quantiles)
        results.append((spec, outcomes))
        if progress is not None:
            progress(progress_line(spec, outcomes, records, secs))
    return results


def report(
    results: Sequence[tuple[Spec, dict[str, Outcome]]], seeds: Sequence[int] = ()
) -> dict[str, Any]:
    """Per family and per group, each judge's :func:`summarise`; and each scenario's outcome,
    with its benchmark seed when ``seeds`` gives them (one per result)."""
    judges = list(results[0][1]) if results else []
    fams: dict[str, Any] = {}
    for fam in dict.fromkeys(s.family for s, _ in results):
        rows = [(s, o) for s, o in results if s.family == fam]
        fams[fam] = {
            "group": group_of(fam),
            "should_rollback": rows[0][0].should_rollback,
            "judges": {j: summarise([(s, o[j]) for s, o in rows]) for j in judges},
        }
    totals: dict[str, Any] = {}
    for group in (*GROUPS, "all_but_subtle"):
        rows_g = [
            (s, o)
            for s, o in results
            if group_of(s.family) == group or (group == "all_but_subtle" and not s.subtle)
        ]
        if rows_g:
            totals[group] = {j: summarise([(s, o[j]) for s, o in rows_g]) for j in judges}
    labels: list[int | None] = list(seeds) if seeds else [None] * len(results)
    scenarios = [
        {
            "seed": seed,
            "name": s.name,
            "family": s.family,
            "should_rollback": s.should_rollback,
            "onset_after_start_s": None if s.onset is None else s.onset - s.canary_start,
            "judges": {
                j: {
                    "rollback_after_start_s": None
                    if o.rollback_ts is None
                    else round(o.rollback_ts - s.canary_start, 1),
                    "detected": o.detected,
                    "false_rollback": o.false_rollback,
                    "reason": o.reason,
                }
                for j, o in outs.items()
            },
        }
        for (s, outs), seed in zip(results, labels, strict=True)
    ]
    return {"families": fams, "totals": totals, "scenarios": scenarios}


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else f"{v:.0f}"


def table(doc: dict[str, Any]) -> str:
    judges = list(next(iter(doc["totals"].values())))
    first = f"family [{doc['generator']}]" if doc.get("generator") == "independent" else "family"
    head = f"{first:<28}{'n':>3}" + "".join(f" | {j:^25}" for j in judges)
    sub = f"{'':<31}" + "".join(
        f" | {'det':>5}{'falseRB':>8}{'med s':>6}{'p90 s':>6}" for _ in judges
    )
    lines = [head, sub, "-" * len(sub)]

    def row(name: str, per_judge: dict[str, Any]) -> str:
        n = next(iter(per_judge.values()))["n"]
        cells = "".join(
            f" | {_fmt(r['detection_rate'], True):>5}{_fmt(r['false_rollback_rate'], True):>8}"
            f"{_fmt(r['median_s']):>6}{_fmt(r['p90_s']):>6}"
            for r in per_judge.values()
        )
        return f"{name:<28}{n:>3}{cells}"

    for fam, f in doc["families"].items():
        lines.append(row(fam, f["judges"]))
    lines.append("-" * len(sub))
    for group, per_judge in doc["totals"].items():
        lines.append(row(f"TOTAL {group}", per_judge))
    lines.extend(f"{j}: {counts(doc, j)}" for j in judges)
    return "\n".join(lines)


def _label(scenario: dict[str, Any]) -> str:
    seed = scenario["seed"]
    return scenario["name"] if seed is None else f"seed {seed} {scenario['name']}"


def _names(found: list[str], most: int = 8) -> str:
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return ", ".join(found[:most]) + more


def counts(doc: dict[str, Any], judge: str) -> str:
    """One judge's totals as counts (a rate of 100 % can hide a miss in thousands), naming
    the scenarios it missed or rolled back wrongly (seed and name)."""
    tot = doc["totals"]
    parts = []
    if "regression" in tot:
        r = tot["regression"][judge]
        parts.append(f"{r['caught']:,} of {r['should']:,} regressions caught")
    wrong = [
        f"{tot[g][judge]['false_rollbacks']:,} of {tot[g][judge]['n']:,} {g}"
        for g in ("healthy", "shared")
        if g in tot
    ]
    early = tot["regression"][judge]["false_rollbacks"] if "regression" in tot else 0
    if wrong:
        parts.append(" and ".join(wrong) + " rolled back")
    if early:
        parts.append(f"{early} regressions rolled back before their onset")
    missed = [
        _label(sc)
        for sc in doc["scenarios"]
        if sc["should_rollback"]
        and group_of(sc["family"]) == "regression"
        and not sc["judges"][judge]["detected"]
    ]
    wrongly = [_label(sc) for sc in doc["scenarios"] if sc["judges"][judge]["false_rollback"]]
    if missed:
        parts.append(f"missed {_names(missed)}")
    if wrongly:
        parts.append(f"rolled back wrongly {_names(wrongly)}")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:

    ap = argparse.ArgumentParser(prog="python -m benchmarks.canary_scenarios", description=__doc__)
    ap.add_argument(
        "--seed",
        type=parse_seeds,
        default=[1],
        help="scenario seed, or an inclusive range of seeds judged together (1-120); "
        "held-out set: another one",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="judge scenarios in this many processes (the machine's cores at most is useful)",
    )
    ap.add_argument("--instances", type=int, default=5, help="scenarios per family")
    ap.add_argument("--families", default="", help="comma-separated families (default: all)")
    ap.add_argument("--config", type=Path, help="canary-sentinel config for our judge")
    ap.add_argument("--out-dir", type=Path, help="keep the generated JSONL (and specs) here")
    ap.add_argument("--judges", default=",".join(JUDGES), help="comma-separated subset of judges")
    ap.add_argument(
        "--quantiles",
        choices=MODES,
        default="exact",
        help="how p50/p99 are taken from each window's requests: exact sample quantiles, or "
        "histogram_quantile over Prometheus's default buckets or exponential ones (factor 2, 1.2)",
    )
    ap.add_argument(
        "--quantiles-unknown",
        "--buckets-unknown",
        dest="quantiles_unknown",
        action="store_true",
        help="do not tell our judge how the quantiles were taken (by default, as a user who "
        "knows would, its detection.exact_quantiles is set for exact ones and "
        "detection.histogram_buckets to the layout for the others, unless --config sets either)",
    )
    ap.add_argument(
        "--stress",
        choices=sorted(STRESSES),
        help="run a stress variant over the families it applies to (see "
        "benchmarks/scenarios/stress.py; with --generator independent, its own after_incident, "
        "in benchmarks/scenarios/independent/plan.py)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument(
        "--generator",
        choices=GENERATORS,
        default="families",
        help="the scenario generator: the families the judge was tuned on, or the independent "
        "one (benchmarks/scenarios/independent/)",
    )
    args = ap.parse_args(argv)

    indep = args.generator == "independent"
    stress = args.stress
    if indep and stress and stress not in independent.STRESSES:
        ap.error(
            f"--generator independent takes --stress {', '.join(independent.STRESSES)} only "
            f"(its own variants)"
        )
    if indep:
        known = list(independent.STRESSES[stress][0] if stress else independent.FAMILIES)
    else:
        known = families_for(stress) if stress else list(FAMILIES)
    families = [f for f in args.families.split(",") if f] or known
    unknown = [f for f in families if f not in known]
    if unknown:
        ap.error(f"unknown families {unknown}; known: {', '.join(known)}")
    if args.config is not None:
        from config.loader import load_config

        config = load_config(args.config)
    else:
        config = SentinelConfig()
    told = config.detection.exact_quantiles or config.detection.histogram_buckets
    if not (told or args.quantiles_unknown):
        source: dict[str, object] = (
            {"exact_quantiles": True}
            if args.quantiles == "exact"
            else {"histogram_buckets": LAYOUTS[args.quantiles]}
        )
        detection = config.detection.model_copy(update=source)
        config = config.model_copy(update={"detection": detection})
    wanted = [j for j in args.judges.split(",") if j]
    unknown = sorted(set(wanted) - set(JUDGES))
    if unknown:
        ap.error(f"unknown judge(s) {', '.join(unknown)}; choose from {', '.join(JUDGES)}")
    if args.workers < 1:
        ap.error(f"--workers {args.workers}: give 1 or more processes")

    def note(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    make: Callable[[str, int, int], Spec] = (
        partial(independent.build, stress=stress)
        if indep
        else partial(build_stressed, stress)
        if stress
        else build
    )
    seeds: list[int] = args.seed
    todo = tasks(seeds, families, args.instances)
    results = sweep(
        todo,
        partial(make_judges, config, wanted),
        make,
        partial(judge_one, quantiles=args.quantiles),
        workers=args.workers,
        out_dir=args.out_dir,
        progress=note,
        describe=progress_line,
    )
    doc = report(results, [seed for seed, _, _ in todo])
    # one seed as a number, as before ranges; a range as written
    doc["seed"] = seeds[0] if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    doc["instances"], doc["quantiles"] = args.instances, args.quantiles
    doc["stress"], doc["generator"] = stress, args.generator
    doc["histogram_buckets"] = list(config.detection.histogram_buckets)
    doc["exact_quantiles"] = config.detection.exact_quantiles
    doc["peer_configs"] = {
        "flagger": flagger.FlaggerConfig().__repr__(),
        "kayenta": kayenta.KayentaConfig().__repr__(),
    }
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(table(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
