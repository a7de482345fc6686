"""The canary benchmark over a range of seeds, in worker processes.

Who calls this: :func:`benchmarks.canary_scenarios.main`, for ``--seed A-B`` and
``--workers N``. What it promises: the same outcomes, in the same order (seed, then family,
then instance), as judging each scenario in turn in one process; each worker builds its own
judges once, from a factory, since a judge holds state that does not cross processes.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the benchmark imports this module
    from benchmarks.canary_scenarios import Judge, Outcome, Spec

Task = tuple[int, str, int]  # (seed, family, instance)
Maker = Callable[[str, int, int], "Spec"]  # (family, seed, instance) -> spec
Outcomes = dict[str, "Outcome"]
# judge one scenario: (spec, judges, out_dir) -> (outcomes, records, seconds)
Work = Callable[["Spec", dict[str, "Judge"], Path | None], tuple[Outcomes, int, float]]
Result = tuple["Spec", Outcomes]

# one worker process's judges, scenario maker and work, set once by _start
_worker: tuple[dict[str, Judge], Maker, Work, Path | None] | None = None


def parse_seeds(text: str) -> list[int]:
    """``N`` or an inclusive range ``A-B`` of seeds (argparse type).

    >>> parse_seeds("3"), parse_seeds("1-4")
    ([3], [1, 2, 3, 4])
    """
    lo, sep, hi = text.partition("-")
    try:
        first = int(lo)
        last = int(hi) if sep else first
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a seed: give a number (7) or a range (1-120)"
        ) from None
    if last < first:
        raise argparse.ArgumentTypeError(
            f"seed range {text!r} runs backwards: write {last}-{first}"
        )
    return list(range(first, last + 1))


def tasks(seeds: Sequence[int], families: Sequence[str], instances: int) -> list[Task]:
    """Every scenario of ``seeds``, in report order."""
    return [(seed, f, i) for seed in seeds for f in families for i in range(instances)]


def _out(out_dir: Path | None, seed: int, many: bool) -> Path | None:
    # one folder per seed when there are several: scenario names repeat across seeds
    return out_dir / f"seed{seed}" if out_dir is not None and many else out_dir


def _start(
    judges: Callable[[], dict[str, Judge]], make: Maker, work: Work, out_dir: Path | None
) -> None:
    global _worker
    _worker = (judges(), make, work, out_dir)


def _judge(task: Task, many: bool) -> tuple[Result, int, float]:
    assert _worker is not None, "worker not started"
    judges, make, work, out_dir = _worker
    seed, family, index = task
    spec = make(family, seed, index)
    outcomes, records, secs = work(spec, judges, _out(out_dir, seed, many))
    return (spec, outcomes), records, secs


def sweep(
    todo: Sequence[Task],
    judges: Callable[[], dict[str, Judge]],
    make: Maker,
    work: Work,
    *,
    workers: int = 1,
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    describe: Callable[[Spec, Outcomes, int, float], str] | None = None,
) -> list[Result]:
    """Judge every task's scenario (``make`` builds it, ``work`` judges it with the judges that
    ``judges()`` builds, keeping it under ``out_dir``) in ``workers`` processes (in this one
    when 1); results in the order of ``todo``. ``progress`` gets one line per scenario as it
    finishes (``describe``'s), with how many are done and the time left at this pace."""
    many = len({seed for seed, _, _ in todo}) > 1
    results: list[Result | None] = [None] * len(todo)
    t0 = time.monotonic()

    def done(k: int, n: int, result: tuple[Result, int, float]) -> None:
        (spec, outcomes), records, secs = result
        results[k] = (spec, outcomes)
        if progress is not None:
            left = (time.monotonic() - t0) / n * (len(todo) - n)
            line = describe(spec, outcomes, records, secs) if describe else spec.name
            progress(f"[{n}/{len(todo)} seed {todo[k][0]}, ~{left:.0f}s left] {line}")

    if workers <= 1:
        _start(judges, make, work, out_dir)
        for k, task in enumerate(todo):
            done(k, k + 1, _judge(task, many))
    else:
        # fork: the workers inherit the loaded modules instead of importing them again
        ctx = multiprocessing.get_context("fork")
        with cf.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_start, initargs=(judges, make, work, out_dir)
        ) as pool:
            futures = {pool.submit(_judge, task, many): k for k, task in enumerate(todo)}
            for n, fut in enumerate(cf.as_completed(futures), 1):
                done(futures[fut], n, fut.result())
    return [r for r in results if r is not None]
