"""Seeded canary scenarios with ground truth (see :mod:`benchmarks.scenarios.families`)."""

from __future__ import annotations

from benchmarks.scenarios.families import FAMILIES, build, group_of
from benchmarks.scenarios.simulate import generate
from benchmarks.scenarios.spec import Effect, ScenarioSpec

__all__ = ["FAMILIES", "Effect", "ScenarioSpec", "build", "generate", "group_of"]
