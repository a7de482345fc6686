"""Throughput of the live service through a real Kafka broker, against a raw aiokafka consumer.

Pushes N native samples (default 200,000; many services, canary and baseline) to a fresh topic,
then measures in the same run:

- reference: a raw aiokafka consumer reading the whole topic (no decoding, no work);
- service: ``canary-sentinel run`` (the faust worker: decode, models, comparison, policy,
  checkpoints to the changelog, commits), timed from its first folded record to its last, by
  its own ``/metrics``.

Prints samples/s for both and the ratio, as a table and as JSON (``--json``). Starts its own
broker unless ``--bootstrap`` names one.

With ``--format otlp-json`` the same samples travel as OTLP JSON, the way the OpenTelemetry
Collector's Kafka exporter writes them with one message per resource: each message carries one
pod group's scrape (its four metrics), so faust's cost per message is shared by four samples.
The reference then counts samples too (messages read times samples per message).

With ``--batch N`` the native records travel as batches, JSON arrays of up to N records of one
service, the way a producer that buffers per key writes them.

    python -m benchmarks.throughput [--samples 200000] [--format native|otlp-json] [--batch N]
        [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from detector.demo import DemoPlan, demo_lines
from detector.localbroker import LocalBroker
from tests.integration.harness import (
    ServiceProcess,
    as_otlp,
    batched,
    keyed,
    produce,
    service_with_topics,
)


def make_lines(samples: int, services: int) -> list[bytes]:
    """At least ``samples`` demo records over ``services`` services (the last one regresses)."""
    names = (*(f"svc-{i:03d}" for i in range(services - 1)), "payments")
    # 4 signals x (baseline, and canary in the second half) per service per 10 s step
    steps = int(samples / (6 * services)) + 2
    minutes = steps / 6.0
    plan = DemoPlan(
        history_minutes=minutes / 2,
        canary_minutes=minutes / 2,
        regress_at_minute=minutes / 4,
        services=names,
    )
    return list(demo_lines(plan))[:samples]


async def raw_consume(bootstrap: str, topic: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = 0
        t0 = time.perf_counter()
        while n < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for msgs in batch.values():
                n += len(msgs)
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


def service_rate(svc: ServiceProcess, total: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    t_first: float | None = None
    while time.monotonic() < deadline:
        n = svc.counted("canary_sentinel_records_total")
        now = time.perf_counter()
        if t_first is None and n > 0:
            t_first, n_first = now, n
        if n >= total and t_first is not None:
            return (n - n_first) / (now - t_first)
        time.sleep(0.05)  # sampling the service's own counter
    raise SystemExit(f"the service did not fold {total} records within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--services", type=int, default=40)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument(
        "--format",
        choices=("native", "otlp-json"),
        default="native",
        help="record format on the topic (otlp-json: one message per pod group's scrape)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="native records per message, as JSON arrays of one service's records (default 1: "
        "one object per message)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args(argv)
    if args.batch < 1 or (args.batch > 1 and args.format != "native"):
        ap.error("--batch takes a count of 1 or more, and only with --format native")

    def note(msg: str) -> None:
        print(f"[throughput] {msg}", file=sys.stderr, flush=True)

    broker = None
    if args.bootstrap is None:
        note("starting a local Kafka broker")
        broker = LocalBroker().start()
        bootstrap = broker.bootstrap
    else:
        bootstrap = args.bootstrap
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg, path = service_with_topics(
                bootstrap, Path(tmp), partitions=args.partitions, metrics_format=args.format
            )
            lines = make_lines(args.samples, args.services)
            if args.format == "otlp-json":
                messages = as_otlp(lines)
            else:
                messages = batched(lines, args.batch) if args.batch > 1 else keyed(lines)
            note(
                f"producing {len(lines):,} samples in {len(messages):,} messages "
                f"to {cfg.kafka.metrics_topic}"
            )
            asyncio.run(produce(bootstrap, cfg.kafka.metrics_topic, messages))
            note("raw aiokafka consumer reading the topic")
            per_message = len(lines) / len(messages)
            raw = per_message * asyncio.run(
                raw_consume(bootstrap, cfg.kafka.metrics_topic, len(messages))
            )
            note("the service (canary-sentinel run) consuming the topic")
            svc = ServiceProcess(cfg, path, Path(tmp) / f"svc-{uuid.uuid4().hex[:4]}")
            svc.start()
            try:
                ours = service_rate(svc, len(lines), args.timeout)
            finally:
                svc.stop()
    finally:
        if broker is not None:
            broker.stop()
    result = {
        "samples": len(lines),
        "format": args.format,
        "batch": args.batch,
        "messages": len(messages),
        "partitions": args.partitions,
        "service_samples_per_s": round(ours),
        "raw_aiokafka_samples_per_s": round(raw),
        "ratio": round(ours / raw, 4),
    }
    if not args.json:
        print(f"{'pipeline':<34}{'samples/s':>12}")
        print(f"{'canary-sentinel run (faust)':<34}{ours:>12,.0f}")
        print(f"{'raw aiokafka consumer':<34}{raw:>12,.0f}")
        print(f"{'ratio service / raw':<34}{ours / raw:>12.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
