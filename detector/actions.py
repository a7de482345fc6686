"""What happens to a decision once it is made: the rollback dispatcher and the alert router.

Who calls this: the live service, for every decision (never ``replay``). What it promises:
``submit`` returns at once (a slow Kubernetes or PagerDuty never stalls the stream); each
decision is handled in its own task, in order per rollout; a task that fails is logged with the
decision's rollout key and counted, never swallowed silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from detector.core.types import Decision

log = logging.getLogger("canary_sentinel.actions")


class DecisionHandler(Protocol):
    async def handle(self, decision: Decision) -> Any: ...


class ActionRunner:
    """Runs ``handler.handle(decision)`` in background tasks, one chain per rollout key."""

    def __init__(self, handler: DecisionHandler | Callable[[Decision], Awaitable[Any]]) -> None:
        self._handle = handler.handle if hasattr(handler, "handle") else handler
        self._chains: dict[str, asyncio.Task[None]] = {}
        self.failures = 0
        self.handled = 0
        # set once the handler has started (the rollback ledger read, the alert outbox open);
        # decisions made before that wait for it instead of racing it
        self.ready = asyncio.Event()

    def submit(self, decision: Decision) -> None:
        key = decision.rollout_key
        prev = self._chains.get(key)
        self._chains[key] = asyncio.ensure_future(self._run(prev, decision))

    async def _run(self, prev: asyncio.Task[None] | None, decision: Decision) -> None:
        if prev is not None:
            await asyncio.gather(prev, return_exceptions=True)
        await self.ready.wait()
        try:
            await self._handle(decision)
            self.handled += 1
        except Exception:
            self.failures += 1
            log.exception("handling the decision for %s failed", decision.rollout_key)

    async def drain(self) -> None:
        """Wait for every submitted decision to be handled."""
        while self._chains:
            chains = list(self._chains.values())
            self._chains = {}
            await asyncio.gather(*chains, return_exceptions=True)
