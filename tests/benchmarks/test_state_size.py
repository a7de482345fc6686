"""The state-size benchmark measures restored state and a raw window the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import state_size
from config.schema import SentinelConfig


def test_the_reference_window_is_two_sides_of_an_hour_of_floats() -> None:
    per_signal = state_size.window_bytes(50) / 50
    floats = 2 * state_size.WINDOW_SAMPLES
    # a float object (24 bytes) and its list slot (8 bytes) each, give or take the list headers
    assert 32 * floats <= per_signal <= 36 * floats


def test_restored_state_is_measured_per_signal() -> None:
    r = state_size.measure(seed=2, instances=1, config=SentinelConfig())
    assert r["signals"] >= 4 * r["services"] > 0
    # the restored objects are real: far more than their pointers, far less than a raw window
    assert 500 < r["memory_bytes_per_signal"] < r["window_bytes_per_signal"]
    assert 0 < r["checkpoint_bytes_per_signal"] < r["memory_bytes_per_signal"]


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert state_size.main(["--instances", "1", "--signals", "1000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["projected_signals"] == 1000
    assert doc["projected_memory_mib"] == pytest.approx(
        doc["memory_bytes_per_signal"] * 1000 / 2**20
    )


def test_a_config_reaches_the_state_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # exact quantiles add the tail-shape test's state to every p99 beside a p50
    cfg = tmp_path / "exact.yaml"
    cfg.write_text("detection:\n  exact_quantiles: true\n")
    argv = ["--instances", "1", "--signals", "1000", "--json"]
    assert state_size.main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert state_size.main([*argv, "--config", str(cfg)]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["checkpoint_bytes_per_signal"] > plain["checkpoint_bytes_per_signal"]
