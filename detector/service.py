"""The live service's per-message work: restore, skip, decide, emit, checkpoint.

Who calls this: the faust agent in :mod:`detector.app`, once per Kafka message, with the message's
topic, partition and offset. What it promises:

- the same engine as ``replay`` sees the same records in the same order per service;
- state is checkpointed to the table per partition every ``checkpoint_every_samples`` messages or
  ``checkpoint_every_seconds``, and at once after a decision; a message is acked (so its offset
  may be committed) only after a checkpoint that covers it. After a crash the consumer resumes at
  or before the checkpoint, and messages at or before a service's checkpointed offset are skipped:
  nothing is skipped twice, nothing counted twice;
- a record that cannot be decoded goes to the dead-letter topic with its reason, the original
  bytes (text, or base64 when not UTF-8) and where it came from.
"""

from __future__ import annotations

import base64
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from config.schema import SentinelConfig
from detector.core.engine import ServiceState
from detector.core.types import Decision
from detector.metrics import ServiceMetrics
from detector.pipeline import Pipeline
from detector.sources.base import DecodeError

log = logging.getLogger("canary_sentinel.service")

Send = Callable[[bytes, bytes], Awaitable[None]]


class StateStore(Protocol):
    """Where checkpoints live: a faust table (changelog-backed) in the service, a dict in tests.
    ``put`` names the partition, so a checkpoint may be written outside the agent's iteration
    and still land on the changelog partition of the service's records."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes, partition: int) -> None: ...


class DictStore:
    """In-memory :class:`StateStore` for tests."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.partitions: dict[bytes, int] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        self.data[key] = value
        self.partitions[key] = partition


@dataclass(slots=True)
class _Partition:
    dirty: set[str] = field(default_factory=set)
    pending: list[Any] = field(default_factory=list)  # faust events awaiting their checkpoint
    since: int = 0
    last: float = field(default_factory=time.monotonic)


def offset_key(topic: str, partition: int) -> str:
    """The key of :attr:`ServiceState.offsets` for one source partition: ``topic@partition``
    (``@`` cannot occur in a Kafka topic name)."""
    return f"{topic}@{partition}"


def last_offset(offsets: dict[str, int], topic: str, source: str) -> int:
    """The offset of the last record of ``source`` (see :func:`offset_key`) a state has folded
    in, or -1. A checkpoint written before offsets were kept per partition holds one per topic;
    it is taken as this partition's (records keyed by service arrive on one partition) and
    moved to the per-partition key."""
    last = offsets.get(source)
    if last is None:
        last = offsets.pop(topic, -1)
        if last >= 0:
            offsets[source] = last
    return last


class Worker:
    """Per-worker state around the pipeline. ``store`` maps service name (bytes) to a pickled
    :class:`ServiceState`; ``send_decision`` and ``send_deadletter`` write to Kafka;
    ``on_decision`` hands a decision to the rollback dispatcher and alert router."""

    def __init__(
        self,
        config: SentinelConfig,
        store: StateStore,
        send_decision: Send,
        send_deadletter: Send,
        on_decision: Callable[[Decision], None],
        metrics: ServiceMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.pipeline = Pipeline(config)
        self.engine = self.pipeline.engine
        self.store = store
        self.send_decision = send_decision
        self.send_deadletter = send_deadletter
        self.on_decision = on_decision
        self.metrics = metrics
        self.clock = clock
        self.partitions: dict[int, _Partition] = {}
        self.where: dict[str, int] = {}  # service -> partition it arrives on
        self.misrouted: set[str] = set()  # services warned about arriving on several partitions
        self.skipped = 0

    def _state_for(self, service: str, namespace: str) -> ServiceState:
        st = self.engine.services.get(service)
        if st is None:
            blob = self.store.get(service.encode())
            if blob is not None:
                restored: ServiceState = pickle.loads(blob)
                self.engine.restore(restored)
                return restored
            st = self.engine.state(service, namespace)
        return st

    async def on_message(
        self, raw: bytes | None, topic: str, partition: int, offset: int, event: Any
    ) -> list[Decision]:
        part = self.partitions.get(partition)
        if part is None:
            part = self.partitions[partition] = _Partition()
        part.pending.append(event)
        logs = topic == self.config.kafka.logs_topic
        decisions: list[Decision] = []
        raw = raw or b""
        records, err = self.pipeline.decode(raw, logs=logs)
        # the whole message, or (a batch's usable records being judged) each rejected record alone
        rejected = err.rejections(raw) if err is not None else []
        for r in rejected:
            self.metrics.bad_records.labels(r.error.kind).inc()
            await self._deadletter(r.raw, r.error, topic, partition, offset, r.index)
        part.since += len(records) + len(rejected) or 1  # samples, as the setting says
        source = offset_key(topic, partition)
        # A message may carry several records of one service (a batch): the offset is the
        # message's, so once its first record is folded in, the state's offset equals it. The
        # rest of the message must not read that as "already in the checkpoint"; a checkpoint
        # is only written between messages, so it holds a message whole or not at all.
        folded: set[str] = set()
        for rec in records:
            st = self._state_for(rec.service, rec.namespace)
            # noted even when the record is skipped: a state held in memory must be dropped with
            # its partition, or it would outlive checkpoints another worker writes meanwhile
            if self.where.setdefault(rec.service, partition) != partition:
                self._misrouted(rec.service, partition)
            if rec.service not in folded and offset <= last_offset(st.offsets, topic, source):
                self.skipped += 1  # already in the restored checkpoint
                self.metrics.skipped.inc()
                log.debug("skip %s/%s/%s: in the checkpoint", topic, partition, offset)
                continue
            decisions += self.engine.process(rec)
            st.offsets[source] = offset
            folded.add(rec.service)
            part.dirty.add(rec.service)
            self.metrics.records.labels("logs" if logs else "metrics").inc()
        for d in decisions:
            await self._emit(d)
        k = self.config.kafka
        if (
            decisions
            or part.since >= k.checkpoint_every_samples
            or time.monotonic() - part.last >= k.checkpoint_every_seconds
        ):
            self.checkpoint(partition)
        return decisions

    def _misrouted(self, service: str, partition: int) -> None:
        """A service's records arrive on more than one partition: its producers do not key them
        by service. Offsets stay right (they are kept per partition), but two workers may then
        each hold part of the service's samples; say so once per service, and count each."""
        self.metrics.misrouted.inc()
        if service not in self.misrouted:
            self.misrouted.add(service)
            log.warning(
                "records of service %s arrive on partitions %s and %s: key them by service "
                "(the Kafka message key must be the service name), or one worker may see only "
                "part of its samples",
                service,
                self.where[service],
                partition,
            )
        self.where[service] = partition

    def checkpoint(self, partition: int) -> None:
        """Write the dirty services of ``partition`` to the store, then ack what they cover."""
        part = self.partitions.get(partition)
        if part is None:
            return
        for service in part.dirty:
            blob = pickle.dumps(self.engine.services[service], protocol=pickle.HIGHEST_PROTOCOL)
            self.store.put(service.encode(), blob, partition)
        self.metrics.checkpoints.inc()
        part.dirty.clear()
        pending, part.pending = part.pending, []
        for event in pending:
            event.ack()
        part.since = 0
        part.last = time.monotonic()

    def checkpoint_idle(self) -> None:
        """Checkpoint partitions whose last checkpoint is older than the interval (a quiet
        partition would otherwise hold its last records unacked)."""
        limit = self.config.kafka.checkpoint_every_seconds
        now = time.monotonic()
        for p, part in list(self.partitions.items()):
            if part.pending and now - part.last >= limit:
                self.checkpoint(p)

    def forget(self, partitions: set[int]) -> None:
        """Partitions were taken away: checkpoint what they hold (so the commit that follows a
        revocation covers only checkpointed records, and nothing waits for an ack that can no
        longer come), then drop them; whoever gets them next continues from the checkpoint."""
        log.info("partitions %s revoked: checkpointing, then handing over", sorted(partitions))
        for p in partitions:
            try:
                self.checkpoint(p)
            except Exception:  # the records stay unacked and are delivered again: no loss
                log.exception("could not checkpoint partition %s on revocation", p)
            self.partitions.pop(p, None)
        for s in [s for s, p in self.where.items() if p in partitions]:
            del self.where[s]
            self.engine.services.pop(s, None)

    async def _emit(self, d: Decision) -> None:
        stamped = Decision(
            ts=d.ts,
            service=d.service,
            namespace=d.namespace,
            revision=d.revision,
            verdict=d.verdict,
            severity=d.severity,
            action=d.action,
            reason=d.reason,
            signals=d.signals,
            decided_at=self.clock(),
            recovers=d.recovers,
        )
        await self.send_decision(
            stamped.rollout_key.encode(),
            orjson.dumps({"record": "decision", **stamped.to_record()}),
        )
        self.metrics.decisions.labels(d.verdict.value, d.action.value).inc()
        log.warning("DECISION %s", stamped.reason)
        self.on_decision(stamped)

    async def _deadletter(
        self,
        raw: bytes,
        err: DecodeError,
        topic: str,
        partition: int,
        offset: int,
        index: int | None = None,
    ) -> None:
        """One dead-letter record: the message (or, with ``index``, that record of its batch),
        the reason, and where it came from."""
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        body: dict[str, Any] = {
            "reason": err.reason,
            "kind": err.kind,
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }
        key = f"{topic}/{partition}/{offset}"
        if index is not None:
            body["index"] = index
            key += f"/{index}"
        if text is not None:
            body["record"] = text
        else:
            body["record_base64"] = base64.b64encode(raw).decode()
        await self.send_deadletter(key.encode(), orjson.dumps(body))
