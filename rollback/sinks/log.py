"""The ``log`` sink: writes each alert as one structured log line. Always available."""

from __future__ import annotations

import json
import logging

from rollback.sinks.base import Alert

log = logging.getLogger("canary_sentinel.alerts")


class LogSink:
    type_name = "log"

    def __init__(self, name: str = "log") -> None:
        self.name = name
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)
        log.warning(
            "ALERT %s %s",
            alert.event.value,
            json.dumps(
                {
                    "dedup_key": alert.dedup_key,
                    "severity": alert.severity.value,
                    "summary": alert.summary,
                    "action": alert.decision.action.value,
                    "outcome": alert.outcome.to_record() if alert.outcome else None,
                    "links": [href for _, href in alert.links],
                },
                sort_keys=True,
            ),
        )
