"""The independent scenario generator: the same records for the same seed (and those it first
gave), ground truth consistent with its families, records our decoder takes, the
physics it promises; and the benchmark's ``--generator independent`` option."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from benchmarks import canary_scenarios as cs
from benchmarks import scenarios
from benchmarks.scenarios import independent as ind
from benchmarks.scenarios.independent.simulate import _p50_p99
from config.schema import SentinelConfig
from detector.core.types import Sample
from detector.pipeline import Pipeline


@cache
def _scenario(family: str, seed: int = 2, index: int = 0) -> tuple[ind.IndependentSpec, list[str]]:
    spec = ind.build(family, seed, index)
    return spec, ind.generate(spec)


def _log_ratios(family: str, index: int, signal: str) -> tuple[list[float], list[float]]:
    """log(canary / baseline) of ``signal`` per canary window, before and after the onset.
    A record's window: its ts is the window's end plus a scrape offset of 0-4 s, +-0.3 s."""
    spec, lines = _scenario(family, 2, index)
    by_window: dict[int, dict[str, float]] = {}
    for rec in map(json.loads, lines):
        if rec["signal"] == signal and rec["ts"] >= spec.canary_start:
            k = round((rec["ts"] - spec.canary_start) / ind.WINDOW_S - 1.2)
            by_window.setdefault(k, {})[rec["role"]] = rec["value"]
    onset_k = math.inf if spec.onset is None else (spec.onset - spec.canary_start) / ind.WINDOW_S
    before: list[float] = []
    after: list[float] = []
    for k, v in sorted(by_window.items()):
        if len(v) == 2:
            (after if k >= onset_k else before).append(math.log(v["canary"] / v["baseline"]))
    return before, after


def test_same_seed_same_records_other_seed_other_records() -> None:
    a = ind.generate(ind.build("reg_latency_2x", 11, 2))
    assert a == ind.generate(ind.build("reg_latency_2x", 11, 2))
    assert a != ind.generate(ind.build("reg_latency_2x", 12, 2))
    assert ind.build("healthy_plain", 11, 0) != ind.build("healthy_plain", 11, 1)


# seed 1, index 0 as the generator was first written: the digests of their records (newlines
# between records). A change to its physics or to the order of its draws changes them.
_ORIGINAL_SHA256 = {
    "healthy_plain": "79546a9026ca7c79b127662998a1036dc1dc1d89c09093310a26eaca5bd90906",
    "reg_slow_tail": "fba6c0eae4a3e2b5afe8c9ca216368599ea343e1c85278decb320e341510c6bb",
}


@pytest.mark.parametrize("family", sorted(_ORIGINAL_SHA256))
def test_records_are_those_of_the_original_script(family: str) -> None:
    # the port kept the script's physics and its order of draws; a numpy release that changed
    # its random streams would change the records too
    _, lines = _scenario(family, 1, 0)
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == _ORIGINAL_SHA256[family]


def test_every_family_once_in_its_group() -> None:
    assert len(set(ind.FAMILIES)) == len(ind.FAMILIES) == 24
    groups = [ind.group_of(f) for f in ind.FAMILIES]
    assert [groups.count(g) for g in cs.GROUPS] == [9, 2, 11, 2]
    # the benchmark's report groups families with the project's group_of
    assert groups == [scenarios.group_of(f) for f in ind.FAMILIES]


@pytest.mark.parametrize("family", ind.FAMILIES)
def test_ground_truth_is_consistent(family: str) -> None:
    group = ind.group_of(family)
    for index in range(3):
        s = ind.build(family, 5, index)
        assert (s.family, s.name, s.seed, s.index) == (family, f"{family}-{index}", 5, index)
        assert s.subtle == (group == "subtle")
        assert s.canary_end - s.canary_start >= 30 * 60
        if group in ("healthy", "shared"):
            assert not s.should_rollback and s.onset is None
        else:
            # inside the canary run, leaving a quarter of an hour to catch it
            assert s.should_rollback and s.onset is not None
            assert s.canary_start < s.onset <= s.canary_end - 900.0
        assert json.loads(json.dumps(s.summary()))["params"]["family"] == family


def test_records_decode_without_dead_letters() -> None:
    # low traffic: windows without requests, and latency quantiles sometimes left out
    spec, lines = _scenario("healthy_lowtraffic")
    pipe = Pipeline(SentinelConfig())
    fed = [pipe.feed(line.encode()) for line in lines]
    assert not [f.error for f in fed if f.error is not None] and not pipe.bad
    recs = [r for f in fed for r in f.records if isinstance(r, Sample)]
    assert len(recs) == len(lines)
    assert {r.service for r in recs} == {spec.service}
    assert {(r.role.value, r.signal) for r in recs} == {
        (role, signal)
        for role in ("baseline", "canary")
        for signal in (
            "latency_p50_seconds",
            "latency_p99_seconds",
            "error_rate",
            "requests_per_second",
        )
    }
    assert min(r.ts for r in recs if r.role.value == "canary") >= spec.canary_start
    assert min(r.ts for r in recs) < spec.canary_start - 7000  # two hours of baseline history


@pytest.mark.parametrize("index", [0, 1])
def test_a_healthy_canary_is_as_fast_as_its_baseline(index: int) -> None:
    # pods differ by a few % and the canary has only a few: its p50 is within 6 % of the
    # baseline's over the run, window by window
    before, after = _log_ratios("healthy_plain", index, "latency_p50_seconds")
    assert not after and len(before) > 150
    assert abs(math.exp(statistics.mean(before)) - 1.0) < 0.06


def test_a_doubled_latency_doubles_the_canary_p50_from_the_onset() -> None:
    before, after = _log_ratios("reg_latency_2x", 0, "latency_p50_seconds")
    assert len(before) > 10 and len(after) > 90
    assert math.exp(statistics.mean(before)) == pytest.approx(1.0, abs=0.06)
    assert math.exp(statistics.mean(after)) == pytest.approx(2.0, rel=0.05)


def test_cli_runs_the_independent_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--generator", "independent", "--families", "reg_latency_2x", "--instances", "1"]
    assert cs.main([*args, "--judges", "ours", "--json", "--out-dir", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["generator"] == "independent" and doc["seed"] == 1
    ours = doc["families"]["reg_latency_2x"]["judges"]["ours"]
    assert ours["n"] == 1 and ours["detection_rate"] == 1.0
    spec, lines = _scenario("reg_latency_2x", 1, 0)
    assert (tmp_path / "reg_latency_2x-0.jsonl").read_text().splitlines() == lines
    written = json.loads((tmp_path / "reg_latency_2x-0.spec.json").read_text())
    assert written["onset"] == spec.onset and written["should_rollback"]
    assert cs.main([*args, "--judges", "flagger"]) == 0
    assert capsys.readouterr().out.startswith("family [independent]")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--stress", "drift_x3"], "after_incident only"),
        (["--stress", "after_incident", "--families", "reg_slow_tail"], "unknown families"),
        (["--families", "healthy_low_traffic"], "healthy_lowtraffic"),  # the families' name
    ],
)
def test_the_independent_generator_refuses_what_it_cannot_do(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cs.main(["--generator", "independent", *args])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_a_bucket_layout_changes_the_latency_readings_only() -> None:
    spec = ind.build("reg_slow_tail", 2, 0)
    exact = [json.loads(x) for x in ind.generate(spec)]
    read = [json.loads(x) for x in ind.generate(spec, "prometheus")]
    assert len(exact) == len(read)
    moved = 0
    for e, r in zip(exact, read, strict=True):
        assert {k: v for k, v in e.items() if k != "value"} == {
            k: v for k, v in r.items() if k != "value"
        }
        if e["signal"].startswith("latency_"):
            moved += e["value"] != r["value"]
        else:
            assert e["value"] == r["value"]
    assert moved > len(exact) // 4


def test_a_window_is_read_as_histogram_quantile_reads_its_buckets() -> None:
    # 98 fast requests and 2 slow ones: rank 99 falls halfway into the (0.25, 0.5] bucket
    x = np.array([0.02] * 98 + [0.3, 0.3])
    p50, p99 = _p50_p99(x, "prometheus")
    assert p50 == pytest.approx(0.01 + 0.015 * 50 / 98)  # (0.01, 0.025], rank 50 of 98
    assert p99 == pytest.approx(0.375)
    assert _p50_p99(x, "exact") == pytest.approx((0.02, float(np.quantile(x, 0.99))))


def test_after_incident_starts_the_regression_5_to_15_minutes_after_the_spike() -> None:
    families, _ = ind.STRESSES["after_incident"]
    for family in families:
        for index in range(3):
            spec = ind.build(family, 4, index, "after_incident")
            (incident,) = spec.params["incidents"]
            assert incident["kind"] == "load" and incident["traffic"] > 1.0
            assert 120 <= incident["start"] <= 600
            if spec.onset is not None:
                gap = spec.onset - spec.canary_start - incident["end"]
                assert 5 * 60 - 10 <= gap <= 15 * 60 + 10
                assert spec.canary_end - spec.onset >= 15 * 60 - 10
            plain = ind.build(family, 4, index)
            # the family's own draws are untouched: everything but the incident and the onset
            same = ("dist", "m0", "total_rps", "split0", "regression")
            assert all(spec.params[k] == plain.params[k] for k in same)
    with pytest.raises(ValueError, match="does not apply"):
        ind.build("reg_slow_tail", 4, 0, "after_incident")


def test_after_incident_is_caught_soon_and_the_spike_alone_rolls_back_nothing() -> None:
    judge = cs.ours(SentinelConfig())
    delays = []
    for family in ("reg_latency_2x", "reg_latency_1.4x", "healthy_plain", "healthy_small_canary"):
        for index in range(2):
            spec = ind.build(family, 3, index, "after_incident")
            outcome = cs.score(spec, judge(ind.generate(spec)))
            assert not outcome.false_rollback, spec.name
            if spec.should_rollback:
                assert outcome.detected and outcome.delay is not None, spec.name
                delays.append(outcome.delay)
    assert max(delays) < 300
