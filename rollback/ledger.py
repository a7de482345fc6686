"""The audit ledger of rollback actions, on the Kafka topic ``sentinel.decisions``.

Who calls this: :class:`rollback.dispatch.Dispatcher` (``load`` once at start, ``append`` for
every attempt, refusal and outcome). What it promises:

- Records are JSON objects keyed ``namespace/service/revision``, the key of the decision
  records on the same topic. Action records carry ``"record": "action"`` (decision records do
  not), plus ``phase``: ``attempt`` (written *before* the first request is sent), ``outcome``
  (``status`` done / skipped / dry_run / failed, ``detail``, ``requests``, ``attempts``) or
  ``refused`` (a guardrail said no).
- ``load`` returns every action record from the beginning of the topic up to its end offsets
  *at the time of the call*, grouped by key, in topic order; decision records and undecodable
  messages are ignored. The dispatcher rebuilds its history from it, so a restarted worker never
  repeats an action already attempted for a revision.

Caveat: ``sentinel.decisions`` is compacted by key. Compaction keeps the last record per key,
so a decision record written for a revision *after* its action records would hide them from a
later ``load``. The dispatcher writes the outcome last for each action, and the decision core
decides a rollback once per revision, so this only matters if other records for the same
revision follow the action; set ``min.compaction.lag.ms`` above the longest rollout if they may.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)

ACTION_RECORD = "action"


class Ledger(Protocol):
    """Where action records go and come back from. Implementations: :class:`KafkaLedger`,
    :class:`InMemoryLedger` (the fake)."""

    async def append(self, key: str, record: dict[str, Any]) -> None: ...

    async def load(self) -> dict[str, list[dict[str, Any]]]: ...


def decode_action(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any]] | None:
    """The ``(key, record)`` of a Kafka message if it is an action record, else ``None``."""
    if key is None or value is None:
        return None
    try:
        rec = json.loads(value)
        k = key.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or rec.get("record") != ACTION_RECORD:
        return None
    return k, rec


def group(pairs: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for k, rec in pairs:
        out.setdefault(k, []).append(rec)
    return out


class InMemoryLedger:
    """The fake: keeps records in a list, in order; ``fail_appends`` makes ``append`` raise
    (to test a broker outage). Two dispatchers sharing one instance behave like a worker and
    its restarted successor sharing a topic."""

    def __init__(self, records: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = list(records)
        self.fail_appends = False

    async def append(self, key: str, record: dict[str, Any]) -> None:
        if self.fail_appends:
            raise ConnectionError("ledger unavailable")
        # Round-trip through JSON, as Kafka would, so non-serialisable records fail here too.
        self.records.append((key, json.loads(json.dumps(record))))

    async def load(self) -> dict[str, list[dict[str, Any]]]:
        return group((k, r) for k, r in self.records if r.get("record") == ACTION_RECORD)

    def of(self, key: str) -> list[dict[str, Any]]:
        """The action records of one key, in order (test helper)."""
        return [r for k, r in self.records if k == key and r.get("record") == ACTION_RECORD]


class KafkaLedger:
    """The ledger on a Kafka topic, with aiokafka. ``bootstrap_servers`` is ``host:port[,…]``
    (no ``kafka://`` scheme). Call :meth:`start` before use and :meth:`stop` at the end; the
    producer waits for all in-sync replicas (``acks="all"``) so an ``attempt`` record is durable
    before the action is sent."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "sentinel.decisions",
        *,
        client_id: str = "canary-sentinel-ledger",
        load_timeout_seconds: float = 30.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.client_id = client_id
        self.load_timeout_seconds = load_timeout_seconds
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def append(self, key: str, record: dict[str, Any]) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaLedger.start() was not called")
        value = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        await self._producer.send_and_wait(self.topic, value=value, key=key.encode())

    async def _partitions(self) -> list[int]:
        """The topic's partitions (none if it does not exist yet), from the cluster metadata."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=f"{self.client_id}-meta"
        )
        await admin.start()
        try:
            (desc,) = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        if desc.get("error_code") == 3:  # UNKNOWN_TOPIC_OR_PARTITION: nothing recorded yet
            return []
        if desc.get("error_code"):
            raise ConnectionError(f"cannot describe topic {self.topic}: {desc}")
        return sorted(int(p["partition"]) for p in desc.get("partitions") or [])

    async def load(self) -> dict[str, list[dict[str, Any]]]:
        """Read the topic from the beginning to the end offsets it has now (no consumer group,
        nothing committed). A topic that does not exist yet has no records. Raises
        ``TimeoutError`` when the end is not reached within ``load_timeout_seconds``: without
        its history the service must not act, so the caller should fail its start."""
        import asyncio

        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-load",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in await self._partitions()]
            if not tps:
                return {}
            consumer.assign(tps)
            end = await consumer.end_offsets(tps)
            todo = {tp for tp in tps if end[tp] > 0}
            await consumer.seek_to_beginning(*tps)
            pairs: list[tuple[str, dict[str, Any]]] = []
            async with asyncio.timeout(self.load_timeout_seconds):
                while todo:
                    batch = await consumer.getmany(*todo, timeout_ms=500)
                    for tp, messages in batch.items():
                        for m in messages:
                            if m.offset < end[tp] and (got := decode_action(m.key, m.value)):
                                pairs.append(got)
                    for tp in list(todo):
                        if await consumer.position(tp) >= end[tp]:
                            todo.discard(tp)
            return group(pairs)
        finally:
            await consumer.stop()
