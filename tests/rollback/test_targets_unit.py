"""Unit tests of the Kubernetes targets' pure parts and of the abort 404 fallback (against a
MockTransport that plays an API server without the status subresource)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rollback.kube.auth import KubeConnection
from rollback.kube.client import KubeClient
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.base import ActionRequest, OutcomeStatus, RollbackFailed, RolloutRef
from rollback.targets.deployment import (
    previous_replicaset,
    selector_string,
    templates_equal,
    undo_patch,
)
from rollback.targets.dry_run import DryRunTarget

BASE = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web"


def kube(handler: Any) -> KubeClient:
    return KubeClient(
        KubeConnection("https://k8s.test", True, None), transport=httpx.MockTransport(handler)
    )


def not_found() -> httpx.Response:
    return httpx.Response(404, json={"kind": "Status", "reason": "NotFound", "message": "nf"})


REQ = ActionRequest(RolloutRef("shop", "web", "7"), "abort", "regressed")


async def test_abort_falls_back_to_main_resource_on_404() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append((r.method, r.url.path, json.loads(r.content)))
        if r.url.path.endswith("/status"):
            return not_found()  # an old controller's CRD without the status subresource
        return httpx.Response(200, json={"status": {"abort": True}})

    async with kube(handler) as k:
        out = await ArgoRolloutTarget(k).stop(REQ)
    assert out.status == OutcomeStatus.DONE
    body = {"status": {"abort": True}}
    assert seen == [("PATCH", f"{BASE}/status", body), ("PATCH", BASE, body)]
    assert [r["path"] for r in out.requests] == [f"{BASE}/status", BASE]


async def test_abort_404_on_both_is_not_found() -> None:
    async with kube(lambda r: not_found()) as k:
        with pytest.raises(RollbackFailed, match="argo rollout shop/web not found") as info:
            await ArgoRolloutTarget(k).stop(REQ)
    assert not info.value.retryable


async def test_abort_accepted_but_not_applied_is_not_done() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path.endswith("/status"):
            return not_found()
        return httpx.Response(200, json={"status": {}})  # server dropped `status`

    async with kube(handler) as k:
        with pytest.raises(RollbackFailed, match=r"status\.abort is not true"):
            await ArgoRolloutTarget(k).stop(REQ)


async def test_dry_run_of_abort_sends_nothing() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise AssertionError("dry-run sent a request")

    async with kube(handler) as k:
        out = await DryRunTarget(inner=ArgoRolloutTarget(k)).stop(REQ)
    assert out.status == OutcomeStatus.DRY_RUN
    assert out.requests == (
        {
            "method": "PATCH",
            "path": f"{BASE}/status",
            "content_type": "application/merge-patch+json",
            "body": {"status": {"abort": True}},
        },
    )


def test_selector_string() -> None:
    sel = {
        "matchLabels": {"tier": "web", "app": "shop"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "zz", "operator": "DoesNotExist"},
            {"key": "b", "operator": "Exists"},
            {"key": "c", "operator": "NotIn", "values": ["x"]},
        ],
    }
    assert selector_string(sel) == "app=shop,b,c notin (x),env in (canary,prod),tier=web,!zz"
    with pytest.raises(RollbackFailed):
        selector_string({"matchExpressions": [{"key": "a", "operator": "Gt"}]})


def rs(rev: str | None, name: str) -> dict[str, Any]:
    ann = {} if rev is None else {"deployment.kubernetes.io/revision": rev}
    return {"metadata": {"name": name, "annotations": ann}}


@pytest.mark.parametrize(
    ("revs", "expected"),
    [
        ([("1", "a"), ("2", "b")], "a"),
        ([("2", "b"), ("1", "a")], "a"),
        ([("3", "c"), ("1", "a"), ("2", "b")], "b"),
        ([("1", "a")], None),
        ([(None, "zero"), ("1", "a")], "zero"),  # a missing annotation is revision 0
        ([("x", "bad"), ("1", "a"), ("2", "b")], "a"),  # unparseable: skipped
        ([("2", "b"), ("2", "b2")], "b2"),  # kubectl's loop: equal revisions fill "previous"
    ],
)
def test_previous_replicaset_follows_kubectl(
    revs: list[tuple[str | None, str]], expected: str | None
) -> None:
    got = previous_replicaset([rs(r, n) for r, n in revs])
    assert (got["metadata"]["name"] if got else None) == expected


def test_templates_equal_ignores_hash_and_empty_values() -> None:
    a = {"metadata": {"labels": {"app": "x", "pod-template-hash": "1"}}, "spec": {"containers": []}}
    b = {"metadata": {"labels": {"app": "x"}, "annotations": {}}, "spec": {}}
    assert templates_equal(a, b)
    assert not templates_equal(a, {"metadata": {"labels": {"app": "y"}}})


def test_undo_patch_annotations_like_kubectl() -> None:
    dep = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "5",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "team": "dropped",
            }
        }
    }
    r: dict[str, Any] = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "deployment.kubernetes.io/desired-replicas": "2",
                "kubernetes.io/change-cause": "v3",
            }
        },
        "spec": {"template": {"metadata": {"labels": {"a": "b", "pod-template-hash": "h"}}}},
    }
    patch = undo_patch(dep, r)
    assert patch == [
        {"op": "replace", "path": "/spec/template", "value": {"metadata": {"labels": {"a": "b"}}}},
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": {
                "deployment.kubernetes.io/revision": "5",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kubernetes.io/change-cause": "v3",
            },
        },
    ]
    assert "pod-template-hash" in r["spec"]["template"]["metadata"]["labels"]  # not mutated
