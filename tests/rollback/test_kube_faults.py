"""Faults against the real kube-apiserver, seen through the dispatcher: an unreachable API
server, a wrong token, a missing object, a missing permission, a genuine 409 conflict, throttling
and server errors. Each shows the retries (or their absence), the ledger entries, the alert the
router would page with, and never a false "rolled back"."""

from __future__ import annotations

import httpx
import pytest

from detector.core.types import Severity
from detector.localbroker import free_port
from rollback.dispatch import Dispatcher, RetryPolicy, ServiceTarget
from rollback.guardrails import Limits
from rollback.kube.auth import BearerToken, KubeConnection
from rollback.kube.client import KubeClient
from rollback.ledger import InMemoryLedger
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.base import (
    ActionOutcome,
    OutcomeStatus,
    RollbackFailed,
    RollbackTarget,
)
from rollback.targets.deployment import DeploymentTarget
from tests.kube_fixture import KubeAPIServer
from tests.rollback import objects
from tests.rollback.conftest import connection
from tests.rollback.faults import FaultTransport, StaleWriteTransport
from tests.rollback.helpers import FakeTime, RecordingNotifier, decision, routed_alert

pytestmark = pytest.mark.integration


def dispatcher(
    target: RollbackTarget, action: str, ledger: InMemoryLedger, attempts: int = 3
) -> tuple[Dispatcher, RecordingNotifier, FakeTime]:
    notify, t = RecordingNotifier(), FakeTime()
    d = Dispatcher(
        resolve=lambda _d: ServiceTarget(target, action, "enforce"),
        ledger=ledger,
        notify=notify,
        limits=Limits(cooldown_seconds=0, max_actions_per_hour=100),
        retry=RetryPolicy(attempts=attempts, initial_backoff=0.5, max_backoff=5.0, jitter=0.0),
        clock=t.clock,
        sleep=t.sleep,
    )
    return d, notify, t


def assert_failed_everywhere(
    out: ActionOutcome | None, ledger: InMemoryLedger, notify: RecordingNotifier, key: str
) -> str:
    assert out is not None
    assert out.status == OutcomeStatus.FAILED
    recs = ledger.of(key)
    assert [r["phase"] for r in recs] == ["attempt", "outcome"]
    assert recs[-1]["status"] == "failed"
    assert all(r.get("status") != "done" for r in recs)
    alerted, outcome = notify.calls[-1]
    assert outcome is out
    severity, summary = routed_alert(alerted, outcome)
    assert severity == Severity.CRITICAL
    assert summary.startswith("ROLLBACK FAILED, act now")
    return out.detail


async def test_api_server_down_retries_then_critical_alert_and_failed_ledger_entry(
    kube_apiserver: KubeAPIServer,
) -> None:
    down = KubeConnection(f"https://127.0.0.1:{free_port()}", kube_apiserver.ssl_context(),
                          BearerToken(kube_apiserver.admin_token))  # fmt: skip
    async with KubeClient(down, timeout=5) as kube:
        ledger = InMemoryLedger()
        d, notify, t = dispatcher(ArgoRolloutTarget(kube), "abort", ledger)
        out = await d.handle(decision(namespace="shop", service="web"))
    reason = assert_failed_everywhere(out, ledger, notify, "shop/web/7")
    assert t.sleeps == [0.5, 1.0]
    assert "cannot reach the API server" in reason
    assert "after 3 attempts" in reason
    assert ledger.of("shop/web/7")[-1]["attempts"] == 3


async def test_wrong_token_is_not_retried(kube_apiserver: KubeAPIServer, namespace: str,
                                          admin_kube: KubeClient) -> None:  # fmt: skip
    await objects.create_rollout(admin_kube, namespace, "web")
    async with KubeClient(connection(kube_apiserver, "not-a-valid-token")) as kube:
        ledger = InMemoryLedger()
        d, notify, t = dispatcher(ArgoRolloutTarget(kube), "abort", ledger)
        out = await d.handle(decision(namespace=namespace, service="web"))
    reason = assert_failed_everywhere(out, ledger, notify, f"{namespace}/web/7")
    assert "rejected the credentials (401)" in reason
    assert t.sleeps == []
    assert "not-a-valid-token" not in reason


async def test_missing_object_is_not_retried_and_named(
    namespace: str, admin_kube: KubeClient
) -> None:
    ledger = InMemoryLedger()
    d, notify, t = dispatcher(DeploymentTarget(admin_kube), "undo", ledger)
    out = await d.handle(decision(namespace=namespace, service="ghost"))
    reason = assert_failed_everywhere(out, ledger, notify, f"{namespace}/ghost/7")
    assert f"deployment {namespace}/ghost not found" in reason
    assert t.sleeps == []


async def test_missing_permission_is_not_retried_and_named(
    namespace: str, admin_kube: KubeClient, user_kube: KubeClient
) -> None:
    await objects.create_rollout(admin_kube, namespace, "web")
    ledger = InMemoryLedger()
    d, notify, t = dispatcher(ArgoRolloutTarget(user_kube), "abort", ledger)
    out = await d.handle(decision(namespace=namespace, service="web"))
    reason = assert_failed_everywhere(out, ledger, notify, f"{namespace}/web/7")
    assert "missing permission: patch rollouts/status in API group argoproj.io" in reason
    assert 'User "canary-sentinel" cannot patch' in reason
    assert t.sleeps == []


async def test_conflict_is_retried_and_then_done(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient
) -> None:
    created = await objects.create_rollout(admin_kube, namespace, "web")
    stale = created["metadata"]["resourceVersion"]
    await admin_kube.patch(  # someone else writes: the version we hold is now stale
        f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/web",
        {"metadata": {"labels": {"touched": "yes"}}},
    )
    conn = connection(kube_apiserver, kube_apiserver.admin_token)
    transport = StaleWriteTransport(httpx.AsyncHTTPTransport(verify=conn.verify), stale)
    async with KubeClient(conn, transport=transport) as kube:
        ledger = InMemoryLedger()
        d, notify, t = dispatcher(ArgoRolloutTarget(kube), "abort", ledger)
        out = await d.handle(decision(namespace=namespace, service="web"))
    assert transport.conflicts == 1  # a genuine 409 from the API server
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert t.sleeps == [0.5]
    last = ledger.of(f"{namespace}/web/7")[-1]
    assert (last["status"], last["attempts"]) == ("done", 2)
    assert routed_alert(*notify.calls[-1])[0] != Severity.CRITICAL
    ro = await objects.get_rollout(admin_kube, namespace, "web")
    assert ro["status"]["abort"] is True


@pytest.mark.parametrize("status", [429, 503])
async def test_throttling_and_server_errors_are_retried_then_done(
    kube_apiserver: KubeAPIServer, namespace: str, admin_kube: KubeClient, status: int
) -> None:
    await objects.create_deployment(admin_kube, namespace, "web")
    conn = connection(kube_apiserver, kube_apiserver.admin_token)
    transport = FaultTransport(httpx.AsyncHTTPTransport(verify=conn.verify), status, times=2)
    async with KubeClient(conn, transport=transport) as kube:
        ledger = InMemoryLedger()
        d, _notify, t = dispatcher(DeploymentTarget(kube), "undo", ledger, attempts=5)
        out = await d.handle(decision(namespace=namespace, service="web"))
    assert out is not None
    assert out.status == OutcomeStatus.DONE, out.detail
    assert len(t.sleeps) == 2
    assert transport.faulted == 2
    assert ledger.of(f"{namespace}/web/7")[-1]["attempts"] == 3
    dep = await objects.get_deployment(admin_kube, namespace, "web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/web:1"


async def test_start_up_check(kube_apiserver: KubeAPIServer, admin_kube: KubeClient) -> None:
    await ArgoRolloutTarget(admin_kube).check()
    await DeploymentTarget(admin_kube).check()
    async with KubeClient(connection(kube_apiserver, "wrong")) as bad:
        for target in (ArgoRolloutTarget(bad), DeploymentTarget(bad)):
            with pytest.raises(RollbackFailed, match=r"rejected the credentials \(401\)"):
                await target.check()
    down = KubeConnection(f"https://127.0.0.1:{free_port()}", kube_apiserver.ssl_context(), None)
    async with KubeClient(down) as unreachable:
        # Not fatal at start: the API server may be back before the first rollback.
        await ArgoRolloutTarget(unreachable).check()
