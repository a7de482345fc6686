"""faust's Kafka transport, with the broker's wait for data on a fetch cut from 1.5 s to 0.1 s.

Who calls this: :func:`detector.app.create_app` builds its app as :class:`SentinelApp`. Why:
faust-streaming 0.15 creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` (fixed, no
setting), and aiokafka keeps one fetch request in flight per broker. A request that covers only
quiet partitions (the logs topic, say, while metrics pour in) is held by the broker for the whole
wait, and the busy partitions cannot be fetched again until it returns: the worker sat idle for
about half of a measured run of batched records (``benchmarks/throughput.py --batch 32``:
13,600 samples/s at 1.5 s, 21,000-25,500 at 0.02-0.1 s). An idle worker now asks the broker
ten times a second instead of less than once, which costs a broker nothing worth counting.
"""

from __future__ import annotations

from typing import Any, ClassVar

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as driver

#: How long the broker may hold a fetch for data to arrive (Kafka's ``fetch.max.wait.ms``).
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its fetcher (aiokafka 0.14)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer: ClassVar[Any] = _Consumer


class SentinelApp(faust.App):
    """A faust app whose consumer uses :data:`FETCH_MAX_WAIT_MS` (``kafka://`` brokers only)."""

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme not in ("kafka", "aiokafka"):
            return super()._new_transport()
        return _Transport(self.conf.broker_consumer, self)
