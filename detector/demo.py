"""The demo stream: two canaries beside their baselines, one healthy and one that regresses.

Who calls this: ``canary-sentinel demo`` (the README quickstart), the integration tests and the
throughput benchmark. What it promises: a deterministic (seeded) stream of native records in
event-time order: ``history_minutes`` of baseline history, then both canaries at a 10 % traffic
split; ``regress_at_minute`` minutes after the canary starts, ``payments``' canary gets 2x its
p99 latency and ten times its error rate, ``checkout``'s stays healthy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

HEALTHY = "checkout"
REGRESSING = "payments"


@dataclass(frozen=True, slots=True)
class DemoPlan:
    start: float = 1_795_760_000.0  # 2026-11-27T06:13:20Z
    history_minutes: float = 20.0
    canary_minutes: float = 10.0
    regress_at_minute: float = 3.0
    interval: float = 10.0
    total_rps: float = 400.0
    split: float = 0.1
    namespace: str = "shop"
    services: tuple[str, ...] = (HEALTHY, REGRESSING)
    regressing: tuple[str, ...] = (REGRESSING,)

    @property
    def canary_start(self) -> float:
        return self.start + self.history_minutes * 60.0

    @property
    def onset(self) -> float:
        return self.canary_start + self.regress_at_minute * 60.0

    @property
    def end(self) -> float:
        return self.canary_start + self.canary_minutes * 60.0


def _side(
    rng: random.Random,
    plan: DemoPlan,
    service: str,
    role: str,
    ts: float,
    rps: float,
    bad: bool,
) -> Iterator[dict[str, object]]:
    requests = max(1, int(rng.gauss(rps * plan.interval, math.sqrt(rps * plan.interval))))
    noise = math.sqrt(200.0 / requests)
    p50 = 0.040 * math.exp(rng.gauss(0.0, 0.05 * noise))
    p99 = 0.180 * math.exp(rng.gauss(0.0, 0.12 * noise))
    p_err = 0.004
    if bad:
        p99 *= 2.0
        p50 *= 1.3
        p_err *= 10.0
    # binomial errors, by the normal approximation (the exact draw costs one random per request)
    mean = requests * p_err
    errors = min(requests, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p_err))))))
    labels = {"revision": "2" if role == "canary" else "1", "pod": f"{service}-{role}-0"}
    base = {"service": service, "namespace": plan.namespace, "role": role, "labels": labels}
    yield {
        **base,
        "ts": ts,
        "signal": "latency_p50_seconds",
        "value": round(p50, 6),
        "count": requests,
    }
    yield {
        **base,
        "ts": ts,
        "signal": "latency_p99_seconds",
        "value": round(p99, 6),
        "count": requests,
    }
    yield {**base, "ts": ts, "signal": "error_rate", "value": errors / requests, "count": requests}
    yield {
        **base,
        "ts": ts,
        "signal": "requests_per_second",
        "value": requests / plan.interval,
        "count": requests,
    }


def demo_records(plan: DemoPlan | None = None, seed: int = 7) -> Iterator[dict[str, object]]:
    """The records of the demo, in event-time order."""
    plan = plan or DemoPlan()
    rng = random.Random(seed)
    ts = plan.start
    while ts < plan.end:
        canary_on = ts >= plan.canary_start
        for service in plan.services:
            split = plan.split if canary_on else 0.0
            jitter = rng.uniform(0.0, 0.5)
            yield from _side(
                rng, plan, service, "baseline", ts + jitter, plan.total_rps * (1 - split), False
            )
            if canary_on:
                bad = service in plan.regressing and ts >= plan.onset
                yield from _side(
                    rng,
                    plan,
                    service,
                    "canary",
                    ts + rng.uniform(0.0, 0.5),
                    plan.total_rps * split,
                    bad,
                )
        ts += plan.interval


def demo_lines(plan: DemoPlan | None = None, seed: int = 7) -> Iterator[bytes]:
    for rec in demo_records(plan, seed):
        yield orjson.dumps(rec)
