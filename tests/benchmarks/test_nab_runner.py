"""The NAB runner end to end on a tiny corpus laid out like NAB's, and its no-look-ahead promise."""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import nab
from benchmarks.nab_evidence import by_evidence
from benchmarks.nab_scoring import DEFAULT_PROFILES, load_corpus, probation_rows, sweep


def _make_corpus(root: Path, files: int = 4, rows: int = 400) -> None:
    rng = random.Random(7)
    windows: dict[str, list[list[str]]] = {}
    for k in range(files):
        name = f"cat{k % 2}/series_{k}.csv"
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = [f"2020-01-01 {i // 60:02d}:{i % 60:02d}:00" for i in range(rows)]
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            for i, ts in enumerate(stamps):
                spike = 25.0 if i == 300 + k else 0.0
                w.writerow([ts, 10.0 + rng.gauss(0, 1) + spike])
        windows[name] = [[stamps[290 + k] + ".000000", stamps[310 + k] + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    profiles = {
        n: {"CostMatrix": {"tpWeight": 1.0, "fnWeight": fn, "fpWeight": fp, "tnWeight": 1.0}}
        for n, fn, fp in (
            ("standard", 1.0, 0.11),
            ("reward_low_FP_rate", 1.0, 0.22),
            ("reward_low_FN_rate", 2.0, 0.11),
        )
    }
    (root / "config" / "profiles.json").write_text(json.dumps(profiles))
    (root / "results").mkdir()
    (root / "results" / "final_results.json").write_text(
        json.dumps(
            {"null": {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0}}
        )
    )


def test_json_output_has_the_three_profiles_and_finds_obvious_spikes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_corpus(tmp_path)
    assert nab.main(["--nab-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"standard", "reward_low_FP_rate", "reward_low_FN_rate"} <= set(doc)
    # four clean 25-sigma spikes, each centred in its window: close to perfect
    assert doc["standard"] > 80.0
    assert set(doc["held_out"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_table_lists_ours_beside_the_scoreboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_corpus(tmp_path)
    assert nab.main(["--nab-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "held-out" in out.out and "null" in out.out
    assert "[4/4]" in out.err  # progress goes to stderr


def test_results_dir_uses_nab_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "nab"
    _make_corpus(corpus)
    out = tmp_path / "results"
    assert nab.main(["--nab-dir", str(corpus), "--json", "--results-dir", str(out)]) == 0
    path = out / nab.DETECTOR_NAME / "cat1" / f"{nab.DETECTOR_NAME}_series_1.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == 400
    assert sum(int(r["label"]) for r in rows) == 21
    assert all(0.0 <= float(r["anomaly_score"]) < 1.0 for r in rows)


def test_by_evidence_charges_every_alarm_and_adds_up_to_the_raw_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two of the four spikes fall outside their windows, so the corpus has false positives,
    # detected windows and missed ones to account for
    _make_corpus(tmp_path)
    labels = tmp_path / "labels" / "combined_windows.json"
    windows = json.loads(labels.read_text())
    for name in ("cat0/series_0.csv", "cat1/series_1.csv"):
        windows[name] = [[f"2020-01-01 01:{m}:00.000000" for m in ("30", "45")]]
    labels.write_text(json.dumps(windows))
    assert nab.main(["--nab-dir", str(tmp_path), "--json", "--by-evidence"]) == 0
    doc = json.loads(capsys.readouterr().out)
    files = load_corpus(tmp_path)
    evidence: list[list[str]] = []
    scores = nab.run_detector(files, nab.NabDetector, evidence=evidence)
    for p in DEFAULT_PROFILES:
        swept = sweep(files, scores, p)
        b = by_evidence(files, scores, evidence, p, swept.threshold, nab.EVIDENCE)
        assert b.raw == pytest.approx(swept.raw)
        assert set(b.tallies) == set(nab.EVIDENCE)  # no alarm left without its evidence
        reported = doc["by_evidence"][p.name]
        assert reported["missed_windows"] == [list(m) for m in b.missed]
        assert reported["evidence"]["change"] == asdict(b.tallies["change"])
        # counted again, plainly: alarms outside windows after the probation, windows without one
        alarms = [
            (f, i)
            for f, sc in zip(files, scores, strict=True)
            for i in range(probation_rows(len(f)), len(f))
            if sc[i] >= swept.threshold
        ]
        inside = {(f.name, lo, hi) for f, i in alarms for lo, hi in f.windows if lo <= i <= hi}
        outside = [a for a in alarms if not any(lo <= a[1] <= hi for lo, hi in a[0].windows)]
        tallies = b.tallies.values()
        assert sum(t.false_positives for t in tallies) == len(outside)
        assert sum(t.windows for t in tallies) == len(inside) == 4 - len(b.missed)
        assert all(m not in inside for m in b.missed)
        if p.name == "standard":  # the two spikes moved out of their windows cannot detect them
            assert b.missed == [("cat0/series_0.csv", 90, 105), ("cat1/series_1.csv", 90, 105)]


def test_table_shows_the_breakdown_by_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_corpus(tmp_path)
    assert nab.main(["--nab-dir", str(tmp_path), "--by-evidence"]) == 0
    out = capsys.readouterr().out
    assert out.count("4 of 4 windows detected") == 3
    assert "evidence" in out and "change" in out and "quiet" in out


def test_detector_names_the_evidence_it_scored_by() -> None:
    det = nab.NabDetector()
    rng = random.Random(5)
    seen = [(det.step(i * 60.0, 10.0 + rng.gauss(0, 1)), det.evidence) for i in range(600)]
    assert all((s > 0.0) == (e in nab.EVIDENCE) and (s > 0.0 or e == "") for s, e in seen)
    # a value a little beyond everything seen is a new range (its change is no outlier)
    assert det.step(600 * 60.0, 14.0) == det.range_score and det.evidence == "range"
    # a wave whose lows last 20 rows, then a low that lasts 80: no value, change or mean is new,
    # the length of the low is
    rng = random.Random(2)
    wave = [math.sin(2 * math.pi * i / 40) + rng.gauss(0, 0.05) for i in range(6080)]
    values = wave[:6000] + [-abs(v) for v in wave[6000:]]
    det = nab.NabDetector()
    alarms = [(i, det.evidence) for i, v in enumerate(values) if det.step(i * 60.0, v) >= 4.0]
    assert ("quiet" in {e for i, e in alarms if i >= 6000}) and all(i >= 6000 for i, _ in alarms)


def test_a_jump_out_of_a_calm_stretch_counts_against_the_recent_level() -> None:
    # noise of sd 5 for 1,500 rows, then 300 calm rows of sd 0.3, then a step of 12: against
    # the long history a change of 2.4 sigma, against the last rows forty
    rng = random.Random(1)
    values = [100.0 + rng.gauss(0, 5) for _ in range(1500)]
    values += [100.0 + rng.gauss(0, 0.3) for _ in range(300)]
    values.append(values[-1] + 12.0)

    def scored(det: nab.NabDetector) -> list[tuple[float, str]]:
        return [(det.step(i * 300.0, v), det.evidence) for i, v in enumerate(values)]

    with_local = scored(nab.NabDetector())
    assert with_local[-1][1] == "local" and with_local[-1][0] > 10.0
    # the calm stretch itself raises nothing: its wobbles are not notable changes
    assert max(s for s, _ in with_local[1510:-1]) < 4.4
    without = scored(nab.NabDetector(local_gate=math.inf))
    assert without[-1][1] == "change" and without[-1][0] == pytest.approx(2.94, abs=0.05)


def test_detector_has_no_look_ahead(tmp_path: Path) -> None:
    # The scores of a prefix do not depend on what follows it.
    _make_corpus(tmp_path, files=1)
    f = load_corpus(tmp_path)[0]
    ts = [nab.seconds(t) for t in f.timestamps]
    det = nab.NabDetector()
    full = [det.step(t, v) for t, v in zip(ts, f.values, strict=True)]
    det = nab.NabDetector()
    prefix = [det.step(t, v) for t, v in zip(ts[:250], f.values[:250], strict=True)]
    assert prefix == full[:250]


def _daily_square_wave(
    days: int, broken_day: int | None, seed: int = 3, noise: float = 2.0
) -> list[tuple[float, float]]:
    """Five-minute rows of a day that is high from 08:00 to 18:00, with noise of sd ``noise``;
    on ``broken_day`` the day never rises."""
    rng = random.Random(seed)
    rows = []
    for i in range(days * 288):
        day, slot = divmod(i, 288)
        high = 96 <= slot < 216 and day != broken_day
        rows.append((i * 300.0, (80.0 if high else 20.0) + rng.gauss(0, noise)))
    return rows


def test_detector_judges_a_daily_signal_against_its_daily_profile() -> None:
    # Every normal rise and fall is a jump of 30 sigma; only the day that does not rise is news.
    rows = _daily_square_wave(days=12, broken_day=9)
    det = nab.NabDetector()
    scores = [det.step(t, v) for t, v in rows]
    after_warmup = scores[5 * 288 : 9 * 288]
    broken = scores[9 * 288 + 96 : 9 * 288 + 216]
    assert max(broken) > 2.0 * max(after_warmup)


def test_a_broken_rhythm_counts_when_the_profile_explains_most_of_the_signal() -> None:
    # Noisier days: the profile leaves about 7% of the variance, too much to replace the change
    # score (daily_gate) but enough for the departure from it to join as evidence. The day that
    # does not rise shows no jump, only the departure. (No echo, so that yesterday's rise
    # cannot mask today's missing one.)
    rows = _daily_square_wave(days=12, broken_day=9, noise=6.0)
    start = 9 * 288 + 96

    def run(det: nab.NabDetector) -> tuple[list[float], float]:
        scores = []
        unexplained = math.nan
        for i, (t, v) in enumerate(rows):
            scores.append(det.step(t, v))
            if i == start:
                unexplained = det.daily.unexplained
        return scores, unexplained

    joined, unexplained = run(nab.NabDetector(echo_floor=math.inf))
    change_only, _ = run(nab.NabDetector(echo_floor=math.inf, daily_join=0.0))
    det = nab.NabDetector()
    assert det.daily_gate < unexplained < det.daily_join
    broken = slice(start, start + 120)
    assert max(joined[broken]) > 2.0 * max(change_only[broken])
    assert max(joined[broken]) > 1.5 * max(joined[5 * 288 : 9 * 288])


def test_detector_scores_a_record_silence() -> None:
    # A job that spikes every 10 rows stops for good: no single value is unusual, the silence is.
    values = [50.0 if i % 10 == 0 else 1.0 for i in range(3000)] + [1.0] * 200
    det = nab.NabDetector()
    scores = [det.step(i * 60.0, v) for i, v in enumerate(values)]
    assert max(scores[3000:]) >= det.quiet_score
    assert max(scores[1500:3000]) < det.quiet_score


def _daily_job(days: int, odd_day: int, seed: int = 4) -> list[tuple[float, float]]:
    """Five-minute rows of noise with a job spike to 40 at 02:00 every day; on ``odd_day`` a
    second spike, as large, comes at 14:00."""
    rng = random.Random(seed)
    rows = []
    for i in range(days * 288):
        day, slot = divmod(i, 288)
        spike = slot == 24 or (day == odd_day and slot == 168)
        rows.append((i * 300.0, 40.0 if spike else 10.0 + rng.gauss(0, 1)))
    return rows


def test_detector_does_not_alarm_on_a_daily_job_but_on_a_spike_off_schedule() -> None:
    rows = _daily_job(days=8, odd_day=6)
    det = nab.NabDetector()
    scores = [det.step(t, v) for t, v in rows]
    det = nab.NabDetector(echo_floor=math.inf)  # no echo
    plain = [det.step(t, v) for t, v in rows]
    # From the second day on the job is yesterday's news; without the echo it scores as an
    # anomaly for days (until the calibrated tail has learned it).
    assert max(scores[d * 288 + 24] for d in range(2, 8)) == 0.0
    assert min(plain[d * 288 + 24] for d in range(2, 5)) > 5.0
    # The same spike at a time of day that has none is scored as before.
    odd = 6 * 288 + 168
    assert scores[odd] == plain[odd] > 4.0


def test_to_unit_is_monotone_and_unsaturated() -> None:
    xs = [0.0, 0.5, 3.0, 50.0, 1e6, 1e12, 1e100]
    ys = [nab.to_unit(x) for x in xs]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    assert ys[0] == 0.0 and ys[-1] < 1.0
    assert not math.isnan(nab.to_unit(1e300))


def test_every_tunable_setting_reaches_the_detector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_corpus(tmp_path, files=2)
    seen: list[dict[str, float]] = []
    real = nab.NabDetector

    def detector(**kw: float) -> nab.NabDetector:
        seen.append(kw)
        return real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(nab, "NabDetector", detector)
    flags = [f"--{name.replace('_', '-')}" for name in nab.TUNABLE]
    args = [x for i, f in enumerate(flags) for x in (f, str(0.5 + i / 100))]
    assert nab.main(["--nab-dir", str(tmp_path), "--json", *args]) == 0
    capsys.readouterr()
    assert seen and seen[0] == {name: 0.5 + i / 100 for i, name in enumerate(nab.TUNABLE)}
