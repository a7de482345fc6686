"""Topic set-up for the service's topics (used by the demo, the tests and the benchmarks)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from config.schema import SentinelConfig

# Compacted by rollout key, but never within a week: the action ledger shares the key with the
# decisions, and a restarted worker must still find the attempt records of recent rollouts.
_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000)}


async def ensure_topics(
    bootstrap: str, partitions: dict[str, int], compacted: frozenset[str] = frozenset()
) -> None:
    """Create the topics that do not exist yet (single broker: replication factor 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=n,
                replication_factor=1,
                topic_configs=_COMPACTED if name in compacted else {},
            )
            for name, n in partitions.items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile: fine
                await admin.create_topics(new)
    finally:
        await admin.close()


async def ensure_service_topics(bootstrap: str, cfg: SentinelConfig) -> None:
    k = cfg.kafka
    await ensure_topics(
        bootstrap,
        {
            k.metrics_topic: k.partitions,
            k.logs_topic: k.partitions,
            k.decisions_topic: 1,
            k.deadletter_topic: 1,
        },
        compacted=frozenset({k.decisions_topic}),
    )
