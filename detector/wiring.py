"""Builds what the live service does with decisions, from the configuration.

This first version hands rollback decisions to the dry-run target and every decision that
alerts to the log sink; the real targets and sinks plug in here through the same seams.
"""

from __future__ import annotations

import logging
from typing import Any

from config.schema import SentinelConfig
from detector.core.types import Action, Decision, Severity, Verdict
from rollback.sinks.base import Alert, AlertEvent
from rollback.sinks.log import LogSink
from rollback.targets.base import ActionOutcome, ActionRequest, RolloutRef
from rollback.targets.dry_run import DryRunTarget

log = logging.getLogger("canary_sentinel.actions")


class Actions:
    """Dry-run rollback plus log alerts."""

    def __init__(self, config: SentinelConfig) -> None:
        self.config = config
        self.target = DryRunTarget()
        self.sink = LogSink()

    async def start(self) -> None:
        await self.target.check()

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"rollback": "dry-run", "sinks": {"log": "up"}}

    async def handle(self, decision: Decision) -> None:
        outcome: ActionOutcome | None = None
        if decision.action is Action.ROLLBACK:
            ref = RolloutRef(decision.namespace, decision.service, decision.revision)
            outcome = await self.target.stop(ActionRequest(ref, "abort", decision.reason))
            log.warning("ROLLBACK %s: %s", ref.key, outcome.detail)
        if decision.action is not Action.NONE or decision.verdict is Verdict.RECOVERED:
            event = (
                AlertEvent.RESOLVE if decision.verdict is Verdict.RECOVERED else AlertEvent.TRIGGER
            )
            await self.sink.send(
                Alert(event, decision, Severity(decision.severity), decision.reason, outcome)
            )


def build_actions(config: SentinelConfig) -> Actions:
    return Actions(config)
