"""The ``argo-rollout`` target: abort or pause an Argo Rollouts ``Rollout`` through the API
server, with the same requests ``kubectl argo rollouts abort|pause`` sends.

Who calls this: :class:`rollback.dispatch.Dispatcher` (``stop``), wrapped in
:class:`rollback.targets.dry_run.DryRunTarget` when the service is in dry-run (``plan``).
What it promises (see ``base.py`` for the contract):

- ``abort``: JSON merge patch ``{"status":{"abort":true}}`` on ``…/rollouts/{name}/status``;
  on 404 the same patch on ``…/rollouts/{name}`` (controllers older than v0.10 had no status
  subresource). ``done`` only when the object the server returns has ``status.abort: true``.
- ``pause``: JSON merge patch ``{"spec":{"paused":true}}`` on ``…/rollouts/{name}``; ``done``
  only when the answer has ``spec.paused: true``.
- Custom resources reject strategic merge patches (415), so only merge patches are sent.
"""

from __future__ import annotations

import logging
from typing import Any

from rollback.kube.client import MERGE_PATCH, KubeClient
from rollback.kube.errors import KubeConnectionError, KubeError, NotFound, Unauthorized
from rollback.targets._kube import CallLog, check_supported, failed
from rollback.targets.base import ActionOutcome, ActionRequest, OutcomeStatus, RollbackFailed

log = logging.getLogger(__name__)

GROUP_VERSION = "argoproj.io/v1alpha1"
ACTIONS = ("abort", "pause")


def rollout_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP_VERSION}/namespaces/{namespace}/rollouts/{name}"


class ArgoRolloutTarget:
    """Stops an Argo Rollout of the service's name in the service's namespace."""

    type_name = "argo-rollout"

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    async def plan(self, request: ActionRequest) -> tuple[dict[str, Any], ...]:
        """The requests :meth:`stop` would send, without sending any (no reads are needed)."""
        check_supported(request.action, ACTIONS, self.type_name)
        calls = CallLog(self.kube, send=False)
        await self._send(calls, request)
        return tuple(calls.requests)

    async def stop(self, request: ActionRequest) -> ActionOutcome:
        check_supported(request.action, ACTIONS, self.type_name)
        calls = CallLog(self.kube, send=True)
        subject = f"argo rollout {request.rollout.namespace}/{request.rollout.name}"
        try:
            obj = await self._send(calls, request)
        except KubeError as err:
            raise failed(err, subject) from err
        assert obj is not None  # sent for real, so the server answered with the object
        if request.action == "abort":
            if (obj.get("status") or {}).get("abort") is not True:
                raise RollbackFailed(
                    f"{subject}: the API server accepted the abort patch but status.abort is not "
                    "true (is the status subresource misconfigured?)"
                )
            detail = f"aborted {subject} (status.abort=true)"
        else:
            if (obj.get("spec") or {}).get("paused") is not True:
                raise RollbackFailed(f"{subject}: pause accepted but spec.paused is not true")
            detail = f"paused {subject} (spec.paused=true)"
        return ActionOutcome(
            status=OutcomeStatus.DONE, detail=detail, requests=tuple(calls.requests)
        )

    async def _send(self, calls: CallLog, request: ActionRequest) -> dict[str, Any] | None:
        path = rollout_path(request.rollout.namespace, request.rollout.name)
        if request.action == "pause":
            return await calls.patch(path, {"spec": {"paused": True}}, content_type=MERGE_PATCH)
        body = {"status": {"abort": True}}
        try:
            return await calls.patch(f"{path}/status", body, content_type=MERGE_PATCH)
        except NotFound:
            # Both 404: the rollout does not exist (or the CRD is not installed).
            return await calls.patch(path, body, content_type=MERGE_PATCH)

    async def check(self) -> None:
        """Fails when the credentials are rejected or the Rollout API is not served; an
        unreachable API server is only logged (it may come back before the first action)."""
        try:
            await self.kube.get(f"/apis/{GROUP_VERSION}")
        except Unauthorized as err:
            raise failed(err, "argo-rollout target") from err
        except NotFound as err:
            raise RollbackFailed(
                f"argo-rollout target: the API server does not serve {GROUP_VERSION} "
                "(is Argo Rollouts installed?)"
            ) from err
        except KubeConnectionError as err:
            log.warning("argo-rollout target: API server not reachable at start: %s", err)
        except KubeError as err:
            raise failed(err, "argo-rollout target") from err
