"""The faust app: one agent over the metrics and logs topics, a table of service state backed by
a changelog topic, and the decision and dead-letter topics.

Who calls this: ``canary-sentinel run`` (:func:`run_worker`) and the integration tests. The agent
stays thin: every message goes to :class:`detector.service.Worker`. Settings follow the
production advice for faust-streaming 0.15: ``concurrency=1`` (higher lets the consumer commit
past an in-flight message), at-least-once with idempotent effects, manual acks tied to
checkpoints; after a rebalance, no source record is fetched until faust has seeked the partitions
back to their committed offsets (:func:`hold_fetching_until_seeked`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiohttp.web import Response

from config.schema import SentinelConfig
from detector.actions import ActionRunner
from detector.fetch_wait import SentinelApp
from detector.metrics import ServiceMetrics
from detector.service import Worker
from detector.wiring import Actions, build_actions

log = logging.getLogger("canary_sentinel.app")

#: The table of checkpoints; its changelog topic is ``<app_id>-<STATE_TABLE>-changelog``.
STATE_TABLE = "service-state"


class TableStore:
    """Checkpoints in a faust table: the local store plus a changelog record sent to the
    partition of the service's source records (faust's ``table[key] = v`` only works inside
    the agent's iteration, and picks the partition of the current event)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.data.get(key)
        return value

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)


async def hold_fetching_until_seeked(app: faust.App, **_: Any) -> None:
    """Stop fetching source records while faust hands the partitions back after a rebalance.

    faust-streaming 0.15 (``Recovery.on_recovery_completed``, right after sending
    ``on_rebalance_complete``) resumes the source partitions, seeks them to the committed
    offsets, and only then resumes flow control, which empties every agent's buffer. The fetcher
    runs all along (flow was resumed to read the changelogs), so records fetched during the seek
    land in the agent's buffer and are thrown away, while the consumer has already counted them
    as read and does not fetch them again: they are never folded and never acked. One lost
    record is committed over silently; two in a row can stop the commits for good (faust commits
    only up to a gap in the acked offsets). Upstream: faust-streaming/faust#596.

    faust resumes fetching itself after emptying the buffers (or, if another rebalance cuts this
    one short, when that one's recovery reads the changelogs), so nothing else is needed.
    """
    app.consumer.stop_flow()


@dataclass
class Service:
    app: faust.App
    worker: Worker
    runner: ActionRunner
    actions: Actions
    metrics: ServiceMetrics


def create_app(config: SentinelConfig, actions: Actions | None = None) -> Service:
    k = config.kafka
    app = SentinelApp(
        k.app_id,
        broker=k.broker,
        store=k.store,
        topic_partitions=k.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        broker_commit_interval=1.0,
        broker_session_timeout=k.session_timeout_seconds,
        consumer_auto_offset_reset="earliest",
        # records wait unacked for the checkpoint that covers them; faust must not wait for them
        stream_wait_empty=False,
        web_enabled=True,
        web_port=k.web_port,
        web_bind=k.web_bind,
        datadir=k.data_dir or f"{k.app_id}-data",
        web_in_thread=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(k.metrics_topic, k.logs_topic, partitions=k.partitions)
    decisions = app.topic(k.decisions_topic, partitions=1)
    deadletter = app.topic(k.deadletter_topic, partitions=1)
    table = app.Table(STATE_TABLE, partitions=k.partitions, key_type=bytes, value_type=bytes)
    store = TableStore(table)
    metrics = ServiceMetrics()
    acts = actions or build_actions(config)
    runner = ActionRunner(acts)

    async def send_decision(key: bytes, value: bytes) -> None:
        # Buffered, not awaited to the broker: awaiting delivery inside the agent can stall it
        # for good while the producer is still starting. faust flushes the producer before it
        # commits, so the decision is durable before the offset of its record is committed.
        await decisions.send(key=key, value=value)

    async def send_deadletter(key: bytes, value: bytes) -> None:
        await deadletter.send(key=key, value=value)

    worker = Worker(config, store, send_decision, send_deadletter, runner.submit, metrics)

    @app.agent(source, concurrency=1)
    async def judge(stream: Any) -> None:
        async for event in stream.noack().events():
            msg = event.message
            try:
                await worker.on_message(event.value, msg.topic, msg.partition, msg.offset, event)
            except Exception:  # one poisoned message must not stop the stream
                log.exception("failed on %s/%s/%s", msg.topic, msg.partition, msg.offset)
                event.ack()

    async def checkpoint_quiet_partitions() -> None:
        worker.checkpoint_idle()

    async def on_revoked(app: faust.App, revoked: set[Any], **_: Any) -> None:
        worker.forget({tp.partition for tp in revoked})

    async def start_actions() -> None:
        try:
            await acts.start()
        except Exception:
            # keep judging and recording decisions: a ledger or outbox that cannot start is
            # logged, and each action then fails loudly on its own
            log.exception("the rollback dispatcher or the alert router failed to start")
        finally:
            runner.ready.set()

    app.timer(interval=k.checkpoint_every_seconds)(checkpoint_quiet_partitions)
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_rebalance_complete.connect(hold_fetching_until_seeked)  # type: ignore[arg-type]
    app.task(start_actions)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        metrics.late.set(worker.engine.stats.late)
        metrics.services.set(len(worker.engine.services))
        return Response(body=metrics.render(), content_type="text/plain")

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        body = {"status": "ok", "actions": acts.health(), "skipped_on_restore": worker.skipped}
        return web.json(body)

    return Service(app, worker, runner, acts, metrics)


def run_worker(config: SentinelConfig, loglevel: str = "WARNING") -> None:
    """Run the service until SIGTERM/SIGINT (faust's worker handles the signals)."""
    svc = create_app(config)
    worker = faust.Worker(svc.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # faust's progress spinner writes backspaces and emoji into every log line at WARNING and
    # above, which a log collector keeps; without it faust logs "Ready" instead
    worker.spinner = None

    async def _drain() -> None:
        await svc.runner.drain()
        await svc.actions.stop()

    async def _on_stop(app: faust.App, **_: Any) -> None:
        try:
            await asyncio.wait_for(_drain(), timeout=30)
        except TimeoutError:
            log.error("actions still running at shutdown; the ledger makes a restart safe")

    svc.app.on_before_shutdown.connect(_on_stop)  # type: ignore[arg-type]

    worker.execute_from_commandline()
