"""A Flagger-style judge, from Flagger's documentation (fluxcd/flagger, "Canary analysis").

What Flagger does, and therefore what this does:

- every ``interval`` (Flagger's default and tutorial value: 1 m) from the canary's start, run the
  built-in checks on the canary over the last ``window`` (the metric's ``interval``, 1 m):
  ``request-success-rate`` (percent of non-error requests) >= ``thresholdRange.min`` and
  ``request-duration`` (P99, here in seconds) <= ``thresholdRange.max``;
- a check with no values ("no values found": no samples, or no requests) fails like a breach;
- any failing metric halts advancement and increments ``failedChecks`` once; the counter is
  cumulative for the revision (never reset by a later passing check);
- roll back when ``failedChecks >= threshold``. Flagger's default threshold is 1; its tutorials
  use ``threshold: 5`` (and 10 in the docs' timing example), and 5 is used here.

Flagger has no baseline comparison, so thresholds are static. The tutorials' values are
``min: 99`` and ``max: 500`` ms; a 500 ms P99 bound means nothing for a service whose normal P99 is
80 ms or 900 ms, so the benchmark gives each service the bound its SRE would set from its own
normal: ``max = p99_headroom x`` the median baseline P99 over the history before the canary. This
favours Flagger (it is told each service's normal); the success-rate floor stays at 99%.
There is no built-in throughput check, so throughput regressions are invisible to it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from benchmarks.peers.series import PeerVerdict, Series


@dataclass(frozen=True, slots=True)
class FlaggerConfig:
    interval: float = 60.0
    window: float = 60.0
    threshold: int = 5
    success_rate_min: float = 99.0
    p99_headroom: float = 1.5
    p99_max: float | None = None  # seconds; None: p99_headroom x the baseline's normal P99


def _p99_bound(series: Series, cfg: FlaggerConfig, start: float) -> float:
    if cfg.p99_max is not None:
        return cfg.p99_max
    base = series.get("baseline", "latency_p99_seconds")
    hist = [base.value[i] for i in base.since(start - 7200.0, start)]
    return cfg.p99_headroom * statistics.median(hist) if hist else float("inf")


def check(series: Series, at: float, cfg: FlaggerConfig, p99_max: float) -> str | None:
    """One Flagger check at event time ``at``: ``None`` when it passes, else why it failed."""
    err = series.get("canary", "error_rate")
    idx = err.between(at - cfg.window, at)
    requests = sum(err.count[i] for i in idx)
    if requests == 0:
        return "request-success-rate: no values found"
    errors = sum(err.value[i] * err.count[i] for i in idx)
    rate = 100.0 * (1.0 - errors / requests)
    if rate < cfg.success_rate_min:
        return f"request-success-rate {rate:.2f}% < {cfg.success_rate_min:g}%"
    lat = series.get("canary", "latency_p99_seconds")
    lidx = lat.between(at - cfg.window, at)
    weight = sum(lat.count[i] for i in lidx)
    if not lidx or weight == 0:
        return "request-duration: no values found"
    # Prometheus would take the quantile of the merged histogram; the request-weighted mean of
    # the 10 s P99s is the closest figure the records carry.
    p99 = sum(lat.value[i] * lat.count[i] for i in lidx) / weight
    if p99 > p99_max:
        return f"request-duration {p99 * 1000:.0f} ms > {p99_max * 1000:.0f} ms"
    return None


def judge(series: Series, cfg: FlaggerConfig | None = None) -> PeerVerdict:
    """Run Flagger's loop over the canary's lifetime; the rollback time, if any."""
    cfg = cfg or FlaggerConfig()
    start = series.canary_start
    canary_ts = (
        series.get("canary", "error_rate").ts or series.get("canary", "requests_per_second").ts
    )
    if start is None or not canary_ts:
        return PeerVerdict(None, "no canary")
    end = canary_ts[-1]
    bound = _p99_bound(series, cfg, start)
    failed = 0
    at = start + cfg.interval
    while at <= end + 1e-9:
        why = check(series, at, cfg, bound)
        if why is not None:
            failed += 1
            if failed >= cfg.threshold:
                return PeerVerdict(at, f"failedChecks {failed} >= {cfg.threshold}: {why}")
        at += cfg.interval
    return PeerVerdict(None, f"failedChecks {failed}")
