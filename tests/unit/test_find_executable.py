"""How the local servers (Alertmanager, Prometheus) find their executables."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from detector.localbroker import find_executable


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _exe(tmp_path / "mine")
    monkeypatch.setenv("X_BIN", str(mine))
    monkeypatch.setenv("PATH", str(tmp_path))
    _exe(tmp_path / "tool")
    assert find_executable("X_BIN", ("tool",), "missing") == str(mine)


def test_names_are_tried_in_order_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    second = _exe(tmp_path / "second")
    assert find_executable("X_BIN", ("first", "second"), "missing") == str(second)
    first = _exe(tmp_path / "first")
    assert find_executable("X_BIN", ("first", "second"), "missing") == str(first)
    assert find_executable("X_BIN", (str(second),), "missing") == str(second)  # an absolute path


def test_none_found_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BIN", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"apt-get install tool, or set X_BIN"):
        find_executable("X_BIN", ("tool",), "tool not found: apt-get install tool")
