"""The ``pagerduty`` sink: PagerDuty Events API v2 alert events, plus Change Events.

Called by the router's delivery task (never by the decision path directly). It promises:

- ``trigger`` and ``resolve`` go to ``/v2/enqueue`` with ``alert.dedup_key``, so a re-sent trigger
  (after a crash, a retry) folds into the open incident;
- ``change`` alerts (a rollback action, a recovery) go to ``/v2/change/enqueue`` so the incident
  timeline shows what canary-sentinel did;
- 400 (and other client errors) raise a non-retryable :class:`DeliveryFailed` with PagerDuty's
  reason; 408/429/5xx and network errors a retryable one;
- the routing key travels only in request bodies: it is never logged, never put in an
  exception, and ``repr`` hides it (``SecretStr``). Request bodies are never logged either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from config.alerting import RoutingKeyError, RoutingKeySource
from rollback.sinks import render
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.sinks.limits import RateLimiter, redact

log = logging.getLogger("canary_sentinel.alerts.pagerduty")

DEFAULT_BASE_URL = "https://events.pagerduty.com"
MAX_PAYLOAD_BYTES = 512 * 1024
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})

KeyProvider = Callable[[], SecretStr]


def key_provider(source: RoutingKeySource) -> KeyProvider:
    """Read the key now (raising :class:`RoutingKeyError` if it is missing or malformed) and
    return a provider. A file source is re-read when its modification time changes (a rotated
    Kubernetes Secret); a bad new file keeps the last good key and logs where, not what."""
    key = source.read()
    if source.file is None:
        return lambda: key
    path: Path = source.file
    state: dict[str, Any] = {"key": key, "mtime": _mtime(path)}

    def provide() -> SecretStr:
        m = _mtime(path)
        if m != state["mtime"]:
            state["mtime"] = m
            try:
                state["key"] = source.read()
                log.info("re-read the PagerDuty routing key from %s", source.describe())
            except RoutingKeyError as exc:
                log.error("%s; keeping the previous key", exc)
        current: SecretStr = state["key"]
        return current

    return provide


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


class PagerDutySink:
    """Sends alerts to one PagerDuty routing key. ``limiter`` should be shared with every other
    sink of the same key (:func:`rollback.alerting.build_router` does that; the default is a
    limiter of its own at 100 calls a minute); ``client`` may be shared too (the sink closes it
    only if it made it)."""

    type_name = "pagerduty"

    def __init__(
        self,
        *,
        routing_key: SecretStr | KeyProvider,
        name: str = "pagerduty",
        base_url: str = DEFAULT_BASE_URL,
        limiter: RateLimiter | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        change_events: bool = True,
        source: str | None = None,
        client_url: str | None = None,
    ) -> None:
        if isinstance(routing_key, SecretStr):
            fixed = routing_key
            self._key: KeyProvider = lambda: fixed
        else:
            self._key = routing_key
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.change_events = change_events
        self.source = source
        self.client_url = client_url
        # PagerDuty drops calls over ~120/min per key: never send without a limiter
        self._limiter = limiter or RateLimiter(100, 60.0, clock=time.time, sleep=asyncio.sleep)
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return (
            f"PagerDutySink(name={self.name!r}, base_url={self.base_url!r}, "
            f"routing_key={SecretStr('x' * 32)!r})"
        )

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # -- bodies (without the routing key, which is added at the last moment) ------------------

    def event_body(self, alert: Alert) -> dict[str, Any]:
        """The ``/v2/enqueue`` body for a trigger or resolve, minus ``routing_key``."""
        if alert.event is AlertEvent.RESOLVE:
            return {"event_action": "resolve", "dedup_key": alert.dedup_key}
        d = alert.decision
        body: dict[str, Any] = {
            "event_action": "trigger",
            "dedup_key": alert.dedup_key,
            "payload": {
                "summary": render.clip(alert.summary),
                "source": self.source or f"{d.namespace}/{d.service}",
                "severity": alert.severity.value,
                "timestamp": _iso(d.decided_at if d.decided_at is not None else d.ts),
                "component": d.service,
                "group": d.namespace,
                "class": "rollback_failed" if alert.rollback_failed else d.verdict.value,
                "custom_details": render.evidence(alert),
            },
            "client": "canary-sentinel",
            "links": [{"href": href, "text": text} for text, href in alert.links],
        }
        if self.client_url:
            body["client_url"] = self.client_url
        return body

    def change_body(self, alert: Alert) -> dict[str, Any]:
        """The ``/v2/change/enqueue`` body, minus ``routing_key``."""
        d = alert.decision
        return {
            "payload": {
                "summary": render.clip(alert.summary),
                "source": self.source or f"{d.namespace}/{d.service}",
                "timestamp": _iso(d.decided_at if d.decided_at is not None else d.ts),
                "custom_details": render.evidence(alert),
            },
            "links": [{"href": href, "text": text} for text, href in alert.links],
        }

    # -- delivery --------------------------------------------------------------------------------

    async def send(self, alert: Alert) -> None:
        if alert.event is AlertEvent.CHANGE:
            if not self.change_events:
                return
            path, body = "/v2/change/enqueue", self.change_body(alert)
        else:
            path, body = "/v2/enqueue", self.event_body(alert)
        key = self._key().get_secret_value()
        data = _encode({"routing_key": key, **body})
        if len(data) > MAX_PAYLOAD_BYTES:
            data = _encode({"routing_key": key, **_shrunk(body)})
            if len(data) > MAX_PAYLOAD_BYTES:
                raise DeliveryFailed(
                    f"event for {alert.dedup_key} is larger than PagerDuty's 512 KB limit",
                    retryable=False,
                )
        await self._limiter.acquire()
        try:
            resp = await self._client.post(
                self.base_url + path,
                content=data,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            # ``from None``: the httpx exception references the request, whose body has the key
            raise DeliveryFailed(
                f"network error posting to {self.base_url}{path}: {type(exc).__name__}: "
                f"{redact(str(exc), key)}",
                retryable=True,
            ) from None
        if 200 <= resp.status_code < 300:
            return
        reason = redact(_reason(resp), key)
        code = resp.status_code
        retryable = code >= 500 or code in RETRYABLE_CLIENT_ERRORS
        raise DeliveryFailed(
            f"PagerDuty answered {code} to {alert.event.value} {alert.dedup_key}: {reason}",
            retryable=retryable,
            retry_after=_retry_after(resp) if retryable else None,
        )


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _shrunk(body: dict[str, Any]) -> dict[str, Any]:
    """The same event with the bulky evidence dropped (still says what and where)."""
    payload = dict(body.get("payload", {}))
    details = dict(payload.get("custom_details", {}))
    details.pop("signals", None)
    details.pop("outcome", None)
    details["truncated"] = "evidence dropped to fit PagerDuty's 512 KB limit"
    payload["custom_details"] = details
    return {**body, "payload": payload}


def _reason(resp: httpx.Response) -> str:
    """PagerDuty's own words (``message`` and ``errors``), never the request body."""
    try:
        data = resp.json()
    except ValueError:
        return (resp.text or resp.reason_phrase)[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = [str(data.get("message") or data.get("status") or resp.reason_phrase)]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:5]))
    return ": ".join(parts)[:500]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
