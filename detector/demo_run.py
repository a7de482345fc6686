"""``canary-sentinel demo``: the quickstart's main job on an embedded default.

Starts a local Kafka broker, creates the topics, starts the service (``canary-sentinel run``) in
dry-run with the log alert sink, streams the demo (one healthy canary, one that regresses), and
prints every decision from ``sentinel.decisions`` as it happens. Stops everything on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from config.schema import SentinelConfig
from detector.demo import REGRESSING, DemoPlan, demo_records
from detector.kafka_admin import ensure_service_topics
from detector.localbroker import LocalBroker, free_port


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


async def _stream(bootstrap: str, cfg: SentinelConfig, plan: DemoPlan, speed: float) -> None:
    # the topics were created a moment ago: the first batch may meet a partition whose leader is
    # still being elected, which aiokafka retries and logs as a warning; a send that really
    # fails still raises
    logging.getLogger("aiokafka.producer").setLevel(logging.ERROR)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        wall0: float | None = None
        announced = False
        for rec in demo_records(plan):
            ts = float(rec["ts"])  # type: ignore[arg-type]
            if ts >= plan.canary_start:
                if wall0 is None:
                    await producer.flush()
                    _say(
                        f"baseline history sent; canaries start now at {speed:g}x speed "
                        f"({REGRESSING} regresses {plan.regress_at_minute:g} min in)"
                    )
                    wall0 = time.monotonic()
                if not announced and ts >= plan.onset:
                    announced = True
                    _say(f"{REGRESSING} canary: p99 latency x2 and errors x10 from now")
                due = wall0 + (ts - plan.canary_start) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await producer.flush()
                    await asyncio.sleep(delay)  # pacing event time against the wall clock
            await producer.send(
                cfg.kafka.metrics_topic, orjson.dumps(rec), key=str(rec["service"]).encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _watch(
    bootstrap: str, topic: str, stop: asyncio.Event, seen: list[dict[str, object]]
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"demo-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    rec = orjson.loads(m.value)
                    if rec.get("record") != "decision":
                        continue
                    seen.append(rec)
                    _say(
                        f"DECISION {rec['verdict']} -> {rec['action']} "
                        f"[{rec['namespace']}/{rec['service']}@{rec['revision']}]: {rec['reason']}"
                    )
    finally:
        await consumer.stop()


async def _main(broker: LocalBroker, cfg: SentinelConfig, cfg_path: Path, speed: float) -> int:
    await ensure_service_topics(broker.bootstrap, cfg)
    _say("starting the service: canary-sentinel run (dry-run target, log alerts)")
    service = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg_path)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stop = asyncio.Event()
    seen: list[dict[str, object]] = []
    watcher = asyncio.create_task(_watch(broker.bootstrap, cfg.kafka.decisions_topic, stop, seen))
    try:
        plan = DemoPlan()
        await _stream(broker.bootstrap, cfg, plan, speed)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r["action"] == "rollback" for r in seen):
            if service.poll() is not None:
                _say(f"the service exited with {service.returncode}")
                return 1
            await asyncio.sleep(0.2)  # poll for the decision under a deadline
        stop.set()
        await watcher
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
    rollbacks = [r for r in seen if r["action"] == "rollback"]
    ok = len(rollbacks) == 1 and rollbacks[0]["service"] == REGRESSING
    _say(
        f"done: {len(seen)} decisions, {len(rollbacks)} rollback "
        f"({'as expected: only ' + REGRESSING if ok else 'NOT as expected'}); dry-run, nothing "
        "was touched"
    )
    return 0 if ok else 1


def run_demo(speed: float = 60.0, keep_broker: bool = False) -> int:
    _say("starting a local Kafka broker (first run fetches the jars with Maven)")
    broker = LocalBroker()
    broker.start()
    _say(f"broker ready at {broker.bootstrap}")
    try:
        cfg_dict: dict[str, object] = {
            "namespace": "shop",
            "kafka": {
                "broker": broker.url,
                "app_id": f"canary-sentinel-demo-{uuid.uuid4().hex[:6]}",
                "partitions": 2,
                "web_port": free_port(),
                "web_bind": "127.0.0.1",
            },
        }
        with tempfile.TemporaryDirectory() as tmp:
            cfg_dict["alerting"] = {"outbox_path": str(Path(tmp) / "outbox.sqlite3")}
            cfg_dict["kafka"]["data_dir"] = str(Path(tmp) / "data")  # type: ignore[index]
            cfg_path = Path(tmp) / "demo.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg_dict))
            cfg = SentinelConfig.model_validate(cfg_dict)
            return asyncio.run(_main(broker, cfg, cfg_path, speed))
    finally:
        if not keep_broker:
            broker.stop()
