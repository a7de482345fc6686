"""The canary benchmark over a range of seeds and in worker processes: the same outcomes in the
same order as one process, one folder per seed, and totals as counts that name the misses."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import pytest

from benchmarks import canary_scenarios as cs
from benchmarks.peers.series import PeerVerdict
from benchmarks.scenarios import build
from benchmarks.sweep import parse_seeds, sweep, tasks


def test_seeds_are_a_number_or_an_inclusive_range() -> None:
    assert parse_seeds("7") == [7]
    assert parse_seeds("3-5") == [3, 4, 5]
    with pytest.raises(argparse.ArgumentTypeError, match="range"):
        parse_seeds("seven")
    with pytest.raises(argparse.ArgumentTypeError, match="write 2-5"):
        parse_seeds("5-2")


def _late_half(lines: list[str]) -> PeerVerdict:
    # rolls back at the last record of about half the scenarios, by the parity of their text's
    # length: a stub whose outcomes differ between scenarios, so an order mix-up shows
    ts = [json.loads(ln)["ts"] for ln in lines]
    odd = sum(map(len, lines)) % 2
    return PeerVerdict(float(max(ts)), "stub") if odd else PeerVerdict(None)


def _stub_judges() -> dict[str, cs.Judge]:
    return {"stub": _late_half}


def test_workers_give_the_outcomes_of_one_process_in_the_same_order() -> None:
    todo = tasks([1, 2, 3], ["healthy_plain", "reg_errors_x10"], 2)
    work = partial(cs.judge_one, quantiles="exact")
    one = sweep(todo, _stub_judges, build, work)
    two = sweep(todo, _stub_judges, build, work, workers=2)
    assert [(s.name, s.seed) for s, _ in one] == [(s.name, s.seed) for s, _ in two]
    assert [o for _, o in one] == [o for _, o in two]
    assert len(one) == 12
    # the stub really differs between scenarios: some roll back, some do not
    assert len({o["stub"].rollback_ts is None for _, o in one}) == 2


def test_a_range_reports_each_scenario_with_its_seed_and_keeps_a_folder_per_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--seed", "4-5", "--instances", "1", "--families", "healthy_plain"]
    assert cs.main([*argv, "--judges", "flagger", "--json", "--out-dir", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == "4-5"
    assert [(sc["seed"], sc["name"]) for sc in doc["scenarios"]] == [
        (4, "healthy_plain-0"),
        (5, "healthy_plain-0"),
    ]
    assert (tmp_path / "seed4" / "healthy_plain-0.jsonl").exists()
    assert (tmp_path / "seed5" / "healthy_plain-0.jsonl").exists()


def test_totals_are_counts_that_name_what_was_missed_or_rolled_back_wrongly() -> None:
    def always(lines: list[str]) -> PeerVerdict:
        return PeerVerdict(float(max(json.loads(ln)["ts"] for ln in lines)), "stub")

    def never(lines: list[str]) -> PeerVerdict:
        return PeerVerdict(None)

    specs = [build("healthy_plain", 2, 0), build("reg_errors_x10", 2, 0)]
    doc = cs.report(cs.run(specs, {"always": always, "never": never}), seeds=[2, 2])
    assert cs.counts(doc, "always") == (
        "1 of 1 regressions caught; 1 of 1 healthy rolled back; "
        "rolled back wrongly seed 2 healthy_plain-0"
    )
    assert cs.counts(doc, "never") == (
        "0 of 1 regressions caught; 0 of 1 healthy rolled back; missed seed 2 reg_errors_x10-0"
    )
    assert "always: 1 of 1 regressions caught" in cs.table(doc)
