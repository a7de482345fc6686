"""The rollback-target seam: whatever stops a rollout (Argo Rollout, Deployment, dry-run).

Contract, checked for every implementation by ``tests/contract/test_rollback_targets.py``:

- ``stop(request)`` performs the configured action on the rollout named by the request and
  returns an :class:`ActionOutcome`. It never reports ``done`` unless the API server accepted the
  change; a failure it cannot recover from raises :class:`RollbackFailed` with a reason a person
  can act on (the missing permission, the missing object).
- A target is stateless with respect to guardrails: one-action-per-revision, cooldowns and the
  emergency switch live in the dispatcher, not here.
- ``check()`` is the start-up probe (Flagger's ``IsOnline``): it raises ``RollbackFailed`` when
  the target can never work (no credentials, API server unreachable is *not* fatal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class OutcomeStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RolloutRef:
    """The object to act on: Kubernetes namespace and name, and the revision decided about."""

    namespace: str
    name: str
    revision: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.revision}"


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What the dispatcher asks a target to do. ``action`` is target-specific (``abort``,
    ``pause``, ``undo``), chosen per service in config."""

    rollout: RolloutRef
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What happened. ``requests`` lists the API calls made (or, in dry-run, that would have
    been made) as ``{"method", "path", "content_type", "body"}`` dicts, for the ledger."""

    status: OutcomeStatus
    detail: str
    requests: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_record(self) -> dict[str, Any]:
        return {"status": self.status.value, "detail": self.detail, "requests": list(self.requests)}


class RollbackFailed(Exception):
    """The action could not be done. ``retryable`` is False for 403/404-like causes."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class RollbackTarget(Protocol):
    """Stops a rollout. Implementations: ``argo_rollout``, ``deployment``, ``dry_run``, ``fake``."""

    type_name: str

    async def stop(self, request: ActionRequest) -> ActionOutcome: ...

    async def check(self) -> None: ...
