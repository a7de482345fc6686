"""Integration tests against a real kube-apiserver (built from source by tools/kube/build.sh):
the exact API effect of every action, kubectl as the oracle for Deployment pause/undo, RBAC
with the shipped manifest, the in-cluster service-account path and the kubeconfig path.
Faults (through the dispatcher) and the start-up check are in test_kube_faults.py."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback.kube.auth import in_cluster
from rollback.kube.client import KubeClient
from rollback.kube.errors import Conflict, Forbidden
from rollback.kube.exec_plugin import ExecPlugin
from rollback.kube.kubeconfig import from_kubeconfig
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.base import (
    ActionOutcome,
    ActionRequest,
    OutcomeStatus,
    RollbackFailed,
    RolloutRef,
)
from rollback.targets.deployment import DeploymentTarget
from rollback.targets.dry_run import DryRunTarget
from tests.kube_fixture import REPO, KubeAPIServer
from tests.rollback import objects

pytestmark = pytest.mark.integration

KUBECTL = "/usr/bin/kubectl"


def req(ns: str, name: str, action: str) -> ActionRequest:
    return ActionRequest(RolloutRef(ns, name, "7"), action, "canary regressed")


async def kubectl(server: KubeAPIServer, tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run the Debian kubectl against the test server as admin; (exit code, output)."""
    kc = server.write_kubeconfig(tmp_path / f"kubeconfig-{secrets.token_hex(3)}")
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kc), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


# --- Argo Rollouts ---------------------------------------------------------------------------


async def test_argo_abort_sets_status_abort_through_the_status_subresource(
    namespace: str, admin_kube: KubeClient
) -> None:
    await objects.create_rollout(admin_kube, namespace, "web")
    outcome = await ArgoRolloutTarget(admin_kube).stop(req(namespace, "web", "abort"))
    assert outcome.status == OutcomeStatus.DONE
    assert [(r["method"], r["path"], r["content_type"], r["body"]) for r in outcome.requests] == [
        (
            "PATCH",
            f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/web/status",
            "application/merge-patch+json",
            {"status": {"abort": True}},
        )
    ]
    ro = await objects.get_rollout(admin_kube, namespace, "web")
    assert ro["status"]["abort"] is True
    assert "paused" not in ro["spec"]  # abort does not touch the spec
    assert ro["metadata"]["generation"] == 1


async def test_abort_patch_on_main_resource_is_ignored_by_the_server(
    namespace: str, admin_kube: KubeClient
) -> None:
    """Why abort must go to /status: the CRD has a status subresource, so the server drops
    `status` from a patch of the main resource (and the target's post-check would catch it)."""
    await objects.create_rollout(admin_kube, namespace, "web")
    path = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/web"
    after = await admin_kube.patch(path, {"status": {"abort": True}})
    assert (after.get("status") or {}).get("abort") is not True


async def test_argo_pause_sets_spec_paused(namespace: str, admin_kube: KubeClient) -> None:
    await objects.create_rollout(admin_kube, namespace, "web")
    outcome = await ArgoRolloutTarget(admin_kube).stop(req(namespace, "web", "pause"))
    assert outcome.status == OutcomeStatus.DONE
    assert outcome.requests[0]["path"].endswith("/rollouts/web")
    ro = await objects.get_rollout(admin_kube, namespace, "web")
    assert ro["spec"]["paused"] is True
    assert (ro.get("status") or {}).get("abort") is not True


# --- Deployment, with kubectl as the oracle ---------------------------------------------------


async def test_deployment_undo_matches_kubectl_rollout_undo(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    # Two identical Deployments with the same selector: each one's ReplicaSets also match the
    # other's selector, so only the controller ownerRef tells them apart (as kubectl checks).
    labels = {"app": "shared"}
    await objects.create_deployment(admin_kube, namespace, "ours", labels=labels)
    await objects.create_deployment(admin_kube, namespace, "theirs", labels=labels)

    outcome = await DeploymentTarget(admin_kube).stop(req(namespace, "ours", "undo"))
    assert outcome.status == OutcomeStatus.DONE, outcome.detail
    assert outcome.detail == f"rolled back deployment {namespace}/ours to revision 1"
    code, out = await kubectl(kube_apiserver, tmp_path, "-n", namespace, "rollout", "undo",
                              "deployment/theirs")  # fmt: skip
    assert code == 0, out
    assert "rolled back" in out

    ours = await objects.get_deployment(admin_kube, namespace, "ours")
    theirs = await objects.get_deployment(admin_kube, namespace, "theirs")
    assert ours["spec"]["template"] == theirs["spec"]["template"]
    assert ours["metadata"]["annotations"] == theirs["metadata"]["annotations"]
    assert ours["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/web:1"
    assert "pod-template-hash" not in ours["spec"]["template"]["metadata"]["labels"]
    assert ours["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "2",
        "kubernetes.io/change-cause": "deploy web:1",
    }
    # The request is the one JSON patch kubectl sends.
    patch = [r for r in outcome.requests if r["method"] == "PATCH"]
    assert len(patch) == 1
    assert patch[0]["content_type"] == "application/json-patch+json"
    assert [op["path"] for op in patch[0]["body"]] == ["/spec/template", "/metadata/annotations"]


async def test_deployment_undo_skips_when_template_already_matches(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    await objects.create_deployment(admin_kube, namespace, "same", history=False)
    dep = await objects.get_deployment(admin_kube, namespace, "same")
    await objects.create_replicaset(admin_kube, namespace, dep, revision=1,
                                    image="registry.test/web:2", env="2", hash_="ccc333",
                                    change_cause="x")  # fmt: skip
    await objects.create_replicaset(admin_kube, namespace, dep, revision=2,
                                    image="registry.test/web:2", env="2", hash_="bbb222",
                                    change_cause="y")  # fmt: skip
    outcome = await DeploymentTarget(admin_kube).stop(req(namespace, "same", "undo"))
    assert outcome.status == OutcomeStatus.SKIPPED
    assert "current template already matches revision 1" in outcome.detail
    assert not [r for r in outcome.requests if r["method"] == "PATCH"]
    code, out = await kubectl(kube_apiserver, tmp_path, "-n", namespace, "rollout", "undo",
                              "deployment/same")  # fmt: skip
    assert code == 0, out
    assert "skipped rollback" in out


async def test_deployment_undo_without_history_fails_like_kubectl(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    await objects.create_deployment(admin_kube, namespace, "fresh", history=False)
    with pytest.raises(RollbackFailed, match="no rollout history found") as info:
        await DeploymentTarget(admin_kube).stop(req(namespace, "fresh", "undo"))
    assert not info.value.retryable
    code, out = await kubectl(kube_apiserver, tmp_path, "-n", namespace, "rollout", "undo",
                              "deployment/fresh")  # fmt: skip
    assert code != 0
    assert "no rollout history found" in out


async def test_deployment_pause_matches_kubectl_rollout_pause(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    await objects.create_deployment(admin_kube, namespace, "ours")
    await objects.create_deployment(admin_kube, namespace, "theirs")
    target = DeploymentTarget(admin_kube)
    outcome = await target.stop(req(namespace, "ours", "pause"))
    assert outcome.status == OutcomeStatus.DONE
    assert [(r["method"], r["content_type"], r["body"]) for r in outcome.requests] == [
        ("GET", None, None),
        ("PATCH", "application/strategic-merge-patch+json", {"spec": {"paused": True}}),
    ]
    assert outcome.requests[1]["path"].endswith("/deployments/ours?fieldManager=kubectl-rollout")
    code, out = await kubectl(kube_apiserver, tmp_path, "-n", namespace, "rollout", "pause",
                              "deployment/theirs")  # fmt: skip
    assert code == 0, out

    def pause_fields(d: dict[str, Any]) -> list[tuple[str, str, Any]]:
        return [
            (m["manager"], m["operation"], m.get("fieldsV1"))
            for m in d["metadata"]["managedFields"]
            if m["manager"] == "kubectl-rollout"
        ]

    ours = await objects.get_deployment(admin_kube, namespace, "ours")
    theirs = await objects.get_deployment(admin_kube, namespace, "theirs")
    assert ours["spec"]["paused"] is True
    assert theirs["spec"]["paused"] is True
    assert pause_fields(ours) == pause_fields(theirs) != []
    # Already paused: nothing is sent.
    again = await target.stop(req(namespace, "ours", "pause"))
    assert again.status == OutcomeStatus.SKIPPED
    assert [r["method"] for r in again.requests] == ["GET"]


async def test_paused_deployment_undo_refused_like_kubectl_or_resumed(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    await objects.create_deployment(admin_kube, namespace, "web", paused=True)
    with pytest.raises(RollbackFailed, match="is paused: kubectl refuses") as info:
        await DeploymentTarget(admin_kube).stop(req(namespace, "web", "undo"))
    assert not info.value.retryable
    code, out = await kubectl(kube_apiserver, tmp_path, "-n", namespace, "rollout", "undo",
                              "deployment/web")  # fmt: skip
    assert code != 0
    assert "cannot rollback a paused deployment" in out

    resumer = DeploymentTarget(admin_kube, paused_deployment="resume")
    outcome = await resumer.stop(req(namespace, "web", "undo"))
    assert outcome.status == OutcomeStatus.DONE
    patches = [r["body"] for r in outcome.requests if r["method"] == "PATCH"]
    assert patches[0] == {"spec": {"paused": None}}
    dep = await objects.get_deployment(admin_kube, namespace, "web")
    assert not dep["spec"].get("paused")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/web:1"


async def test_dry_run_of_undo_lists_the_patch_and_changes_nothing(
    namespace: str, admin_kube: KubeClient
) -> None:
    await objects.create_deployment(admin_kube, namespace, "web")
    before = await objects.get_deployment(admin_kube, namespace, "web")
    outcome = await DryRunTarget(inner=DeploymentTarget(admin_kube)).stop(
        req(namespace, "web", "undo")
    )
    assert outcome.status == OutcomeStatus.DRY_RUN
    after = await objects.get_deployment(admin_kube, namespace, "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The recorded patch is exactly what the enforced target then sends.
    enforced = await DeploymentTarget(admin_kube).stop(req(namespace, "web", "undo"))
    assert [r for r in outcome.requests if r["method"] == "PATCH"] == [
        r for r in enforced.requests if r["method"] == "PATCH"
    ]


async def test_list_all_pages_through_replicasets(namespace: str, admin_kube: KubeClient) -> None:
    await objects.create_deployment(admin_kube, namespace, "web")
    path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
    items = await admin_kube.list_all(path, label_selector="app=web", page_size=1)
    assert sorted(i["metadata"]["name"] for i in items) == ["web-aaa111", "web-bbb222"]


# --- RBAC, in-cluster auth, kubeconfig ---------------------------------------------------------


async def _service_account_dir(
    server: KubeAPIServer, admin: KubeClient, tmp_path: Path, sa_ns: str
) -> Path:
    """Create the manifest's ServiceAccount in ``sa_ns``, get it a token with the TokenRequest
    API, and lay out the pod's service-account directory."""
    docs = [d for d in yaml.safe_load_all((REPO / "rollback/manifests/rbac.yaml").read_text()) if d]
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    sa["metadata"]["namespace"] = sa_ns
    await admin.post("/api/v1/namespaces", {"metadata": {"name": sa_ns}})
    await admin.post(f"/api/v1/namespaces/{sa_ns}/serviceaccounts", sa)
    tr = await admin.post(
        f"/api/v1/namespaces/{sa_ns}/serviceaccounts/{sa['metadata']['name']}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 3600}},
    )  # fmt: skip
    d = tmp_path / "serviceaccount"
    d.mkdir()
    (d / "token").write_text(tr["status"]["token"])
    (d / "ca.crt").write_bytes(server.ca_file.read_bytes())
    (d / "namespace").write_text(sa_ns)
    return d


async def _apply_rbac(admin: KubeClient, target_ns: str, sa_ns: str) -> None:
    """Apply the shipped manifest: its ClusterRole, and its RoleBinding in ``target_ns``."""
    docs = [d for d in yaml.safe_load_all((REPO / "rollback/manifests/rbac.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "ClusterRole":
            # An earlier test may have created it (same content): 409 is fine.
            with contextlib.suppress(Conflict):
                await admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", doc)
        elif doc["kind"] == "RoleBinding":
            doc["metadata"]["namespace"] = target_ns
            for s in doc["subjects"]:
                s["namespace"] = sa_ns
            await admin.post(
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{target_ns}/rolebindings", doc
            )


async def _until_allowed(
    action: Callable[[], Awaitable[ActionOutcome]], deadline_seconds: float = 20.0
) -> ActionOutcome:
    """RBAC changes reach the authorizer's cache shortly after the write: poll, with a deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return await action()
        except RollbackFailed as exc:
            if "missing permission" not in exc.reason or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)  # poll interval, under the deadline


async def test_in_cluster_service_account_gets_403_before_rbac_and_succeeds_after(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, tmp_path: Path
) -> None:
    sa_ns = f"sentinel-{secrets.token_hex(3)}"
    sa_dir = await _service_account_dir(kube_apiserver, admin_kube, tmp_path, sa_ns)
    await objects.create_rollout(admin_kube, namespace, "web")
    await objects.create_deployment(admin_kube, namespace, "api")

    conn = in_cluster(sa_dir=sa_dir, host="127.0.0.1", port=kube_apiserver.port, environ={})
    assert conn.namespace == sa_ns
    async with KubeClient(conn) as kube:
        argo, dep = ArgoRolloutTarget(kube), DeploymentTarget(kube)
        with pytest.raises(RollbackFailed) as info:
            await argo.stop(req(namespace, "web", "abort"))
        assert not info.value.retryable
        assert (
            f"missing permission: patch rollouts/status in API group argoproj.io in namespace "
            f"{namespace}" in info.value.reason
        )
        assert "rbac.yaml" in info.value.reason
        with pytest.raises(RollbackFailed, match="missing permission: get deployments in API"):
            await dep.stop(req(namespace, "api", "undo"))

        await _apply_rbac(admin_kube, namespace, sa_ns)

        aborted = await _until_allowed(lambda: argo.stop(req(namespace, "web", "abort")))
        assert aborted.status == OutcomeStatus.DONE
        undone = await _until_allowed(lambda: dep.stop(req(namespace, "api", "undo")))
        assert undone.status == OutcomeStatus.DONE
        paused = await argo.stop(req(namespace, "web", "pause"))
        assert paused.status == OutcomeStatus.DONE
        # Least privilege: nothing beyond what the targets need.
        with pytest.raises(Forbidden):
            await kube.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/api")
        with pytest.raises(Forbidden):
            await kube.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets/api-aaa111")
    ro = await objects.get_rollout(admin_kube, namespace, "web")
    assert ro["status"]["abort"] is True
    assert ro["spec"]["paused"] is True


async def test_an_exec_credential_plugin_authenticates_and_recovers_from_a_401(
    kube_apiserver: KubeAPIServer, namespace: str, tmp_path: Path, admin_kube: KubeClient
) -> None:
    # the plugin prints whatever token file it is pointed at; it starts with a revoked one
    await objects.create_rollout(admin_kube, namespace, "web")
    token = tmp_path / "token"
    token.write_text("revoked-token")
    plugin = tmp_path / "get-token"
    plugin.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        f"'kind': 'ExecCredential', 'status': {{'token': open({str(token)!r}).read()}}}}))\n"
    )
    plugin.chmod(0o700)
    path = kube_apiserver.write_kubeconfig(tmp_path / "kc")
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    path.write_text(yaml.safe_dump(doc))
    conn = from_kubeconfig(path)
    token.write_text(kube_apiserver.admin_token)  # rotated: the next run of the plugin gets it
    async with KubeClient(conn) as kube:
        outcome = await ArgoRolloutTarget(kube).stop(req(namespace, "web", "pause"))
        assert outcome.status == OutcomeStatus.DONE
    assert isinstance(conn.auth, ExecPlugin) and conn.auth.runs == 2
    ro = await objects.get_rollout(admin_kube, namespace, "web")
    assert ro["spec"]["paused"] is True


async def test_kubeconfig_paths_work_against_the_server(
    kube_apiserver: KubeAPIServer, namespace: str, tmp_path: Path, admin_kube: KubeClient
) -> None:
    await objects.create_rollout(admin_kube, namespace, "web")
    for client_cert in (False, True):
        path = kube_apiserver.write_kubeconfig(tmp_path / f"kc-{client_cert}",
                                               client_cert=client_cert)  # fmt: skip
        async with KubeClient(from_kubeconfig(path)) as kube:
            await ArgoRolloutTarget(kube).check()
            outcome = await ArgoRolloutTarget(kube).stop(req(namespace, "web", "pause"))
            assert outcome.status == OutcomeStatus.DONE
