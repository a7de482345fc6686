"""The dispatcher: turns a decision into (at most) one guarded, audited, retried action.

Who calls this: the service, for every decision the core emits (``await dispatcher.handle(d)``),
after ``await dispatcher.start()`` has loaded the ledger. What it promises:

- ``action == none``: nothing. ``action == alert``: ``notify(decision, None)`` only.
- ``action == rollback``: guardrails (one action per revision, cooldown, hourly cap; refusals are
  recorded and notified as ``skipped``) -> ledger ``attempt`` record -> ``target.stop`` with
  retries on retryable failures (409, 429, 5xx, timeouts: capped exponential backoff with
  jitter; 403/404 and other permanent failures are not retried) -> ledger ``outcome`` record ->
  ``notify(decision, outcome)``. The emergency switch and ``mode: dry-run`` wrap the target in
  :class:`~rollback.targets.dry_run.DryRunTarget`, so the outcome lists the requests that
  would have been sent.
- A failed rollback is never reported as done: the outcome is ``failed``, its ``detail`` names
  the missing permission or object, the ledger says so, and ``notify(decision, outcome)`` gets
  it; the alert router turns a ``failed`` outcome into a *critical* "rollback failed" alert
  whatever the decision's own severity (``rollback/sinks/routing.py``). The decision itself is
  passed unchanged, so alerts and the decision record agree.
- The attempt is reserved in memory before the first ``await``, so two concurrent decisions for
  one revision cannot both act; a ledger outage is logged and does not stop the rollback (the
  in-memory history still prevents a repeat until restart).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from config.rollback import RetrySettings
from detector.core.types import Action, Decision
from rollback.guardrails import (
    Limits,
    Mode,
    PastAction,
    effective_mode,
    evaluate,
    history_from_ledger,
)
from rollback.kube.errors import TooManyRequests
from rollback.ledger import ACTION_RECORD, Ledger
from rollback.targets.base import (
    ActionOutcome,
    ActionRequest,
    OutcomeStatus,
    RollbackFailed,
    RollbackTarget,
    RolloutRef,
)
from rollback.targets.dry_run import DryRunTarget, PlanningTarget

log = logging.getLogger(__name__)

Notify = Callable[[Decision, ActionOutcome | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """What stops one service's rollout: the real target, the action, the configured mode."""

    target: RollbackTarget
    action: str
    mode: Mode


TargetResolver = Callable[[Decision], ServiceTarget]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter: try ``n`` (1-based) waits
    ``min(max_backoff, initial * 2**(n-1)) * (1 - jitter * u)`` with ``u`` uniform in [0, 1),
    or the server's ``Retry-After`` if longer (still capped)."""

    attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 10.0
    jitter: float = 0.5
    attempt_timeout: float = 60.0

    @classmethod
    def from_settings(cls, s: RetrySettings) -> RetryPolicy:
        return cls(
            s.attempts,
            s.initial_backoff_seconds,
            s.max_backoff_seconds,
            s.jitter,
            s.attempt_timeout_seconds,
        )

    def delay(self, attempt: int, u: float, retry_after: float | None = None) -> float:
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        wait = base * (1.0 - self.jitter * u)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff)


def _retry_after(exc: BaseException) -> float | None:
    cause = exc.__cause__
    return cause.retry_after if isinstance(cause, TooManyRequests) else None


class Dispatcher:
    """See the module docstring. ``emergency`` is called before every action (see
    :func:`rollback.guardrails.emergency_switch_on`); ``clock`` (wall time, for the guardrails
    and the ledger), ``sleep`` and ``rng`` are injectable so tests neither wait nor depend on
    chance."""

    def __init__(
        self,
        *,
        resolve: TargetResolver,
        ledger: Ledger,
        notify: Notify,
        limits: Limits,
        retry: RetryPolicy | None = None,
        emergency: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.resolve = resolve
        self.ledger = ledger
        self.notify = notify
        self.limits = limits
        self.retry = retry or RetryPolicy()
        self.emergency = emergency
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.history: list[PastAction] = []

    async def start(self) -> None:
        """Rebuild the action history from the ledger (call once, before ``handle``)."""
        self.history = history_from_ledger(await self.ledger.load())

    async def handle(self, decision: Decision) -> ActionOutcome | None:
        if decision.action == Action.NONE:
            return None
        if decision.action == Action.ALERT:
            await self._notify(decision, None)
            return None
        outcome = await self._rollback(decision)
        await self._notify(decision, outcome)
        return outcome

    async def _rollback(self, decision: Decision) -> ActionOutcome:
        key = decision.rollout_key
        base = {
            "record": ACTION_RECORD,
            "key": key,
            "namespace": decision.namespace,
            "service": decision.service,
            "revision": decision.revision,
            "decision_ts": decision.ts,
        }
        try:
            st = self.resolve(decision)
        except Exception as exc:  # a target that cannot be built is a failed rollback
            outcome = ActionOutcome(
                OutcomeStatus.FAILED, f"cannot build the rollback target: {exc}"
            )
            await self._append(
                key,
                {
                    **base,
                    "phase": "outcome",
                    "at": self.clock(),
                    **outcome.to_record(),
                    "attempts": 0,
                },
            )
            return outcome
        is_dry = isinstance(st.target, DryRunTarget)
        mode: Mode = "dry-run" if is_dry else effective_mode(st.mode, self.emergency())
        base |= {"target": st.target.type_name, "action": st.action, "mode": mode}
        now = self.clock()
        verdict = evaluate(key, decision.namespace, mode, now, self.history, self.limits)
        if not verdict.allowed:
            outcome = ActionOutcome(OutcomeStatus.SKIPPED, f"guardrail: {verdict.reason}")
            await self._append(key, {**base, "phase": "refused", "at": now, **outcome.to_record()})
            return outcome
        # Reserve before any await, so a concurrent decision for this revision is refused.
        self.history.append(PastAction(key, decision.namespace, now, mode))
        await self._append(key, {**base, "phase": "attempt", "at": now})

        target: RollbackTarget = st.target
        if mode == "dry-run" and not is_dry:
            planner = st.target if isinstance(st.target, PlanningTarget) else None
            target = DryRunTarget(inner=planner)
        request = ActionRequest(
            rollout=RolloutRef(decision.namespace, decision.service, decision.revision),
            action=st.action,
            reason=decision.reason,
        )
        outcome, attempts = await self._stop_with_retries(target, request)
        await self._append(
            key,
            {
                **base,
                "phase": "outcome",
                "at": self.clock(),
                **outcome.to_record(),
                "attempts": attempts,
            },
        )
        log.info("rollback %s %s: %s", key, outcome.status.value, outcome.detail)
        return outcome

    async def _stop_with_retries(
        self, target: RollbackTarget, request: ActionRequest
    ) -> tuple[ActionOutcome, int]:
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(policy.attempt_timeout):
                    outcome = await target.stop(request)
            except RollbackFailed as exc:
                failure, retryable, retry_after = exc.reason, exc.retryable, _retry_after(exc)
            except TimeoutError:
                failure, retryable, retry_after = (
                    f"no answer within {policy.attempt_timeout:g} s",
                    True,
                    None,
                )
            except Exception as exc:  # a bug in a target must not look like success
                log.exception("rollback target %s raised", target.type_name)
                failure = f"unexpected error in target {target.type_name}: {exc!r}"
                retryable, retry_after = False, None
            else:
                return outcome, attempt
            if not retryable or attempt >= policy.attempts:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                return ActionOutcome(OutcomeStatus.FAILED, f"{failure}{tries}"), attempt
            wait = policy.delay(attempt, self.rng(), retry_after)
            log.warning("rollback %s: %s; retrying in %.2f s", request.rollout.key, failure, wait)
            await self.sleep(wait)

    async def _append(self, key: str, record: dict[str, Any]) -> None:
        try:
            await self.ledger.append(key, record)
        except Exception:
            log.exception("could not write %s record for %s to the ledger", record["phase"], key)

    async def _notify(self, decision: Decision, outcome: ActionOutcome | None) -> None:
        try:
            await self.notify(decision, outcome)
        except Exception:
            log.exception("notifier failed for %s", decision.rollout_key)
