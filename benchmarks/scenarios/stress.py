"""Stress variants: conditions the scenario families leave out, applied to the families they fit.

Who calls this: :mod:`benchmarks.canary_scenarios` (``--stress NAME``) and the tests. What it
promises: the same (stress, family, seed, index) gives the same spec; each variant changes the
ground truth where it changes what should happen, and names the families it makes anew.

- ``after_incident``: a shared incident, then a canary latency step of 1.35-1.5x that starts
  between 60 % of the way through the incident and three minutes after it ends (should roll
  back; its families are ``reg_after_<incident>``). The families' own ``reg_during_incident``
  starts its regression in the incident's first three minutes only.
- ``long_after_incident``: the same step 5-15 minutes after the incident has ended, in a canary
  that runs 15 minutes longer (families ``reg_long_after_<incident>``). An incident used to
  leave the judge's estimate of pod drift inflated for half an hour after it (see
  :class:`models.compare.NoiseTracker`), which the first variant starts too early to show.
- ``drift_x3``: healthy canaries and shared incidents whose canary and baseline pods drift
  apart three times as much as the families assume (should not roll back).
- ``offset_5pct``, ``offset_8pct``: healthy canaries and shared incidents whose canary is 5 %
  or 8 % slower than its baseline for the whole rollout, below the default 10 % minimum effect
  (should not roll back: the judge's test asks for more than the minimum, so a canary just under
  it is rolled back only within the false-positive budget).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from benchmarks.scenarios.families import FAMILIES, INTERVAL_S, build, group_of
from benchmarks.scenarios.spec import Effect, ScenarioSpec

Variant = Callable[[random.Random, ScenarioSpec], ScenarioSpec]


def _after_incident(
    share: float, earliest_s: float, latest_s: float, run_on_s: float, prefix: str
) -> Variant:
    """A canary latency step of 1.35-1.5x that starts between ``share`` of the way through the
    shared incident plus ``earliest_s`` and ``latest_s`` after its end, in a canary that runs
    ``run_on_s`` longer than the family's; families ``<prefix><incident>``."""

    def apply(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
        s = replace(s, canary_end=s.canary_end + run_on_s)
        incident = s.effects[0]  # both shared families put their incident first
        span = incident.end - incident.start
        onset = rng.uniform(incident.start + share * span + earliest_s, incident.end + latest_s)
        # on a sample boundary, and leaving at least five minutes to catch it
        onset = min((int(onset // INTERVAL_S) + 1) * INTERVAL_S, s.canary_end - 300.0)
        step = Effect("latency", "canary", onset, s.canary_end + 1.0, rng.uniform(1.35, 1.5))
        family = prefix + s.family.removeprefix("shared_")
        return replace(
            s,
            family=family,
            name=s.name.replace(s.family, family),
            should_rollback=True,
            onset=onset,
            effects=(*s.effects, step),
            notes={"factor": step.factor},
        )

    return apply


def _drift(factor: float) -> Variant:
    def apply(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
        return replace(s, level_noise=s.level_noise * factor)

    return apply


def _offset(factor: float) -> Variant:
    def apply(rng: random.Random, s: ScenarioSpec) -> ScenarioSpec:
        slower = Effect("latency", "canary", s.canary_start, s.canary_end + 1.0, factor)
        return replace(s, effects=(*s.effects, slower))

    return apply


_QUIET = ("healthy", "shared")
STRESSES: dict[str, tuple[tuple[str, ...], Variant]] = {
    "after_incident": (("shared",), _after_incident(0.6, 0.0, 180.0, 0.0, "reg_after_")),
    "long_after_incident": (
        ("shared",),
        _after_incident(1.0, 300.0, 900.0, 900.0, "reg_long_after_"),
    ),
    "drift_x3": (_QUIET, _drift(3.0)),
    "offset_5pct": (_QUIET, _offset(1.05)),
    "offset_8pct": (_QUIET, _offset(1.08)),
}


def families_for(stress: str) -> list[str]:
    """The scenario families ``stress`` applies to."""
    groups, _ = STRESSES[stress]
    return [f for f in FAMILIES if group_of(f) in groups]


def build_stressed(stress: str, family: str, seed: int, index: int) -> ScenarioSpec:
    """The ``index``-th scenario of ``family`` under ``seed``, with ``stress`` applied."""
    groups, variant = STRESSES[stress]
    if group_of(family) not in groups:
        raise ValueError(f"stress {stress!r} applies to {', '.join(groups)} families only")
    rng = random.Random(f"{seed}:{family}:{index}:{stress}")
    return variant(rng, build(family, seed, index))
