"""An in-package fake rollback target for tests: records every request, can be told to fail.

Who calls this: tests of the dispatcher and of anything built on targets, and the shared target
contract suite. What it promises: the contract of ``base.py`` (``done`` only when it "accepted"
the action; failures are :class:`RollbackFailed` with the right ``retryable``), checked requests
(namespace, name, revision and reason must be non-empty; the action must be one a real target
supports), and no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from rollback.targets.base import ActionOutcome, ActionRequest, OutcomeStatus, RollbackFailed

FAKE_ACTIONS = ("abort", "pause", "undo")


class FakeTarget:
    """``existing``: the ``(namespace, name)`` pairs that exist (``None``: all do).
    ``failures``: raised one per call, in order, before succeeding (e.g. two retryable ones).
    ``always_fail``: raised on every call. ``calls`` records every ``stop`` request; ``stopped``
    maps ``(namespace, name)`` to the action applied."""

    type_name = "fake"

    def __init__(
        self,
        *,
        existing: Iterable[tuple[str, str]] | None = None,
        failures: Iterable[BaseException] = (),
        always_fail: BaseException | None = None,
        check_error: RollbackFailed | None = None,
    ) -> None:
        self.existing = None if existing is None else set(existing)
        self.failures: deque[BaseException] = deque(failures)
        self.always_fail = always_fail
        self.check_error = check_error
        self.calls: list[ActionRequest] = []
        self.planned: list[ActionRequest] = []
        self.stopped: dict[tuple[str, str], str] = {}

    def _validate(self, request: ActionRequest) -> None:
        r = request.rollout
        if not (r.namespace and r.name and r.revision and request.reason):
            raise AssertionError(f"incomplete action request: {request!r}")
        if request.action not in FAKE_ACTIONS:
            raise RollbackFailed(f"target fake cannot {request.action!r}")

    def _request(self, request: ActionRequest) -> dict[str, Any]:
        r = request.rollout
        return {
            "method": "PATCH",
            "path": f"fake://{r.namespace}/{r.name}",
            "content_type": "application/merge-patch+json",
            "body": {"action": request.action},
        }

    async def plan(self, request: ActionRequest) -> tuple[dict[str, Any], ...]:
        self._validate(request)
        self.planned.append(request)
        return (self._request(request),)

    async def stop(self, request: ActionRequest) -> ActionOutcome:
        self._validate(request)
        self.calls.append(request)
        if self.always_fail is not None:
            raise self.always_fail
        if self.failures:
            raise self.failures.popleft()
        r = request.rollout
        if self.existing is not None and (r.namespace, r.name) not in self.existing:
            raise RollbackFailed(f"fake rollout {r.namespace}/{r.name} not found")
        status = OutcomeStatus.DONE
        if self.stopped.get((r.namespace, r.name)) == request.action:
            status = OutcomeStatus.SKIPPED
        self.stopped[(r.namespace, r.name)] = request.action
        return ActionOutcome(
            status=status,
            detail=f"fake {request.action} of {r.namespace}/{r.name}",
            requests=(self._request(request),),
        )

    async def check(self) -> None:
        if self.check_error is not None:
            raise self.check_error
