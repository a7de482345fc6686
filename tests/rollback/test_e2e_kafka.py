"""End to end: regressing canaries streamed through real Kafka stop their rollouts on a real
kube-apiserver (an Argo Rollout is aborted, a Deployment is undone to its previous revision),
exactly once, although the worker is killed and restarted in between; a healthy canary's
Deployment is not touched."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from detector.demo import DemoPlan, demo_lines
from detector.localbroker import LocalBroker
from rollback.kube.client import KubeClient
from tests.integration.harness import (
    ServiceProcess,
    consumer_lag,
    keyed,
    produce,
    read_all,
    service_with_topics,
)
from tests.kube_fixture import KubeAPIServer
from tests.rollback.objects import create_deployment, create_rollout, get_deployment, get_rollout

pytestmark = pytest.mark.integration


def _plan(ns: str) -> DemoPlan:
    return DemoPlan(
        history_minutes=15,
        canary_minutes=8,
        regress_at_minute=3,
        namespace=ns,
        services=("checkout", "payments", "orders"),
        regressing=("payments", "orders"),
    )


async def _setup(kube: KubeClient, ns: str) -> dict[str, Any]:
    await create_rollout(kube, ns, "payments")
    await create_deployment(kube, ns, "orders")
    await create_deployment(kube, ns, "checkout")
    return await get_deployment(kube, ns, "checkout")


def _wait_all_processed(svc: ServiceProcess, bootstrap: str) -> None:
    k = svc.config.kafka
    svc.wait_for(
        "every record to be processed",
        lambda: consumer_lag(bootstrap, k.app_id, k.metrics_topic) == 0,
    )


async def test_regressions_stop_their_rollouts_once_across_restarts(
    kafka_broker: LocalBroker,
    kube_apiserver: KubeAPIServer,
    namespace: str,
    admin_kube: KubeClient,
    tmp_path: Path,
) -> None:
    checkout_before = await _setup(admin_kube, namespace)
    cfg, path = await asyncio.to_thread(service_with_topics, kafka_broker.bootstrap, tmp_path)
    data = yaml.safe_load(path.read_text())
    data["namespace"] = namespace
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    data["rollback"] = {
        "kube": {"mode": "kubeconfig", "kubeconfig": str(kubeconfig)},
        "guardrails": {"cooldown_seconds": 0, "max_actions_per_hour": 10},
        "target": {"type": "deployment", "action": "undo"},
    }
    data["services"] = {"payments": {"rollback": {"type": "argo-rollout", "action": "abort"}}}
    path.write_text(yaml.safe_dump(data))
    plan = _plan(namespace)
    lines = list(demo_lines(plan))
    cut = plan.onset + 90.0
    first = [ln for ln in lines if orjson.loads(ln)["ts"] < cut]
    rest = lines[len(first) :]

    svc = ServiceProcess(cfg, path, tmp_path / "service")
    svc.start()
    try:
        await produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(first))
        await asyncio.to_thread(_wait_all_processed, svc, kafka_broker.bootstrap)
        # killed without warning, then the rest of the stream, then a clean restart
        svc.stop(signal.SIGKILL)
        svc.start()
        await produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(rest))
        await asyncio.to_thread(_wait_all_processed, svc, kafka_broker.bootstrap)
        svc.stop()
        svc.start()
        await asyncio.to_thread(_wait_all_processed, svc, kafka_broker.bootstrap)
    finally:
        await asyncio.to_thread(svc.stop)

    rollout = await get_rollout(admin_kube, namespace, "payments")
    assert rollout["status"]["abort"] is True
    orders = await get_deployment(admin_kube, namespace, "orders")
    assert orders["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/web:1"
    assert orders["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "VERSION", "value": "1"}
    ]
    checkout = await get_deployment(admin_kube, namespace, "checkout")
    assert checkout["metadata"]["resourceVersion"] == checkout_before["metadata"]["resourceVersion"]

    records = await read_all(kafka_broker.bootstrap, cfg.kafka.decisions_topic)
    actions = [r for r in records if r.get("record") == "action"]
    attempts = sorted(r["service"] for r in actions if r["phase"] == "attempt")
    assert attempts == ["orders", "payments"], actions
    outcomes = {r["service"]: r["status"] for r in actions if r["phase"] == "outcome"}
    assert outcomes == {"orders": "done", "payments": "done"}
    rollbacks = [r for r in records if r.get("record") == "decision" and r["action"] == "rollback"]
    assert sorted(r["service"] for r in rollbacks) == ["orders", "payments"]
