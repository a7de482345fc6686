"""A real Prometheus server on 127.0.0.1 that scrapes given targets, for integration tests.

Who calls this: the integration test that checks the service's ``/metrics`` as a user's
Prometheus reads it. What it promises: Debian's ``prometheus`` (``apt-get install prometheus``,
installed by ``scripts/setup.sh``; or the path in ``CANARY_SENTINEL_PROMETHEUS_BIN``) started with
a one-job configuration (``job``) that scrapes ``targets`` every second, its own TSDB in
``workdir``, a free port, and :meth:`LocalPrometheus.start` returning only once ``/-/ready``
answers 200 (polled under a deadline; the error shows the tail of its log). Missing binary: a
clear error, never a skip.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from detector.localbroker import find_executable, free_port, stop_process


def find_binary() -> str:
    return find_executable(
        "CANARY_SENTINEL_PROMETHEUS_BIN",
        ("prometheus",),
        "Prometheus not found: `apt-get install prometheus` (scripts/setup.sh does)",
    )


class LocalPrometheus:
    """One Prometheus process scraping ``targets`` (``host:port``) as job ``job``."""

    def __init__(self, workdir: Path, targets: list[str], job: str = "canary-sentinel") -> None:
        self.workdir = workdir
        self.targets = targets
        self.job = job
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {"job_name": self.job, "static_configs": [{"targets": self.targets}]}
                    ],
                }
            )
        )
        binary = find_binary()
        deadline = time.monotonic() + timeout
        for _ in range(3):  # a free port can be taken between probing and binding: try another
            self.port = free_port()
            with (self.workdir / "prometheus.log").open("ab") as log:  # the child keeps its own
                self._proc = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={cfg}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)  # polling interval, under the deadline
            if self._proc.poll() is None:  # still running, never ready: out of time
                break
        self.stop()
        tail = (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Prometheus did not become ready:\n{tail}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` (``data.result`` of ``/api/v1/query``)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_health(self) -> list[dict[str, Any]]:
        """The active targets (``/api/v1/targets``): each with ``health`` and ``lastError``."""
        r = httpx.get(f"{self.url}/api/v1/targets", timeout=5.0)
        r.raise_for_status()
        active: list[dict[str, Any]] = r.json()["data"]["activeTargets"]
        return active

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc, timeout=15)
