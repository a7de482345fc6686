"""The Kafka ledger against the real broker (the session ``kafka_broker`` fixture): records
round-trip through a multi-partition topic, decision records on the same topic are ignored, and
a restarted dispatcher reading the topic does not repeat an attempted action."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from detector.localbroker import LocalBroker
from rollback.dispatch import Dispatcher, ServiceTarget
from rollback.guardrails import Limits
from rollback.ledger import KafkaLedger
from rollback.targets.base import OutcomeStatus
from rollback.targets.fake import FakeTarget
from tests.rollback.helpers import RecordingNotifier, decision

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic(kafka_broker: LocalBroker) -> AsyncIterator[str]:
    name = f"sentinel.decisions-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
    finally:
        await admin.close()


async def started(broker: LocalBroker, topic: str) -> KafkaLedger:
    ledger = KafkaLedger(broker.bootstrap, topic)
    await ledger.start()
    return ledger


async def test_records_round_trip_and_decision_records_are_ignored(
    kafka_broker: LocalBroker, topic: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    await producer.start()
    try:  # the service's own decision record, same topic and key
        rec = json.dumps(decision().to_record()).encode()
        await producer.send_and_wait(topic, key=b"shop/web/7", value=rec)
        await producer.send_and_wait(topic, key=b"shop/web/7", value=b"not json")
    finally:
        await producer.stop()
    writer = await started(kafka_broker, topic)
    try:
        for i, key in enumerate(["shop/web/7", "shop/api/3", "pay/web/1"] * 2):
            await writer.append(key, {"record": "action", "phase": f"p{i}", "n": i})
    finally:
        await writer.stop()

    loaded = await KafkaLedger(kafka_broker.bootstrap, topic).load()
    assert loaded == {
        "shop/web/7": [
            {"record": "action", "phase": "p0", "n": 0},
            {"record": "action", "phase": "p3", "n": 3},
        ],
        "shop/api/3": [
            {"record": "action", "phase": "p1", "n": 1},
            {"record": "action", "phase": "p4", "n": 4},
        ],
        "pay/web/1": [
            {"record": "action", "phase": "p2", "n": 2},
            {"record": "action", "phase": "p5", "n": 5},
        ],
    }


async def test_restarted_worker_does_not_repeat_the_action(
    kafka_broker: LocalBroker, topic: str
) -> None:
    async def run(target: FakeTarget) -> OutcomeStatus:
        ledger = await started(kafka_broker, topic)
        try:
            d = Dispatcher(
                resolve=lambda _d: ServiceTarget(target, "abort", "enforce"),
                ledger=ledger,
                notify=RecordingNotifier(),
                limits=Limits(cooldown_seconds=0, max_actions_per_hour=10),
            )
            await d.start()
            out = await d.handle(decision())
            assert out is not None
            return out.status
        finally:
            await ledger.stop()

    first, second = FakeTarget(), FakeTarget()
    assert await run(first) == OutcomeStatus.DONE
    assert await run(second) == OutcomeStatus.SKIPPED
    assert len(first.calls) == 1
    assert second.calls == []


async def test_load_of_an_empty_or_missing_topic(kafka_broker: LocalBroker, topic: str) -> None:
    assert await KafkaLedger(kafka_broker.bootstrap, topic).load() == {}
    assert await KafkaLedger(kafka_broker.bootstrap, f"never-{uuid.uuid4().hex}").load() == {}
