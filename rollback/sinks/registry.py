"""The sink registry: YAML ``type:`` to the code that builds the sink.

Called by :func:`rollback.alerting.build_router`. Every ``type`` the configuration schema accepts
(``config.alerting.SinkSettings``) has an entry here; ``tests/contract/test_alert_sinks.py``
checks that the two lists agree, so a new sink cannot be configured without being buildable.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from config.alerting import (
    AlertmanagerSinkSettings,
    LogSinkSettings,
    PagerDutySinkSettings,
)
from rollback.sinks.alertmanager import AlertmanagerSink
from rollback.sinks.base import AlertSink
from rollback.sinks.limits import Clock, RateLimiter, Sleep
from rollback.sinks.log import LogSink
from rollback.sinks.pagerduty import PagerDutySink, key_provider


@dataclass
class SinkDeps:
    """What sinks share: the clock and sleep (injectable for tests), an HTTP client (optional),
    and the rate limiters, one per PagerDuty routing key (keyed by a digest, never the key)."""

    clock: Clock = time.time
    sleep: Sleep = asyncio.sleep
    client: httpx.AsyncClient | None = None
    limiters: dict[str, RateLimiter] = field(default_factory=dict)

    def limiter_for(self, secret: str, max_calls: int) -> RateLimiter:
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        if digest not in self.limiters:
            self.limiters[digest] = RateLimiter(max_calls, 60.0, clock=self.clock, sleep=self.sleep)
        return self.limiters[digest]


def _log(s: Any, deps: SinkDeps) -> AlertSink:
    assert isinstance(s, LogSinkSettings)
    return LogSink(name=s.name)


def _pagerduty(s: Any, deps: SinkDeps) -> AlertSink:
    assert isinstance(s, PagerDutySinkSettings)
    provide = key_provider(s.routing_key)  # raises RoutingKeyError now, not at the first page
    return PagerDutySink(
        routing_key=provide,
        name=s.name,
        base_url=s.base_url,
        limiter=deps.limiter_for(provide().get_secret_value(), s.max_calls_per_minute),
        client=deps.client,
        timeout=s.timeout_seconds,
        change_events=s.change_events,
        source=s.source,
        client_url=s.client_url,
    )


def _alertmanager(s: Any, deps: SinkDeps) -> AlertSink:
    assert isinstance(s, AlertmanagerSinkSettings)
    return AlertmanagerSink(
        s.url,
        name=s.name,
        client=deps.client,
        timeout=s.timeout_seconds,
        resend_interval=s.resend_interval_seconds,
        labels=s.labels,
        clock=deps.clock,
    )


SINK_TYPES: dict[str, Callable[[Any, SinkDeps], AlertSink]] = {
    "log": _log,
    "pagerduty": _pagerduty,
    "alertmanager": _alertmanager,
}


def make_sink(settings: Any, deps: SinkDeps) -> AlertSink:
    """Build the sink a ``SinkSettings`` describes (``KeyError`` for an unknown type, which the
    schema already refuses at load time)."""
    return SINK_TYPES[settings.type](settings, deps)
