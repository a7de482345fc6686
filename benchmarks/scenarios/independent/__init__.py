"""A second canary-scenario generator, written apart from the one the judge was tuned on.

Who calls this: :mod:`benchmarks.canary_scenarios` (``--generator independent``) and the tests.
What it promises: ``build(family, seed, index)`` gives one scenario's ground truth as an
:class:`IndependentSpec`, which the benchmark scores and reports as it does a
:class:`~benchmarks.scenarios.spec.ScenarioSpec`; ``generate(spec)`` gives its native JSON records
(one per line, no newline) in arrival order, the same ones byte for byte for the same (family,
seed, index). Its 24 families have their own names, grouped by prefix as the benchmark groups
them (``healthy_*``, ``shared_*``, ``reg_*``, ``subtle_*``).

Why it exists: a judge tuned against :mod:`benchmarks.scenarios.families` could be fitting that
generator's physics rather than canaries. This one was written by someone who had not read it,
from the issue's family list only, and simulates differently:

- total traffic = base rate x daily curve x slow AR(1) wander x short random bursts (x any
  incident); requests per 10 s window and side ~ Poisson;
- each request is served by one pod of its side; pods differ in speed (static lognormal factor),
  drift slowly, jitter per window, and now and then pause for GC, delaying some requests;
- per-request latency = fleet level x pod factor x X, X from a lognormal, a gamma or a lognormal
  body with a Pareto tail (median 1); the fleet level wanders and rises with load;
- p50 and p99 are the window's sample quantiles; errors ~ Binomial with a base rate of 0.1-1 %
  plus fleet-wide error bursts (both sides), incidents and the regression;
- each side scrapes at its own fixed offset with jitter; some families drop records or deliver
  them up to 15 s late.

``STRESSES`` holds its own stress variants, added later by the judge's authors (they did read
the judge): ``after_incident`` puts a shared load spike early in the canary and, for the latency
regressions, the onset 5-15 minutes after it ends. Their draws come from a generator of their
own, so a scenario's other draws are those of its family.
"""

# its family names follow the same prefixes, so the benchmark's own grouping reads them
from benchmarks.scenarios.families import group_of
from benchmarks.scenarios.independent.plan import (
    FAMILIES,
    STRESSES,
    WINDOW_S,
    IndependentSpec,
    build,
)
from benchmarks.scenarios.independent.simulate import generate

__all__ = ["FAMILIES", "STRESSES", "WINDOW_S", "IndependentSpec", "build", "generate", "group_of"]
