"""The ``deployment`` target: pause or undo an apps/v1 ``Deployment`` exactly as
``kubectl rollout pause`` / ``kubectl rollout undo`` do (kubectl's ``objectpauser.go`` and
``rollback.go``; undo is entirely client-side, apps/v1 has no rollback subresource).

Who calls this: :class:`rollback.dispatch.Dispatcher` (``stop``), and
:class:`rollback.targets.dry_run.DryRunTarget` (``plan``: the same reads, no writes).
What it promises:

- ``pause``: GET; if ``spec.paused`` nothing is sent (``skipped``); otherwise a strategic merge
  patch ``{"spec":{"paused":true}}`` with ``?fieldManager=kubectl-rollout``.
- ``undo``: GET; LIST ReplicaSets by the Deployment's selector (paged), keep those it controls
  (controller ownerRef with its UID); take the second-highest ``deployment.kubernetes.io/revision``
  with kubectl's exact tie rules; ``skipped`` when that template already equals the current one
  (ignoring ``pod-template-hash``); else one JSON patch replacing ``/spec/template`` (hash label
  removed) and ``/metadata/annotations`` (the Deployment's own bookkeeping annotations plus every
  other annotation of the ReplicaSet). A paused Deployment is refused with kubectl's reason, or
  resumed first (``paused_deployment: resume``).
- ``done`` only when the server's answer carries the new state.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

from rollback.kube.client import JSON_PATCH, STRATEGIC_MERGE_PATCH, KubeClient
from rollback.kube.errors import KubeConnectionError, KubeError, Unauthorized
from rollback.targets._kube import CallLog, check_supported, failed
from rollback.targets.base import ActionOutcome, ActionRequest, OutcomeStatus, RollbackFailed

log = logging.getLogger(__name__)

ACTIONS = ("pause", "undo")
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
FIELD_MANAGER = {"fieldManager": "kubectl-rollout"}
# kubectl's annotationsToSkip: kept from the Deployment, never copied from the ReplicaSet.
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def selector_string(selector: dict[str, Any]) -> str:
    """A ``metav1.LabelSelector`` as the ``labelSelector`` query string, as
    ``LabelSelectorAsSelector(...).String()`` renders it (requirements sorted by key)."""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], sorted(e.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(vals)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(vals)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
        else:
            raise RollbackFailed(f"unsupported label selector operator {op!r}")
    return ",".join(r for _, r in sorted(reqs, key=lambda kr: kr[0]))


def revision_of(obj: dict[str, Any]) -> int | None:
    """kubectl's ``Revision()``: a missing annotation is 0, an unparseable one is skipped."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def is_controlled_by(rs: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    refs = (rs.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") is True and r.get("uid") == uid for r in refs)


def previous_replicaset(rss: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The second-newest ReplicaSet by revision, with kubectl's ``deploymentRevision`` loop
    (including how it treats equal revisions), or ``None`` without history."""
    latest: dict[str, Any] | None = None
    latest_rev = -1
    previous: dict[str, Any] | None = None
    previous_rev = -1
    for rs in rss:
        v = revision_of(rs)
        if v is None:
            continue
        if latest_rev < v:
            previous, previous_rev = latest, latest_rev
            latest, latest_rev = rs, v
        elif previous_rev < v:
            previous, previous_rev = rs, v
    return previous


def _normalise(value: Any) -> Any:
    """JSON form of a pod template for comparison: Go's semantic equality treats nil and empty
    slices and maps alike, and the API server omits either, so drop nulls and empty lists/maps."""
    if isinstance(value, dict):
        out = {k: _normalise(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def templates_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """kubectl's ``equalIgnoreHash``."""
    return bool(_normalise(without_hash(a)) == _normalise(without_hash(b)))


def undo_patch(deployment: dict[str, Any], rs: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch of ``kubectl rollout undo`` restoring ``rs``'s template."""
    dep_ann = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in dep_ann.items() if k in ANNOTATIONS_TO_SKIP}
    for k, v in ((rs.get("metadata") or {}).get("annotations") or {}).items():
        if k not in ANNOTATIONS_TO_SKIP:
            annotations[k] = v
    return [
        {"op": "replace", "path": "/spec/template", "value": without_hash(rs["spec"]["template"])},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


class DeploymentTarget:
    """Pauses or undoes a Deployment of the service's name in the service's namespace."""

    type_name = "deployment"

    def __init__(
        self, kube: KubeClient, *, paused_deployment: Literal["resume", "refuse"] = "refuse"
    ) -> None:
        self.kube = kube
        self.paused_deployment = paused_deployment

    async def plan(self, request: ActionRequest) -> tuple[dict[str, Any], ...]:
        """The requests :meth:`stop` would send: the reads are made, the writes only listed."""
        check_supported(request.action, ACTIONS, self.type_name)
        calls = CallLog(self.kube, send=False)
        await self._run(calls, request)
        return tuple(calls.requests)

    async def stop(self, request: ActionRequest) -> ActionOutcome:
        check_supported(request.action, ACTIONS, self.type_name)
        calls = CallLog(self.kube, send=True)
        status, detail = await self._run(calls, request)
        return ActionOutcome(status=status, detail=detail, requests=tuple(calls.requests))

    async def _run(self, calls: CallLog, request: ActionRequest) -> tuple[OutcomeStatus, str]:
        ns, name = request.rollout.namespace, request.rollout.name
        subject = f"deployment {ns}/{name}"
        try:
            if request.action == "pause":
                return await self._pause(calls, ns, name, subject)
            return await self._undo(calls, ns, name, subject)
        except KubeError as err:
            raise failed(err, subject) from err

    async def _pause(
        self, calls: CallLog, ns: str, name: str, subject: str
    ) -> tuple[OutcomeStatus, str]:
        path = deployment_path(ns, name)
        dep = await calls.get(path)
        if (dep.get("spec") or {}).get("paused") is True:
            return OutcomeStatus.SKIPPED, f"{subject} is already paused"
        body = {"spec": {"paused": True}}
        obj = await calls.patch(
            path, body, content_type=STRATEGIC_MERGE_PATCH, params=FIELD_MANAGER
        )
        if obj is not None and (obj.get("spec") or {}).get("paused") is not True:
            raise RollbackFailed(f"{subject}: pause accepted but spec.paused is not true")
        return OutcomeStatus.DONE, f"paused {subject}"

    async def _undo(
        self, calls: CallLog, ns: str, name: str, subject: str
    ) -> tuple[OutcomeStatus, str]:
        path = deployment_path(ns, name)
        dep = await calls.get(path)
        selector = (dep.get("spec") or {}).get("selector") or {}
        rss = await calls.list_all(
            f"/apis/apps/v1/namespaces/{ns}/replicasets", label_selector=selector_string(selector)
        )
        target = previous_replicaset([rs for rs in rss if is_controlled_by(rs, dep)])
        if target is None:
            raise RollbackFailed(f"no rollout history found for {subject}")
        revision = revision_of(target)
        if (dep.get("spec") or {}).get("paused") is True:
            if self.paused_deployment == "refuse":
                raise RollbackFailed(
                    f"{subject} is paused: kubectl refuses to roll back a paused deployment; "
                    "resume it first (or set paused_deployment: resume for this service)"
                )
            await calls.patch(
                path,
                {"spec": {"paused": None}},
                content_type=STRATEGIC_MERGE_PATCH,
                params=FIELD_MANAGER,
            )
        if templates_equal(target["spec"]["template"], dep["spec"]["template"]):
            return (
                OutcomeStatus.SKIPPED,
                f"skipped rollback of {subject}: current template already matches revision "
                f"{revision}",
            )
        patch = undo_patch(dep, target)
        obj = await calls.patch(path, patch, content_type=JSON_PATCH)
        if obj is not None and not templates_equal(obj["spec"]["template"], patch[0]["value"]):
            raise RollbackFailed(f"{subject}: undo accepted but the template was not restored")
        return OutcomeStatus.DONE, f"rolled back {subject} to revision {revision}"

    async def check(self) -> None:
        """Fails when the credentials are rejected; an unreachable API server is only logged."""
        try:
            await self.kube.get("/apis/apps/v1")
        except Unauthorized as err:
            raise failed(err, "deployment target") from err
        except KubeConnectionError as err:
            log.warning("deployment target: API server not reachable at start: %s", err)
        except KubeError as err:
            raise failed(err, "deployment target") from err
