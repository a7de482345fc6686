"""Running the real service (``canary-sentinel run``) as a process against the real broker, and
reading what it wrote back. Shared by the integration tests and the throughput benchmark."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from config.schema import SentinelConfig
from detector.kafka_admin import ensure_service_topics
from detector.localbroker import free_port, stop_process


def service_config(bootstrap: str, tmp: Path, **kafka: Any) -> tuple[SentinelConfig, Path]:
    """A config with unique topics and app id; written to ``tmp/config.yaml``."""
    tag = uuid.uuid4().hex[:8]
    data: dict[str, Any] = {
        "namespace": "shop",
        "kafka": {
            "broker": f"kafka://{bootstrap}",
            "app_id": f"sentinel-test-{tag}",
            "metrics_topic": f"metrics-{tag}",
            "logs_topic": f"logs-{tag}",
            "decisions_topic": f"decisions-{tag}",
            "deadletter_topic": f"deadletter-{tag}",
            "partitions": 2,
            "web_port": free_port(),
            "web_bind": "127.0.0.1",
            "data_dir": str(tmp / "data"),
            # a killed worker's partitions come back after this, not after the default minute
            "session_timeout_seconds": 10.0,
            **kafka,
        },
        "alerting": {"outbox_path": str(tmp / "outbox.sqlite3")},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return SentinelConfig.model_validate(data), path


@dataclass
class ServiceProcess:
    config: SentinelConfig
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        log = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        with log.open("wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "detector.cli", "run", "--config", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        stop_process(self.proc, timeout, sig)
        self.proc = None

    def metrics(self) -> dict[str, float]:
        """The service's /metrics as {"name{labels}": value}; {} while it is not serving."""
        url = f"http://127.0.0.1:{self.config.kafka.web_port}/metrics"
        try:
            text = httpx.get(url, timeout=2).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def counted(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def wait_for(self, what: str, cond: Any, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"service exited ({self.proc.returncode}):\n{self.output()[-4000:]}"
                )
            if cond():
                return
            time.sleep(0.25)  # polling interval, under the deadline
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-4000:]}")


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=262144)
    await producer.start()
    n = 0
    try:
        futs = []
        for key, value in records:
            futs.append(await producer.send(topic, value, key=key))
            n += 1
            if len(futs) >= 2000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return n


async def read_records(
    bootstrap: str, topic: str, timeout: float = 10.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to its end offsets now, as stored (bytes, partition, offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout
        while not parts and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []

        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < end[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                out += msgs
        return out
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every record of ``topic`` up to its end offsets now, decoded from JSON (tombstones left
    out)."""
    records = await read_records(bootstrap, topic, timeout)
    return [orjson.loads(r.value) for r in records if r.value is not None]


def service_with_topics(bootstrap: str, tmp: Path, **kafka: Any) -> tuple[SentinelConfig, Path]:
    """:func:`service_config`, with its topics created on the broker."""
    cfg, path = service_config(bootstrap, tmp, **kafka)
    asyncio.run(ensure_service_topics(bootstrap, cfg))
    return cfg, path


def keyed(lines: Sequence[bytes]) -> list[tuple[bytes | None, bytes]]:
    """Key each native record by its service, as producers must."""
    out: list[tuple[bytes | None, bytes]] = []
    for line in lines:
        m = re.search(rb'"service":"([^"]+)"', line)
        out.append((m.group(1) if m else None, line))
    return out


def batched(lines: Sequence[bytes], size: int) -> list[tuple[bytes | None, bytes]]:
    """The native records as batches (JSON arrays) of up to ``size`` records of one service,
    keyed by it, as a producer that buffers per key writes them: each batch is sent when it is
    full (or at the end), so records keep their order within a service."""
    out: list[tuple[bytes | None, bytes]] = []
    open_: dict[bytes | None, list[bytes]] = {}
    for key, line in keyed(lines):
        batch = open_.setdefault(key, [])
        batch.append(line)
        if len(batch) == size:
            out.append((key, b"[" + b",".join(batch) + b"]"))
            del open_[key]
    out += [(key, b"[" + b",".join(batch) + b"]") for key, batch in open_.items()]
    return out


def _int_attr(key: str, value: int) -> dict[str, Any]:
    return {"key": key, "value": {"intValue": str(value)}}


def as_otlp(lines: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    """The native records as OTLP JSON messages keyed by service, as the OpenTelemetry
    Collector's Kafka exporter writes them with one message per resource: one message per run of
    records that share service, role and time (one pod group's scrape), one gauge per signal."""
    out: list[tuple[bytes | None, bytes]] = []
    group: list[dict[str, Any]] = []

    def flush() -> None:
        if not group:
            return
        first = group[0]
        attrs = {
            "service.name": first["service"],
            "k8s.namespace.name": first["namespace"],
            "role": first["role"],
            **first.get("labels", {}),
        }
        resource = {
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]
        }
        metrics = [
            {
                "name": r["signal"],
                "gauge": {
                    "dataPoints": [
                        {
                            "timeUnixNano": str(int(r["ts"] * 1e9)),
                            "asDouble": float(r["value"]),
                            "attributes": [_int_attr("count", r["count"])],
                        }
                    ]
                },
            }
            for r in group
        ]
        body = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]}
        out.append((first["service"].encode(), orjson.dumps(body)))
        group.clear()

    for line in lines:
        rec = orjson.loads(line)
        if group and any(rec[k] != group[0][k] for k in ("service", "role", "ts")):
            flush()
        group.append(rec)
    flush()
    return out


async def _lag(bootstrap: str, group: str, topic: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        end = await consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(end[tp] - done, 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` the group has not committed yet (its checkpoints cover the rest)."""
    return asyncio.run(_lag(bootstrap, group, topic))
