"""Session-wide fixtures: the real Kafka broker and the real Alertmanager, shared by every test
that needs them.

Each test that uses the broker takes unique topic names and a unique consumer group
(:func:`unique`), so tests never see each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.localbroker import LocalBroker
from rollback.sinks.alertmanager_local import LocalAlertmanager


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


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (Debian's prometheus-alertmanager); its base URL. Fails
    loudly when the binary is missing, never skips."""
    am = LocalAlertmanager(Path(tmp_path_factory.mktemp("alertmanager")))
    am.start(timeout=60)
    try:
        yield am.url
    finally:
        am.stop()
