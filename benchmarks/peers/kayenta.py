"""A Kayenta-style judge (Spinnaker automated canary analysis, NetflixACAJudge), from its docs.

Per metric, over the samples of the analysis scope (baseline and canary, same time range):

- no data on either side: ``Nodata``; identical samples: ``Pass``;
- Mann-Whitney classifier (:mod:`benchmarks.peers.mannwhitney`), confidence 98%, tolerance
  0.25: ``High`` when the interval's lower bound exceeds ``0.25 x |estimate|`` and the effect
  size (``meanRatio``: canary mean / baseline mean) reaches ``allowedIncrease``; ``Low`` is the
  mirror image, counted only for metrics whose direction allows it;
- scoring: per group ``100 x Pass / (Pass + High + Low)``, groups weighted equally; if at least
  half of the metrics are ``Nodata`` the score is 0.

The Spinnaker stage runs a judgement every ``interval`` over everything since the canary started
(its default growing scope), fails when an intermediate score is below ``marginal`` (75), and
requires the last one to reach ``pass`` (95). Spinnaker's starting values (interval 60 min,
lifetime 3 h) do not fit a 20-30 minute canary; the benchmark uses a 10 minute interval, the
shortest that gives Kayenta's recommended 50+ data points per metric at 10 s samples. The effect
size is the docs' example, ``allowedIncrease`` 1.1 (the default 1.0 flags the few-percent level
offsets any two groups of healthy pods show, and the docs' 1.1 matches our own 10% minimum
effect, so the comparison is like for like). Metrics: p50 and p99
latency (group latency), error rate (group errors), all with direction ``increase``.
Throughput is not compared: Kayenta compares same-size arms, and its users normalise or omit
traffic volume. Kayenta itself takes no action; the stage failing is the rollback.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from benchmarks.peers.mannwhitney import shift_interval
from benchmarks.peers.series import PeerVerdict, Series

METRICS: tuple[tuple[str, str], ...] = (
    ("latency_p50_seconds", "latency"),
    ("latency_p99_seconds", "latency"),
    ("error_rate", "errors"),
)


@dataclass(frozen=True, slots=True)
class KayentaConfig:
    interval: float = 600.0
    confidence: float = 0.98
    tolerance: float = 0.25
    allowed_increase: float = 1.1
    marginal: float = 75.0
    pass_score: float = 95.0


def classify(canary: list[float], baseline: list[float], cfg: KayentaConfig) -> str:
    """``Pass``, ``High`` or ``Nodata`` for one increase-direction metric."""
    if not canary or not baseline:
        return "Nodata"
    if sorted(canary) == sorted(baseline) or len(set(canary) | set(baseline)) == 1:
        return "Pass"
    r = shift_interval(canary, baseline, cfg.confidence)
    base_mean = statistics.fmean(baseline)
    ratio = statistics.fmean(canary) / base_mean if base_mean else float("inf")
    if r.lower > cfg.tolerance * abs(r.estimate) and ratio >= cfg.allowed_increase:
        return "High"
    return "Pass"


def score(series: Series, lo: float, hi: float, cfg: KayentaConfig) -> tuple[float, dict[str, str]]:
    """The canary score over ``[lo, hi]`` and each metric's classification."""
    results: dict[str, str] = {}
    for signal, _ in METRICS:
        c, b = series.get("canary", signal), series.get("baseline", signal)
        results[signal] = classify(
            [c.value[i] for i in c.since(lo, hi)], [b.value[i] for i in b.since(lo, hi)], cfg
        )
    if sum(r == "Nodata" for r in results.values()) * 2 >= len(results):
        return 0.0, results
    groups: dict[str, list[str]] = {}
    for signal, group in METRICS:
        if results[signal] != "Nodata":
            groups.setdefault(group, []).append(results[signal])
    per_group = [100.0 * sum(r == "Pass" for r in rs) / len(rs) for rs in groups.values()]
    return sum(per_group) / len(per_group), results


def judge(series: Series, cfg: KayentaConfig | None = None) -> PeerVerdict:
    """Run the canary stage over the canary's lifetime; the rollback time, if any."""
    cfg = cfg or KayentaConfig()
    start = series.canary_start
    ts = series.get("canary", "error_rate").ts
    if start is None or not ts:
        return PeerVerdict(None, "no canary")
    end = ts[-1]
    times = []
    at = start + cfg.interval
    while at <= end + 1e-9:
        times.append(at)
        at += cfg.interval
    if not times or end - times[-1] > 60.0:
        times.append(end)  # the final judgement at the end of the canary's lifetime
    for k, at in enumerate(times):
        s, results = score(series, start, at, cfg)
        final = k == len(times) - 1
        bar = cfg.pass_score if final else cfg.marginal
        if s < bar:
            flagged = ", ".join(f"{m}={r}" for m, r in results.items() if r != "Pass")
            return PeerVerdict(at, f"score {s:.0f} < {bar:g} ({flagged})")
    return PeerVerdict(None, "passed")
