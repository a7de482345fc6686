"""Small synthetic streams for the unit tests of the decision core."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from detector.core.types import Role, Sample, SignalKind

T0 = 1_795_760_000.0


def stream(
    minutes: float = 20,
    canary_from: float = 5,
    seed: int = 1,
    service: str = "web",
    latency: Callable[[str, float], float] | None = None,
    errors: Callable[[str, float], float] | None = None,
    canary_rps: float = 40.0,
    baseline_rps: float = 400.0,
    revision: str = "2",
) -> list[Sample]:
    """10 s samples of p99 latency and error rate; ``latency(role, t)`` and ``errors(role, t)``
    give the multipliers at minute ``t``."""
    rng = random.Random(seed)
    out: list[Sample] = []
    t = 0.0
    while t < minutes * 60:
        minute = t / 60
        for role, rps in (("baseline", baseline_rps), ("canary", canary_rps)):
            if role == "canary" and minute < canary_from:
                continue
            n = int(rps * 10)
            lat = 0.2 * math.exp(rng.gauss(0, 0.1)) * (latency(role, minute) if latency else 1.0)
            p = 0.01 * (errors(role, minute) if errors else 1.0)
            errs = sum(1 for _ in range(n) if rng.random() < p)
            labels = {"revision": revision if role == "canary" else "1"}
            r = Role(role)
            ts = T0 + t + rng.uniform(0, 0.4)
            out.append(
                Sample(
                    ts,
                    service,
                    "shop",
                    r,
                    "latency_p99_seconds",
                    lat,
                    SignalKind.LATENCY,
                    n,
                    labels,
                )
            )
            out.append(
                Sample(
                    ts, service, "shop", r, "error_rate", errs / n, SignalKind.ERROR_RATE, n, labels
                )
            )
        t += 10
    return out
