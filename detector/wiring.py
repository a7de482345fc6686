"""Builds what the live service does with decisions, from the configuration: the rollback
dispatcher (targets, guardrails, the action ledger on the decisions topic) and the alert router.

Who calls this: :func:`detector.app.create_app`. What it promises: a decision that acts goes to
the dispatcher, which applies the guardrails, records the attempt in the ledger, acts, records
the outcome and hands decision and outcome to the alert router; a decision that only resolves
(``recovered``) goes to the router alone. Nothing here blocks the stream: the service submits
decisions through :class:`detector.actions.ActionRunner`.
"""

from __future__ import annotations

import logging
from typing import Any

from config.schema import SentinelConfig
from detector.core.types import Action, Decision
from rollback.alerting import AlertRouter, build_router
from rollback.dispatch import Dispatcher, RetryPolicy
from rollback.guardrails import Limits, emergency_switch_on
from rollback.ledger import KafkaLedger, Ledger
from rollback.targets.registry import resolver_from_config, shared_kube_client

log = logging.getLogger("canary_sentinel.actions")


def bootstrap_servers(broker: str) -> str:
    """faust's ``kafka://a:1;kafka://b:2`` as a client's ``a:1,b:2``.

    >>> bootstrap_servers("kafka://a:1;kafka://b:2")
    'a:1,b:2'
    """
    hosts = [h.strip().split("://", 1)[-1] for h in broker.split(";") if h.strip()]
    return ",".join(hosts)


class Actions:
    """The dispatcher and the alert router, started and stopped together."""

    def __init__(
        self, config: SentinelConfig, router: AlertRouter, dispatcher: Dispatcher, ledger: Ledger
    ) -> None:
        self.config = config
        self.router = router
        self.dispatcher = dispatcher
        self.ledger = ledger

    async def start(self) -> None:
        start = getattr(self.ledger, "start", None)
        if start is not None:
            await start()
        await self.dispatcher.start()
        await self.router.start()

    async def stop(self) -> None:
        await self.router.stop()
        stop = getattr(self.ledger, "stop", None)
        if stop is not None:
            await stop()

    def health(self) -> dict[str, Any]:
        return {"alerts": self.router.health(), "actions_remembered": len(self.dispatcher.history)}

    async def handle(self, decision: Decision) -> None:
        if decision.action is Action.NONE:
            await self.router.notify(decision, None)
            return
        outcome = await self.dispatcher.handle(decision)
        if outcome is not None:
            log.warning("ROLLBACK %s: %s %s", decision.rollout_key, outcome.status, outcome.detail)


def build_actions(config: SentinelConfig, ledger: Ledger | None = None) -> Actions:
    router = build_router(config)
    rb = config.rollback
    ledger = ledger or KafkaLedger(
        bootstrap_servers(config.kafka.broker), config.kafka.decisions_topic
    )
    dispatcher = Dispatcher(
        resolve=resolver_from_config(config, shared_kube_client(rb.kube)),
        ledger=ledger,
        notify=router.notify,
        limits=Limits.from_settings(rb.guardrails),
        retry=RetryPolicy.from_settings(rb.retry),
        emergency=lambda: emergency_switch_on(rb.guardrails),
    )
    return Actions(config, router, dispatcher, ledger)
