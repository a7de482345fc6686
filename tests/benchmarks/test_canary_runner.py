"""The canary benchmark's scoring and reporting, with stub judges; and our judge on one clear
regression (the benchmark's target: every non-subtle regression caught)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import canary_scenarios as cs
from benchmarks import replay_speed
from benchmarks.peers.series import PeerVerdict
from benchmarks.scenarios import build, generate
from config.schema import SentinelConfig


def test_scoring_rules() -> None:
    healthy = build("healthy_plain", 1, 0)
    reg = build("reg_latency_2x", 1, 0)
    reg = replace(reg, onset=reg.canary_start + 300.0)
    assert cs.score(healthy, PeerVerdict(None)).false_rollback is False
    assert cs.score(healthy, PeerVerdict(healthy.canary_start + 60)).false_rollback is True
    early = cs.score(reg, PeerVerdict(reg.canary_start + 100))
    assert (early.detected, early.false_rollback) == (False, True)  # before onset: not caused by it
    hit = cs.score(reg, PeerVerdict(reg.canary_start + 360))
    assert hit.detected
    assert hit.delay == pytest.approx(60.0)
    miss = cs.score(reg, PeerVerdict(None))
    assert (miss.detected, miss.false_rollback) == (False, False)


def test_summary_rates_and_percentiles() -> None:
    reg = build("reg_latency_2x", 1, 0)
    onset = reg.onset or 0.0
    rows = [(reg, cs.score(reg, PeerVerdict(onset + d))) for d in (10.0, 20.0, 30.0, 40.0)]
    rows.append((reg, cs.score(reg, PeerVerdict(None))))
    s = cs.summarise(rows)
    assert s["detection_rate"] == pytest.approx(0.8)
    assert s["false_rollback_rate"] == 0.0
    assert s["median_s"] == pytest.approx(25.0)
    assert s["p90_s"] == pytest.approx(37.0)


def test_run_report_and_table_with_stub_judges(tmp_path: Path) -> None:
    def always(lines: list[str]) -> PeerVerdict:
        last = max(json.loads(ln)["ts"] for ln in lines)
        return PeerVerdict(float(last), "stub")

    def never(lines: list[str]) -> PeerVerdict:
        return PeerVerdict(None)

    specs = [build("healthy_plain", 2, 0), build("reg_errors_x10", 2, 0)]
    notes: list[str] = []
    results = cs.run(specs, {"always": always, "never": never}, tmp_path, notes.append)
    doc = cs.report(results)
    assert doc["families"]["healthy_plain"]["judges"]["always"]["false_rollback_rate"] == 1.0
    assert doc["families"]["reg_errors_x10"]["judges"]["always"]["detection_rate"] == 1.0
    assert doc["families"]["reg_errors_x10"]["judges"]["never"]["detection_rate"] == 0.0
    assert doc["totals"]["healthy"]["never"]["false_rollback_rate"] == 0.0
    assert "TOTAL regression" in cs.table(doc)
    assert (tmp_path / "healthy_plain-0.jsonl").exists()
    assert json.loads((tmp_path / "reg_errors_x10-0.spec.json").read_text())["should_rollback"]
    assert len(notes) == 2


def test_our_judge_rolls_back_a_doubled_latency_and_not_a_healthy_canary() -> None:
    judge = cs.ours(SentinelConfig())
    reg = build("reg_latency_2x", 4, 0)
    out = cs.score(reg, judge(generate(reg)))
    assert out.detected
    healthy = build("healthy_plain", 4, 0)
    assert not cs.score(healthy, judge(generate(healthy))).false_rollback


def test_a_slow_tail_on_a_small_canary_is_caught_against_its_own_healthy_offset() -> None:
    # ~85 canary requests a sample: its p99 reads 8 % below the baseline's while healthy and
    # only ~1.2x above it after 4 % of requests turn 3.6x slower; missed before the canary's own
    # offset became a reference
    spec = build("reg_slow_tail", 16, 3)
    assert spec.effects[-1].kind == "tail" and spec.total_rps * spec.split[0][1] < 15
    out = cs.score(spec, cs.ours(SentinelConfig())(generate(spec)))
    assert out.detected, out.reason


def test_replay_speed_measures_both_passes_on_the_same_lines() -> None:
    lines = replay_speed.scenario_lines(3000, 1)
    assert len(lines) >= 3000
    r = replay_speed.measure(lines, SentinelConfig(), repeat=1)
    assert r["samples"] == len(lines)
    assert r["replay_samples_per_s"] > 0 and r["json_loads_samples_per_s"] > 0
    assert r["replay_over_json_ratio"] == pytest.approx(
        r["replay_samples_per_s"] / r["json_loads_samples_per_s"]
    )


def test_cli_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cs.main(
            ["--instances", "1", "--families", "healthy_plain", "--judges", "flagger", "--json"]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == 1 and doc["families"]["healthy_plain"]["judges"]["flagger"]["n"] == 1


@pytest.mark.parametrize(
    ("args", "words", "choice"),
    [
        (["--judges", "ours,nope"], "unknown judge(s) nope", "flagger"),
        (["--families", "nope"], "unknown families ['nope']", "healthy_plain"),
    ],
)
def test_unknown_names_are_refused_with_the_choices(
    args: list[str], words: str, choice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cs.main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and choice in err
