"""Session-wide fixtures: the real Kafka broker, shared by every integration test.

Each test that uses the broker takes unique topic names and a unique consumer group
(:func:`unique`), so tests never see each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from detector.localbroker import LocalBroker


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalBroker]:
    broker = LocalBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
