"""Builds what the live service does with decisions, from the configuration: the rollback
target (with its guardrails) and the alert router.

Who calls this: :func:`detector.app.create_app`. What it promises: every decision that acts
reaches the rollback seam first and the alert router after, with the outcome; a decision that
only resolves (``recovered``) goes to the router alone.
"""

from __future__ import annotations

import logging
from typing import Any

from config.schema import SentinelConfig
from detector.core.types import Action, Decision
from rollback.alerting import AlertRouter, build_router
from rollback.targets.base import ActionOutcome, ActionRequest, RolloutRef
from rollback.targets.dry_run import DryRunTarget

log = logging.getLogger("canary_sentinel.actions")


class Actions:
    """The rollback seam and the alert router, started and stopped together."""

    def __init__(self, config: SentinelConfig, router: AlertRouter) -> None:
        self.config = config
        self.router = router
        self.target = DryRunTarget()

    async def start(self) -> None:
        await self.target.check()
        await self.router.start()

    async def stop(self) -> None:
        await self.router.stop()

    def health(self) -> dict[str, Any]:
        return {"rollback": "dry-run", "alerts": self.router.health()}

    async def handle(self, decision: Decision) -> None:
        outcome: ActionOutcome | None = None
        if decision.action is Action.ROLLBACK:
            ref = RolloutRef(decision.namespace, decision.service, decision.revision)
            outcome = await self.target.stop(ActionRequest(ref, "abort", decision.reason))
            log.warning("ROLLBACK %s: %s", ref.key, outcome.detail)
        await self.router.notify(decision, outcome)


def build_actions(config: SentinelConfig) -> Actions:
    return Actions(config, build_router(config))
