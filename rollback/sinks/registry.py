"""The sink registry: YAML ``type:`` to the code that builds the sink.

Called by :func:`rollback.alerting.build_router`. Every ``type`` the configuration schema accepts
(``config.alerting.SinkSettings``) has an entry here; ``tests/contract/test_alert_sinks.py``
checks that the two lists agree, so a new sink cannot be configured without being buildable.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from config.alerting import (
    AlertmanagerSinkSettings,
    ClientTLS,
    LogSinkSettings,
    PagerDutySinkSettings,
)
from rollback.kube.auth import BearerToken
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


def tls_context(tls: ClientTLS, sink: str) -> ssl.SSLContext:
    """The client TLS context of ``tls``; a file that cannot be loaded is a :class:`ValueError`
    naming the sink and the file."""
    try:
        ctx = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls.ca_file is not None else None
        )
        if tls.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"alerting sink {sink!r}: cannot load its TLS files: {exc}") from None
    return ctx


def _alertmanager(s: Any, deps: SinkDeps) -> AlertSink:
    assert isinstance(s, AlertmanagerSinkSettings)
    auth: httpx.Auth | None = None
    # secrets are read now (SecretError names the source, never the value), not at the first
    # alert
    if s.basic_auth is not None:
        password = s.basic_auth.password.read().get_secret_value()
        auth = httpx.BasicAuth(s.basic_auth.username, password)
    elif s.bearer_token is not None:
        auth = BearerToken(s.bearer_token.read().get_secret_value())
    return AlertmanagerSink(
        s.url,
        name=s.name,
        client=deps.client,
        timeout=s.timeout_seconds,
        resend_interval=s.resend_interval_seconds,
        labels=s.labels,
        clock=deps.clock,
        auth=auth,
        verify=tls_context(s.tls, s.name) if s.tls is not None else None,
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
