"""Kubernetes objects for the integration tests, created through the admin client.

There are no controllers in the test API server, so the tests create the ReplicaSets a
Deployment controller would have made (controller ownerRef with the Deployment's UID, revision
annotations, ``pod-template-hash`` labels) and assert only the API effect of an action.
"""

from __future__ import annotations

import copy
from typing import Any

from rollback.kube.client import JSON_PATCH, KubeClient

APPS = "/apis/apps/v1/namespaces/{ns}"
ARGO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}"


def template(image: str, labels: dict[str, str], *, env: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if env is not None:
        container["env"] = [{"name": "VERSION", "value": env}]
    return {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}}


async def create_rollout(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": template("registry.test/web:2", labels),
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }
    return await kube.post(f"{ARGO.format(ns=ns)}/rollouts", body)


async def create_deployment(
    kube: KubeClient,
    ns: str,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    paused: bool = False,
    history: bool = True,
) -> dict[str, Any]:
    """A Deployment at revision 2 (image :2) with the ReplicaSets of revisions 1 and 2, as the
    Deployment controller would have left them. Returns the Deployment as last written."""
    labels = labels or {"app": name}
    dep_body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "annotations": {
                "deployment.kubernetes.io/revision": "2",
                "kubernetes.io/change-cause": "deploy web:2",
                "team": "payments",
            },
        },
        "spec": {
            "replicas": 2,
            "paused": paused,
            "selector": {"matchLabels": labels},
            "template": template("registry.test/web:2", labels, env="2"),
        },
    }
    dep = await kube.post(f"{APPS.format(ns=ns)}/deployments", dep_body)
    if history:
        await create_replicaset(kube, ns, dep, revision=1, image="registry.test/web:1", env="1",
                                hash_="aaa111", change_cause="deploy web:1")  # fmt: skip
        await create_replicaset(kube, ns, dep, revision=2, image="registry.test/web:2", env="2",
                                hash_="bbb222", change_cause="deploy web:2")  # fmt: skip
    return dep


async def create_replicaset(
    kube: KubeClient,
    ns: str,
    dep: dict[str, Any],
    *,
    revision: int,
    image: str,
    env: str,
    hash_: str,
    change_cause: str,
) -> dict[str, Any]:
    labels = dict(dep["spec"]["selector"]["matchLabels"])
    tmpl = template(image, {**labels, "pod-template-hash": hash_}, env=env)
    tmpl["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    name = f"{dep['metadata']['name']}-{hash_}"
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "labels": {**labels, "pod-template-hash": hash_},
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "kubernetes.io/change-cause": change_cause,
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": dep["metadata"]["name"],
                    "uid": dep["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {**labels, "pod-template-hash": hash_}},
            "template": tmpl,
        },
    }
    rs = await kube.post(f"{APPS.format(ns=ns)}/replicasets", body)
    if revision == 2:
        # The Deployment's live template is revision 2's (same annotations as its RS).
        t = copy.deepcopy(tmpl)
        t["metadata"]["labels"].pop("pod-template-hash")
        await kube.patch(
            f"{APPS.format(ns=ns)}/deployments/{dep['metadata']['name']}",
            [{"op": "replace", "path": "/spec/template", "value": t}],
            content_type=JSON_PATCH,
        )
    return rs


async def get_deployment(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return await kube.get(f"{APPS.format(ns=ns)}/deployments/{name}")


async def get_rollout(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return await kube.get(f"{ARGO.format(ns=ns)}/rollouts/{name}")
