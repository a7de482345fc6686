"""A real Prometheus reads histogram quantiles as the benchmark and the judge assume.

The benchmark's ``--quantiles`` layouts (:func:`benchmarks.scenarios.histogram.histogram_quantile`)
and the judge's re-reading (:mod:`models.buckets`, which keeps the share of the bucket that
Prometheus interpolated over) both rest on one model of ``histogram_quantile``: linear
interpolation inside the bucket that holds the rank, from 0 in the first bucket, and the top
finite bound when the rank falls in ``+Inf``. Here a real Prometheus scrapes histograms with
known counts and its answers are compared with that model's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from benchmarks.scenarios.histogram import histogram_quantile
from config.detection import BUCKET_PRESETS
from models.buckets import BucketReading
from tests.prometheus_fixture import LocalPrometheus

pytestmark = pytest.mark.integration

BOUNDS = BUCKET_PRESETS["prometheus"]
JOB = "histograms"


def _cases() -> list[list[int]]:
    """Per-bucket counts (the finite buckets, then +Inf): a small canary whose slowest request
    is alone in its bucket, large windows, a quantile in the first bucket and one in +Inf."""
    rng = np.random.default_rng(7)
    cases = [
        [0, 0, 10, 30, 8, 1, 0, 0, 0, 0, 0, 0],  # 50 requests, the slowest alone
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],  # everything beyond the last bound
        [40, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # p50 and p99 in the first buckets
        [0, 0, 0, 500, 480, 20, 0, 0, 0, 0, 0, 0],  # the p99 just past the 0.1 s bound
    ]
    for _ in range(12):
        x = rng.lognormal(np.log(0.04), 0.6, int(rng.integers(20, 3000)))
        edges = np.searchsorted(np.sort(x), BOUNDS, side="right")
        cases.append([*np.diff(np.concatenate(([0], edges))).tolist(), int(len(x) - edges[-1])])
    return cases


def _exposition(cases: list[list[int]]) -> bytes:
    lines = ["# TYPE lat histogram"]
    for i, counts in enumerate(cases):
        cum = np.cumsum(counts)
        les = [*(f"{b:g}" for b in BOUNDS), "+Inf"]
        lines += [f'lat_bucket{{case="{i}",le="{le}"}} {c}' for le, c in zip(les, cum, strict=True)]
        lines += [f'lat_sum{{case="{i}"}} 0', f'lat_count{{case="{i}"}} {cum[-1]}']
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def target() -> Iterator[tuple[str, list[list[int]]]]:
    cases = _cases()
    body = _exposition(cases)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cases
    finally:
        server.shutdown()
        server.server_close()


def _by_case(prom: LocalPrometheus, promql: str) -> dict[int, float]:
    return {int(r["metric"]["case"]): float(r["value"][1]) for r in prom.query(promql)}


def test_prometheus_reads_histogram_quantiles_as_the_model_does(
    target: tuple[str, list[list[int]]], tmp_path: Path
) -> None:
    address, cases = target
    prom = LocalPrometheus(tmp_path / "prometheus", [address], JOB)
    prom.start()
    try:
        deadline = time.monotonic() + 60.0  # scraped every second
        while len(prom.query(f'lat_count{{job="{JOB}"}}')) < len(cases):
            if time.monotonic() > deadline:
                pytest.fail("Prometheus did not scrape the histograms within a minute")
            time.sleep(0.1)  # polling interval, under the deadline
        for q in (0.5, 0.99):
            real = _by_case(prom, f'histogram_quantile({q}, lat_bucket{{job="{JOB}"}})')
            assert sorted(real) == list(range(len(cases)))
            reading = BucketReading(BOUNDS, q)
            for i, counts in enumerate(cases):
                cumulative = np.cumsum(counts).astype(np.float64)
                modelled = histogram_quantile(q, np.asarray(BOUNDS), cumulative)
                assert real[i] == pytest.approx(modelled, rel=1e-9), (q, counts)
                # read again, the real reading stays in its bucket
                k = int(np.searchsorted(BOUNDS, real[i]))
                if 0 < k < len(BOUNDS):
                    assert BOUNDS[k - 1] <= reading.read(real[i]) <= BOUNDS[k]
    finally:
        prom.stop()
