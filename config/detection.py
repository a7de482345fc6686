"""Detection settings: how sensitive the judge is, globally, per service and per signal.

Every field is in terms an SRE tunes: a false-positive budget, the smallest effect worth acting
on, how much traffic and history a verdict needs. ``config.schema.SentinelConfig.effective``
merges the three levels (global < service < signal) into one :class:`DetectionSettings`.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from detector.core.types import SignalKind

# Named bucket layouts for `histogram_buckets`. `prometheus`: the client libraries' default
# histogram buckets, in seconds.
BUCKET_PRESETS: dict[str, tuple[float, ...]] = {
    "prometheus": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
}


def _bucket_bounds(value: object) -> object:
    """A preset's name becomes its bounds; a list of bounds must be positive and strictly
    ascending (the ``le`` bounds without ``+Inf``)."""
    if isinstance(value, str):
        if value not in BUCKET_PRESETS:
            raise ValueError(
                f"unknown bucket layout {value!r}: give the histogram's `le` bounds as a list "
                f"(without +Inf), or one of {sorted(BUCKET_PRESETS)}"
            )
        return BUCKET_PRESETS[value]
    return value


def _check_bounds(bounds: tuple[float, ...]) -> tuple[float, ...]:
    if bounds and (bounds[0] <= 0 or any(b >= c for b, c in pairwise(bounds))):
        raise ValueError(
            f"bucket bounds must be positive and strictly ascending (the histogram's `le` "
            f"bounds without +Inf), got {list(bounds)}"
        )
    return bounds


# `histogram_buckets` at every level: a preset's name or the bounds, checked
BucketBounds = Annotated[
    tuple[float, ...], BeforeValidator(_bucket_bounds), AfterValidator(_check_bounds)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _one_quantile_source(self) -> _Strict:
        if getattr(self, "exact_quantiles", None) and getattr(self, "histogram_buckets", None):
            raise ValueError(
                "exact_quantiles and histogram_buckets both set: quantiles read from histogram "
                "buckets are not exact; keep histogram_buckets for histogram_quantile values, "
                "exact_quantiles for quantiles computed from each request"
            )
        return self


class DetectionSettings(_Strict):
    """The knobs of the canary-vs-baseline judge for one signal (all have defaults)."""

    false_positive_budget: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description=(
            "Probability that a healthy canary signal is flagged during one rollout. The "
            "sequential test keeps its false-alarm rate under this bound however often it is "
            "checked. Smaller means surer but slower verdicts."
        ),
    )
    min_effect_pct: float = Field(
        10.0,
        ge=0,
        description=(
            "Smallest relative difference worth acting on, in percent of the baseline (latency "
            "10 means the canary must be at least 10% slower). The test asks whether the canary "
            "is worse by more than this, so a difference below it is not a regression: a canary "
            "just under it is rolled back no more often than false_positive_budget allows. For "
            "latency and saturation with counts, a canary that read "
            "below its baseline while healthy (a small canary's p99 does) is also judged "
            "against that own level: it fails when it becomes this much slower than it was and "
            "is slower than the baseline."
        ),
    )
    min_effect_abs: float = Field(
        0.0,
        ge=0,
        description=(
            "Smallest absolute difference worth acting on, in the signal's unit (for error_rate "
            "a fraction: 0.005 is half a percentage point). Both this and min_effect_pct must be "
            "exceeded."
        ),
    )
    min_count: int = Field(
        20,
        ge=0,
        description=(
            "Requests a sample needs (its `count`) to carry full weight; samples with fewer "
            "observations count proportionally less. Error tests need no minimum: they count "
            "errors."
        ),
    )
    warmup_samples: int = Field(
        2,
        ge=1,
        description=(
            "Paired canary/baseline samples a signal needs before any verdict. Until then the "
            "signal is 'warming up' (never a failure). A cold canary's slowness is also allowed "
            "for by warmup_allowance_pct, and no single sample can fail a check alone (no "
            "two, for latency and saturation), so a regression present from the canary's first "
            "request is rolled back at its fourth sample at the earliest."
        ),
    )
    warmup_seconds: float = Field(
        60.0,
        ge=0,
        description=(
            "Time constant of the warm-up allowance: a new canary may be slower at first (cold "
            "caches, JIT); the allowed extra slowness decays as exp(-age / warmup_seconds). "
            "0 turns the allowance off."
        ),
    )
    warmup_allowance_pct: float = Field(
        60.0,
        ge=0,
        description=(
            "Extra slowness (latency, saturation) allowed at the canary's first sample, in "
            "percent, on top of min_effect_pct; it decays with warmup_seconds."
        ),
    )
    failed_checks: int = Field(
        2,
        ge=1,
        description=(
            "Consecutive failed checks before a rollback (Flagger's threshold). A check is one "
            "paired sample at which the sequential test rejects 'canary is no worse'."
        ),
    )
    no_data_after_seconds: float = Field(
        120.0,
        gt=0,
        description=(
            "Event-time seconds without canary samples (while the baseline keeps reporting) "
            "before the signal is 'no data'. No data alerts; it never rolls back."
        ),
    )
    anomaly_z: float = Field(
        6.0,
        gt=0,
        description=(
            "Robust z-score above which a sample is anomalous for its own signal's learned "
            "normal. Anomalies on both sides (a shared incident) alert; they do not roll back."
        ),
    )
    action: Literal["rollback", "alert", "none"] = Field(
        "rollback",
        description="What a confirmed regression of this signal leads to.",
    )
    rollout_duration_seconds: float = Field(
        3600.0,
        gt=0,
        description=(
            "How long a canary is usually watched. The false-positive budget is spread over "
            "this many checks; a longer rollout keeps the same bound with a slightly higher bar."
        ),
    )
    histogram_buckets: BucketBounds = Field(
        (),
        description=(
            "For latency quantiles computed by Prometheus's histogram_quantile: the "
            "histogram's `le` bounds (without +Inf, in the signal's unit), or `prometheus` for "
            "the client libraries' default buckets. histogram_quantile spreads requests evenly "
            "inside a bucket, so a p99 just past a bucket bound reads far into the bucket, and "
            "a canary a few percent slower can read tens of percent slower; with the bounds "
            "known, each reading is taken again with the density a lognormal has inside the "
            "bucket. Set it only for such quantiles. Empty (the default): readings are taken as "
            "they are (see also exact_quantiles)."
        ),
    )
    exact_quantiles: bool = Field(
        False,
        description=(
            "Latency quantiles here are exact sample quantiles of each window's requests "
            "(from traces, logs or a stream processor), not read from histogram buckets or a "
            "client summary. A p99 (or p999) of fewer requests reads lower: the p99 of 60 "
            "requests lies between their two slowest, so a small canary's p99 sits below a "
            "large baseline's while healthy, and a slow tail lifts it only a little above. Set, "
            "the bar for such a canary is lowered by as much as its p99 is expected to read "
            "below the baseline's (3 / sqrt(requests) standard deviations of its sampling "
            "noise, a lower bound), never below the baseline itself; and a p99 or p999 named "
            "so (latency_p99_seconds) is also judged by its tail shape, its log-ratio less that "
            "of the p50 named the same way (latency_p50_seconds), in windows of fewer than 400 "
            "requests, which catches a slow tail the level alone misses. Ignored where "
            "histogram_buckets is set. Leave it unset for histogram or summary quantiles: they "
            "do not read low that way, and a lower bar would roll healthy small canaries back."
        ),
    )
    quantile: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "The quantile a latency signal reports (0.99 for a p99), for histogram_buckets; "
            "default: from the signal's name (`p99` 0.99, `p50` 0.5, `p999` 0.999). A signal "
            "whose quantile is unknown is read as a median would be."
        ),
    )


class DetectionOverride(_Strict):
    """Any subset of :class:`DetectionSettings`; unset fields inherit from the level above."""

    false_positive_budget: float | None = Field(None, gt=0, lt=0.5, description="See detection.")
    min_effect_pct: float | None = Field(None, ge=0, description="See detection.")
    min_effect_abs: float | None = Field(None, ge=0, description="See detection.")
    min_count: int | None = Field(None, ge=0, description="See detection.")
    warmup_samples: int | None = Field(None, ge=1, description="See detection.")
    warmup_seconds: float | None = Field(None, ge=0, description="See detection.")
    warmup_allowance_pct: float | None = Field(None, ge=0, description="See detection.")
    failed_checks: int | None = Field(None, ge=1, description="See detection.")
    no_data_after_seconds: float | None = Field(None, gt=0, description="See detection.")
    anomaly_z: float | None = Field(None, gt=0, description="See detection.")
    action: Literal["rollback", "alert", "none"] | None = Field(None, description="See detection.")
    rollout_duration_seconds: float | None = Field(None, gt=0, description="See detection.")
    histogram_buckets: BucketBounds | None = Field(
        None, description="See detection; `[]` when this level's quantiles are exact."
    )
    exact_quantiles: bool | None = Field(None, description="See detection.")
    quantile: float | None = Field(None, gt=0, lt=1, description="See detection.")
    kind: SignalKind | None = Field(
        None,
        description="The signal's kind when records do not carry one (which direction is bad).",
    )

    def apply(self, base: DetectionSettings) -> DetectionSettings:
        updates = {k: v for k, v in self.model_dump(exclude_none=True).items() if k != "kind"}
        return base.model_copy(update=updates) if updates else base
