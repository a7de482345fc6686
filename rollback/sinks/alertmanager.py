"""The ``alertmanager`` sink: Prometheus Alertmanager API v2 (``POST /api/v2/alerts``).

Called by the router's delivery task. It promises:

- an alert is identified by its labels, following Prometheus conventions: ``alertname``
  (``CanaryRegression``, ``CanaryAnomaly``, ``CanaryNoData``, ``CanaryRollbackFailed``),
  ``severity``, ``service``, ``namespace``, ``revision`` plus configured extra labels; the
  evidence goes into annotations (``summary``, ``description``, ``action``, ``dedup_key``,
  ``dashboard``), which Alertmanager overwrites on every send;
- a trigger is sent without ``endsAt`` (Alertmanager keeps it active for ``resolve_timeout``
  after each receipt; the router re-sends open alerts every ``resend_interval`` seconds);
- a resolve re-sends the same labels with ``endsAt`` = now, which ends the alert at once;
- ``change`` alerts mean nothing to Alertmanager and are accepted without a call;
- 400 raises a non-retryable :class:`DeliveryFailed`; 5xx and network errors a retryable one;
- basic auth or a bearer token goes with every call when configured (401 and 403 are not
  retried: the credentials will not mend themselves), over a TLS context of its own when the
  sink has a CA or a client certificate.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from rollback.sinks import render
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.sinks.limits import Clock

IDENTITY_LABELS = ("alertname", "severity", "service", "namespace", "revision")


def _rfc3339(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class AlertmanagerSink:
    """Posts alerts to one Alertmanager. ``resend_interval`` tells the router how often to
    re-send open alerts (``None``: never)."""

    type_name = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        name: str = "alertmanager",
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        resend_interval: float | None = 60.0,
        labels: dict[str, str] | None = None,
        clock: Clock = time.time,
        auth: httpx.Auth | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        """``auth`` goes with every call (basic auth, a bearer token); ``verify`` is the TLS
        context of an https URL with its own CA or client certificate, which needs a client of
        the sink's own (``client`` is then ignored)."""
        self.name = name
        self.url = url.rstrip("/")
        self.resend_interval = resend_interval
        self.extra_labels = dict(labels or {})
        self._clock = clock
        self._auth = auth
        if verify is not None:
            client = None
        self._own_client = client is None
        self._client = (
            client
            if client is not None
            else httpx.AsyncClient(timeout=timeout, verify=verify if verify is not None else True)
        )

    def __repr__(self) -> str:
        return f"AlertmanagerSink(name={self.name!r}, url={self.url!r})"

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def labels(self, alert: Alert) -> dict[str, str]:
        d = alert.decision
        return {
            **self.extra_labels,  # identity labels below win over configured extras
            "alertname": render.alertname(alert),
            "severity": alert.severity.value,
            "service": d.service,
            "namespace": d.namespace,
            "revision": d.revision,
        }

    def alert_body(self, alert: Alert) -> dict[str, Any]:
        """One element of the posted array."""
        d = alert.decision
        now = self._clock()
        started = min(d.decided_at if d.decided_at is not None else d.ts, now)
        lines = [d.reason] + [render.describe_signal(s) for s in d.signals]
        annotations = {
            "summary": render.clip(alert.summary),
            "description": render.clip("\n".join(lines), 4096),
            "action": render.action_text(d, alert.outcome),
            "dedup_key": alert.dedup_key,
        }
        if alert.links:
            annotations["dashboard"] = alert.links[0][1]
        body: dict[str, Any] = {
            "labels": self.labels(alert),
            "annotations": annotations,
            "startsAt": _rfc3339(started),
        }
        if alert.event is AlertEvent.RESOLVE:
            body["endsAt"] = _rfc3339(max(now, started))
        if alert.links:
            body["generatorURL"] = alert.links[0][1]
        return body

    async def send(self, alert: Alert) -> None:
        if alert.event is AlertEvent.CHANGE:
            return
        try:
            resp = await self._client.post(
                f"{self.url}/api/v2/alerts",
                json=[self.alert_body(alert)],
                headers={"Accept": "application/json"},
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(
                f"network error posting to {self.url}/api/v2/alerts: {type(exc).__name__}: {exc}",
                retryable=True,
            ) from None
        if 200 <= resp.status_code < 300:
            return
        code = resp.status_code
        raise DeliveryFailed(
            f"Alertmanager answered {code} to {alert.event.value} {alert.dedup_key}: "
            f"{(resp.text or resp.reason_phrase).strip()[:300]}",
            retryable=code >= 500 or code in (408, 429),
        )
