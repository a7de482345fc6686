"""The ``dry-run`` target: records what it would have done and touches nothing.

Who calls this: :class:`rollback.dispatch.Dispatcher`, for services configured with
``type: dry-run`` or ``mode: dry-run``, and for every service while the emergency switch is on.
What it promises: ``stop`` never sends a write and never reports ``done``. When it wraps a real
target (``inner``), the outcome's ``requests`` are the exact requests the real target would have
sent (the inner target's ``plan``: reads are made, writes only listed), so an SRE can check the
dry-run before switching a service to ``enforce``. If planning fails (the object is missing, a
read is forbidden) the outcome is still ``dry_run``, and its ``detail`` says why the real action
would have failed.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from rollback.targets.base import ActionOutcome, ActionRequest, OutcomeStatus, RollbackFailed


@runtime_checkable
class PlanningTarget(Protocol):
    """A target that can list the requests it would send without sending the writes."""

    type_name: str

    async def plan(self, request: ActionRequest) -> tuple[dict[str, Any], ...]: ...


class DryRunTarget:
    """Never changes anything; every request is recorded in ``history`` (and, with ``inner``,
    the requests it would have sent in the outcome). The default target, and what the emergency
    switch turns every target into."""

    type_name = "dry-run"

    def __init__(self, inner: PlanningTarget | None = None) -> None:
        self.inner = inner
        self.history: list[ActionRequest] = []

    async def plan(self, request: ActionRequest) -> tuple[dict[str, Any], ...]:
        return () if self.inner is None else await self.inner.plan(request)

    async def stop(self, request: ActionRequest) -> ActionOutcome:
        self.history.append(request)
        what = f"would {request.action} {request.rollout.key}"
        if self.inner is None:
            return ActionOutcome(status=OutcomeStatus.DRY_RUN, detail=f"dry-run: {what}")
        what = f"would {request.action} {self.inner.type_name} {request.rollout.key}"
        try:
            requests = await self.inner.plan(request)
        except RollbackFailed as exc:
            return ActionOutcome(
                status=OutcomeStatus.DRY_RUN,
                detail=f"dry-run: {what}, but it would fail: {exc.reason}",
            )
        writes = sum(1 for r in requests if r.get("method") not in ("GET", None))
        return ActionOutcome(
            status=OutcomeStatus.DRY_RUN,
            detail=f"dry-run: {what} ({writes} write request(s) not sent)",
            requests=requests,
        )

    async def check(self) -> None:
        return None
