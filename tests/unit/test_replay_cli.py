"""``canary-sentinel replay`` on files: decisions out, bad lines counted, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from detector.demo import REGRESSING, DemoPlan, demo_lines

PLAN = DemoPlan(history_minutes=10, canary_minutes=6, regress_at_minute=2)


def test_replay_writes_the_rollback_decision(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    lines = list(demo_lines(PLAN))
    # the last line is a batch of the last three records, one of them spoiled
    last = [orjson.loads(ln) for ln in lines[-3:]]
    batch = orjson.dumps([last[0], {**last[1], "role": "other"}, last[2]])
    src.write_bytes(b"\n".join([*lines[:-3], b"garbage", b'{"ts": 1}', batch]) + b"\n")
    out = tmp_path / "out.jsonl"
    dead = tmp_path / "dead.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "replay",
            str(src),
            "--out",
            str(out),
            "--deadletter",
            str(dead),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    decisions = [orjson.loads(ln) for ln in out.read_bytes().splitlines()]
    rollbacks = [d for d in decisions if d["action"] == "rollback"]
    assert [d["service"] for d in rollbacks] == [REGRESSING]
    assert "decided_at" not in rollbacks[0]
    assert rollbacks[0]["ts"] >= PLAN.onset
    assert "3 undecodable" in proc.stderr
    assert f"{len(lines) - 1:,} records" in proc.stderr
    reasons = [orjson.loads(ln) for ln in dead.read_bytes().splitlines()]
    assert [(r["kind"], r["line"], r.get("index")) for r in reasons] == [
        ("not_json", len(lines) - 2, None),
        ("missing_field", len(lines) - 1, None),
        ("bad_role", len(lines), 1),
    ]


def test_replay_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "replay",
            str(tmp_path / "nope.jsonl"),
            "--out",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr
