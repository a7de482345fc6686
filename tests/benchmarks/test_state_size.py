"""The state-size benchmark measures restored state and a raw window the same way."""

from __future__ import annotations

import json

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
