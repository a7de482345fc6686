"""The alert router: what the service calls after every decision, and the delivery behind it.

Who calls this: the detector service (``await router.notify(decision, outcome)`` after the
rollback dispatcher acted), and its health endpoint (``router.health()``). What it promises:

- ``notify`` decides which alerts the decision means for which sinks
  (:mod:`rollback.sinks.routing`), writes them to the durable :class:`~rollback.outbox.Outbox`
  and returns; it never waits for a sink. A background task per sink delivers in order, at
  least once.
- 400-like rejections are never retried: logged with the receiver's reason (never the request
  body) and counted. 429, 5xx and network errors are retried with jittered exponential backoff
  (``retry_initial_seconds`` doubling to ``retry_max_seconds``), for as long as it takes; the
  sink shows as down in :meth:`AlertRouter.health` and in ``canary_sentinel_alert_sink_up``.
- Entries still pending when the process stops (or dies) are delivered by the next router on the
  same outbox file.
- Sinks that want it (Alertmanager) get open alerts re-sent every ``resend_interval`` seconds
  while their queue is idle.

Time: ``clock`` (epoch seconds) and ``sleep`` are injectable so tests never wait for a backoff;
idle waits and re-send timers use the event loop's own clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY, CollectorRegistry

from config.alerting import AlertingSettings, PagerDutySinkSettings
from config.loader import ConfigError
from config.schema import SentinelConfig
from detector.core.types import Decision, Severity
from rollback.outbox import Entry, Outbox
from rollback.sinks.base import AlertEvent, AlertSink, DeliveryFailed
from rollback.sinks.limits import Clock, Sleep, backoff_delay
from rollback.sinks.metrics import AlertMetrics, SinkHealth
from rollback.sinks.registry import SinkDeps, make_sink
from rollback.sinks.routing import Route, ident_of, plan
from rollback.targets.base import ActionOutcome

log = logging.getLogger("canary_sentinel.alerts")


@dataclass
class _Worker:
    sink: AlertSink
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    attempt: int = 0
    next_resend: float = 0.0


class AlertRouter:
    """Routes decisions to sinks through the outbox. ``sinks`` maps delivery names (metrics
    label, health key) to sinks; ``routes`` maps service names to their :class:`Route`; a
    service without one uses every sink with the global minimum severity and links."""

    def __init__(
        self,
        settings: AlertingSettings | None = None,
        *,
        sinks: Mapping[str, AlertSink],
        outbox_path: str | Path | None = None,
        routes: Mapping[str, Route] | None = None,
        default_route: Route | None = None,
        sink_min_severity: Mapping[str, Severity] | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        registry: CollectorRegistry | None = None,
        owns_sinks: bool = False,
    ) -> None:
        self.settings = settings or AlertingSettings()
        self.outbox_path = Path(outbox_path or self.settings.outbox_path)
        self._sinks = dict(sinks)
        self._default_route = default_route or Route(
            sinks=tuple(self._sinks),
            min_severity=self.settings.min_severity,
            links=self.settings.links,
        )
        self._routes = dict(routes or {})
        for name, route in [("<default>", self._default_route), *self._routes.items()]:
            unknown = set(route.sinks) - set(self._sinks)
            if unknown:
                raise ValueError(f"route of {name!r} names unknown sinks {sorted(unknown)}")
        self._sink_min = dict(sink_min_severity or {})
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._metrics = AlertMetrics.for_registry(registry if registry is not None else REGISTRY)
        self._owns_sinks = owns_sinks
        self._outbox: Outbox | None = None
        self._workers = {name: _Worker(sink) for name, sink in self._sinks.items()}
        self._health = {name: SinkHealth(sink.type_name) for name, sink in self._sinks.items()}
        self._notify_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the outbox and start delivering (entries left by a previous run first)."""
        if self._outbox is not None:
            return
        self._outbox = await asyncio.to_thread(Outbox, self.outbox_path, clock=self._clock)
        ob = self._outbox
        await asyncio.to_thread(ob.prune, self._clock() - self.settings.retention_seconds)
        counts = await asyncio.to_thread(ob.pending_counts)
        orphans = {s: n for s, n in counts.items() if s not in self._sinks}
        if orphans:
            log.warning("alerts pending for sinks no longer configured (kept): %s", orphans)
        await self._refresh_pending()
        for name, w in self._workers.items():
            self._metrics.sink_up.labels(name).set(1)
            w.task = asyncio.create_task(self._run(name, w), name=f"alert-delivery:{name}")
        pending = sum(h.pending for h in self._health.values())
        log.info("alert router started: %d sinks, %d alerts pending", len(self._sinks), pending)

    async def stop(self) -> None:
        """Stop delivering now (pending entries stay in the outbox for the next start). Sinks the
        router built (:func:`build_router`) are closed: build a new router to start again."""
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in self._workers.values():
            w.task = None
        if self._owns_sinks:
            for sink in self._sinks.values():
                aclose = getattr(sink, "aclose", None)
                if aclose is not None:
                    await aclose()
        if self._outbox is not None:
            await asyncio.to_thread(self._outbox.close)
            self._outbox = None

    async def __aenter__(self) -> AlertRouter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the service's calls ---------------------------------------------------------------------

    def route_for(self, service: str) -> Route:
        return self._routes.get(service, self._default_route)

    async def notify(self, decision: Decision, outcome: ActionOutcome | None = None) -> None:
        """Queue the alerts ``decision`` (and the rollback ``outcome``) mean; returns once they
        are durably in the outbox, before any sink is called."""
        ob = self._require_outbox()
        async with self._notify_lock:  # plan against the open-alert book, then write: atomic
            opens = await asyncio.to_thread(
                ob.open_alerts, namespace=decision.namespace, service=decision.service
            )
            p = plan(
                decision,
                outcome,
                opens,
                self.route_for(decision.service),
                self._sink_min,
            )
            if p.empty:
                return
            await asyncio.to_thread(ob.write, p.entries, opened=p.opened, closed=p.closed)
        await self._refresh_pending()
        for sink_name, _ in p.entries:
            self._workers[sink_name].wake.set()

    def health(self) -> dict[str, Any]:
        """Per sink: up/down, pending, last error (never a secret), counts."""
        sinks = {name: h.to_dict() for name, h in self._health.items()}
        return {
            "status": "ok" if all(h.up for h in self._health.values()) else "degraded",
            "running": self._outbox is not None,
            "outbox": str(self.outbox_path),
            "pending": sum(h.pending for h in self._health.values()),
            "sinks": sinks,
        }

    async def drain(self, within: float) -> bool:
        """Wait (up to ``within`` seconds of event-loop time) until nothing is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while any(h.pending for h in self._health.values()):
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    # -- delivery --------------------------------------------------------------------------------

    def _require_outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("AlertRouter.start() has not been called")
        return self._outbox

    async def _refresh_pending(self) -> None:
        counts = await asyncio.to_thread(self._require_outbox().pending_counts)
        for name, h in self._health.items():
            h.pending = counts.get(name, 0)
            self._metrics.pending.labels(name).set(h.pending)
        self._changed.set()

    async def _run(self, name: str, w: _Worker) -> None:
        ob = self._require_outbox()
        loop = asyncio.get_running_loop()
        w.next_resend = loop.time() + (getattr(w.sink, "resend_interval", None) or 0.0)
        while True:
            try:
                w.wake.clear()  # before looking, so a notify during the look is not lost
                entry = await asyncio.to_thread(ob.next_pending, name)
                if entry is None:
                    await self._idle(name, w)
                    continue
                await self._deliver(name, w, ob, entry)
            except Exception:  # the outbox file, a bug: keep the worker alive and back off
                log.exception("alert delivery to sink %s hit an internal error", name)
                w.attempt += 1
                await self._sleep(self._delay(w.attempt, None))

    async def _deliver(self, name: str, w: _Worker, ob: Outbox, entry: Entry) -> None:
        h = self._health[name]
        h.last_attempt_at = self._clock()
        try:
            await w.sink.send(entry.alert)
        except DeliveryFailed as exc:
            failure: DeliveryFailed | None = exc
        except Exception as exc:  # a bug in a sink must not stop delivery for good
            failure = DeliveryFailed(f"{type(exc).__name__} in sink {name}", retryable=True)
            log.error("sink %s raised %s; will retry", name, type(exc).__name__)
        else:
            failure = None
        if failure is None:
            await asyncio.to_thread(ob.mark_delivered, entry.id)
            w.attempt = 0
            h.up, h.consecutive_failures, h.last_success_at = True, 0, self._clock()
            h.delivered += 1
            self._metrics.deliveries.labels(name, "delivered").inc()
            self._metrics.sink_up.labels(name).set(1)
            await self._refresh_pending()
            return
        h.last_error = failure.reason
        if not failure.retryable:
            log.error(
                "alert %s %s to sink %s rejected, not retried: %s",
                entry.alert.event.value,
                entry.alert.dedup_key,
                name,
                failure.reason,
            )
            await asyncio.to_thread(ob.mark_rejected, entry.id, failure.reason)
            if entry.alert.event is AlertEvent.TRIGGER:
                # a trigger the receiver refuses is not open there: do not resend or resolve it
                await asyncio.to_thread(ob.close_open, name, ident_of(entry.alert))
            w.attempt = 0
            h.rejected += 1
            self._metrics.deliveries.labels(name, "rejected").inc()
            await self._refresh_pending()
            return
        w.attempt += 1
        h.up = False
        h.consecutive_failures += 1
        self._metrics.deliveries.labels(name, "retried").inc()
        self._metrics.sink_up.labels(name).set(0)
        await asyncio.to_thread(ob.record_failure, entry.id, failure.reason)
        delay = self._delay(w.attempt, failure.retry_after)
        log.warning(
            "alert %s to sink %s failed (attempt %d), retrying in %.1f s: %s",
            entry.alert.dedup_key,
            name,
            w.attempt,
            delay,
            failure.reason,
        )
        await self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(
            attempt,
            initial=self.settings.retry_initial_seconds,
            cap=self.settings.retry_max_seconds,
            retry_after=retry_after,
            rand=self._rand,
        )

    async def _idle(self, name: str, w: _Worker) -> None:
        interval: float | None = getattr(w.sink, "resend_interval", None)
        if not interval:
            await w.wake.wait()
            return
        loop = asyncio.get_running_loop()
        remaining = w.next_resend - loop.time()
        if remaining > 0:
            try:
                await asyncio.wait_for(w.wake.wait(), remaining)
                return
            except TimeoutError:
                pass
        w.next_resend = loop.time() + interval
        await self.resend_open(name)

    async def resend_open(self, name: str) -> int:
        """Re-send every open alert of sink ``name`` (Alertmanager forgets alerts that are not
        re-sent); returns how many went out. Failures wait for the next round."""
        ob = self._require_outbox()
        w = self._workers[name]
        sent = 0
        for o in await asyncio.to_thread(ob.open_alerts, sink=name):
            try:
                await w.sink.send(o.alert)
            except Exception as exc:
                reason = exc.reason if isinstance(exc, DeliveryFailed) else type(exc).__name__
                log.warning("re-sending open alerts to sink %s failed: %s", name, reason)
                self._health[name].up = False
                self._health[name].last_error = reason
                self._metrics.sink_up.labels(name).set(0)
                break
            sent += 1
        return sent


def build_router(
    config: SentinelConfig,
    *,
    outbox_path: str | Path | None = None,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    registry: CollectorRegistry | None = None,
    client: httpx.AsyncClient | None = None,
) -> AlertRouter:
    """The router a configuration describes: its sinks (reading routing keys now, so a missing
    or malformed key fails the start, not the first page) and its per-service routes."""
    settings = config.alerting
    problems = settings.check_services(dict(config.services))
    if problems:
        raise ConfigError("alerting", problems)
    deps = SinkDeps(clock=clock, sleep=sleep, client=client)
    sinks: dict[str, AlertSink] = {}
    sink_min: dict[str, Severity] = {}
    for s in settings.sinks:
        sinks[s.name] = make_sink(s, deps)
        sink_min[s.name] = s.min_severity
    routes: dict[str, Route] = {}
    for svc_name, svc in config.services.items():
        al = getattr(svc, "alerting", None)
        if al is None:
            continue
        names: list[str] = []
        for s in settings.sinks:
            if al.sinks is not None and s.name not in al.sinks:
                continue
            if isinstance(s, PagerDutySinkSettings) and al.pagerduty_routing_key is not None:
                # this service pages its own team: a sink of its own with the service's key
                own = s.model_copy(
                    update={"routing_key": al.pagerduty_routing_key, "name": f"{s.name}:{svc_name}"}
                )
                sinks[own.name] = make_sink(own, deps)
                sink_min[own.name] = s.min_severity
                names.append(own.name)
            else:
                names.append(s.name)
        routes[svc_name] = Route(
            sinks=tuple(names),
            min_severity=al.min_severity or settings.min_severity,
            links=settings.links + al.links,
        )
    # services without their own routing use the configured sinks, not the per-service copies
    default = Route(tuple(s.name for s in settings.sinks), settings.min_severity, settings.links)
    return AlertRouter(
        settings,
        sinks=sinks,
        outbox_path=outbox_path,
        routes=routes,
        default_route=default,
        sink_min_severity=sink_min,
        clock=clock,
        sleep=sleep,
        rand=rand,
        registry=registry,
        owns_sinks=True,
    )
