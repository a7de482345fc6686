"""The rollback-target contract (``rollback/targets/base.py``), run against every implementation:
the fake, ``argo-rollout`` (abort and pause) and ``deployment`` (pause and undo) against the real
kube-apiserver, and ``dry-run`` wrapping the fake and both Kubernetes targets.

What every target must do:
- act on an existing object and say ``done`` only when it took effect (dry-run: ``dry_run``
  and no effect, with the requests it would have sent);
- be harmless when asked twice;
- raise ``RollbackFailed`` (never anything else, never ``done``) for a missing object or a
  missing permission, not retryable, with a reason naming the object or the permission;
- raise a *retryable* ``RollbackFailed`` for conflicts, throttling, server errors and an
  unreachable API server, with no effect;
- refuse an action it does not support; pass ``check()`` when healthy.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rollback.kube.client import KubeClient
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.base import (
    ActionOutcome,
    ActionRequest,
    OutcomeStatus,
    RollbackFailed,
    RollbackTarget,
    RolloutRef,
)
from rollback.targets.deployment import DeploymentTarget
from rollback.targets.dry_run import DryRunTarget
from rollback.targets.fake import FakeTarget
from rollback.targets.registry import TARGET_TYPES
from tests.kube_fixture import KubeAPIServer
from tests.rollback import objects
from tests.rollback.conftest import connection
from tests.rollback.faults import FaultTransport

RETRYABLE_FAULTS = {409: "conflict", 429: "throttled", 503: "unavailable", 0: "unreachable"}


class Harness:
    """One implementation under test, with a world it acts on."""

    name = "base"
    mutating = True
    action = "abort"

    def target(self, fault: int | None = None) -> RollbackTarget:
        raise NotImplementedError

    def denied(self) -> RollbackTarget:
        raise NotImplementedError

    async def existing(self) -> ActionRequest:
        raise NotImplementedError

    def missing(self) -> ActionRequest:
        return self.request("shop", f"missing-{secrets.token_hex(3)}")

    async def effect(self, request: ActionRequest) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def request(self, ns: str, name: str) -> ActionRequest:
        return ActionRequest(RolloutRef(ns, name, "7"), self.action, "canary regressed")


class FakeHarness(Harness):
    name = "fake"

    def __init__(self) -> None:
        self.objects: set[tuple[str, str]] = set()
        self.targets: list[FakeTarget] = []

    def target(self, fault: int | None = None) -> RollbackTarget:
        failure = None
        if fault is not None:
            failure = RollbackFailed(f"{RETRYABLE_FAULTS[fault]} (injected)", retryable=True)
        t = FakeTarget(existing=self.objects, always_fail=failure)
        self.targets.append(t)
        return t

    def denied(self) -> RollbackTarget:
        return FakeTarget(
            always_fail=RollbackFailed("missing permission: patch rollouts/status", retryable=False)
        )

    async def existing(self) -> ActionRequest:
        name = f"web-{secrets.token_hex(3)}"
        self.objects.add(("shop", name))
        return self.request("shop", name)

    async def effect(self, request: ActionRequest) -> bool:
        r = request.rollout
        return any((r.namespace, r.name) in t.stopped for t in self.targets)


class KubeHarness(Harness):
    """Common part of the Kubernetes targets: clients with an optional fault in front."""

    def __init__(self, server: KubeAPIServer, ns: str) -> None:
        self.server, self.ns = server, ns
        self.clients: list[KubeClient] = []
        self.admin = self.client(server.admin_token)

    def client(self, token: str, fault: int | None = None) -> KubeClient:
        conn = connection(self.server, token)
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(verify=conn.verify)
        if fault is not None:
            transport = FaultTransport(transport, fault)
        kube = KubeClient(conn, transport=transport, timeout=10)
        self.clients.append(kube)
        return kube

    def missing(self) -> ActionRequest:
        return self.request(self.ns, f"missing-{secrets.token_hex(3)}")

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()


class ArgoHarness(KubeHarness):
    def __init__(self, action: str, *args: Any) -> None:
        super().__init__(*args)
        self.action = action
        self.name = f"argo-rollout/{action}"

    def target(self, fault: int | None = None) -> RollbackTarget:
        return ArgoRolloutTarget(self.client(self.server.admin_token, fault))

    def denied(self) -> RollbackTarget:
        return ArgoRolloutTarget(self.client(self.server.user_token))

    async def existing(self) -> ActionRequest:
        name = f"web-{secrets.token_hex(3)}"
        await objects.create_rollout(self.admin, self.ns, name)
        return self.request(self.ns, name)

    async def effect(self, request: ActionRequest) -> bool:
        ro = await objects.get_rollout(self.admin, self.ns, request.rollout.name)
        if self.action == "abort":
            return (ro.get("status") or {}).get("abort") is True
        return ro["spec"].get("paused") is True


class DeploymentHarness(KubeHarness):
    def __init__(self, action: str, *args: Any) -> None:
        super().__init__(*args)
        self.action = action
        self.name = f"deployment/{action}"

    def target(self, fault: int | None = None) -> RollbackTarget:
        return DeploymentTarget(self.client(self.server.admin_token, fault))

    def denied(self) -> RollbackTarget:
        return DeploymentTarget(self.client(self.server.user_token))

    async def existing(self) -> ActionRequest:
        name = f"web-{secrets.token_hex(3)}"
        await objects.create_deployment(self.admin, self.ns, name)
        return self.request(self.ns, name)

    async def effect(self, request: ActionRequest) -> bool:
        dep = await objects.get_deployment(self.admin, self.ns, request.rollout.name)
        if self.action == "pause":
            return dep["spec"].get("paused") is True
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return bool(image == "registry.test/web:1")


class DryRunHarness(Harness):
    mutating = False

    def __init__(self, inner: Harness) -> None:
        self.inner = inner
        self.action = inner.action
        self.name = f"dry-run({inner.name})"

    def target(self, fault: int | None = None) -> RollbackTarget:
        inner = self.inner.target(fault)
        assert isinstance(inner, FakeTarget | ArgoRolloutTarget | DeploymentTarget)
        return DryRunTarget(inner=inner)

    def denied(self) -> RollbackTarget:
        inner = self.inner.denied()
        assert isinstance(inner, FakeTarget | ArgoRolloutTarget | DeploymentTarget)
        return DryRunTarget(inner=inner)

    async def existing(self) -> ActionRequest:
        return await self.inner.existing()

    def missing(self) -> ActionRequest:
        return self.inner.missing()

    async def effect(self, request: ActionRequest) -> bool:
        return await self.inner.effect(request)

    async def close(self) -> None:
        await self.inner.close()


HARNESSES = [
    "fake",
    "argo-rollout/abort",
    "argo-rollout/pause",
    "deployment/pause",
    "deployment/undo",
    "dry-run(fake)",
    "dry-run(argo-rollout/abort)",
    "dry-run(deployment/undo)",
]


def _build(name: str, request: pytest.FixtureRequest) -> Harness:
    if name.startswith("dry-run("):
        return DryRunHarness(_build(name[len("dry-run(") : -1], request))
    if name == "fake":
        return FakeHarness()
    kind, action = name.split("/")
    # Only synchronous fixtures here: this runs inside the event loop of an async fixture.
    args = (request.getfixturevalue("kube_apiserver"), request.getfixturevalue("namespace"))
    return (
        ArgoHarness(action, *args) if kind == "argo-rollout" else DeploymentHarness(action, *args)
    )


@pytest.fixture(
    params=[
        pytest.param(n, marks=pytest.mark.integration) if n not in ("fake", "dry-run(fake)") else n
        for n in HARNESSES
    ]
)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = _build(request.param, request)
    try:
        yield h
    finally:
        await h.close()


def assert_request_records(outcome: ActionOutcome) -> None:
    for r in outcome.requests:
        assert set(r) == {"method", "path", "content_type", "body"}
    json.dumps(outcome.to_record())  # the ledger must be able to store it


async def test_type_name_is_registered(harness: Harness) -> None:
    t = harness.target()
    assert t.type_name in TARGET_TYPES or t.type_name == "fake"


async def test_stop_acts_and_reports_it(harness: Harness) -> None:
    req = await harness.existing()
    outcome = await harness.target().stop(req)
    assert_request_records(outcome)
    if harness.mutating:
        assert outcome.status == OutcomeStatus.DONE
        assert await harness.effect(req)
        assert any(r["method"] == "PATCH" for r in outcome.requests)
    else:
        assert outcome.status == OutcomeStatus.DRY_RUN
        assert not await harness.effect(req)
        # The dry-run shows the write the real target would have sent.
        assert any(r["method"] == "PATCH" for r in outcome.requests), outcome
        assert "would" in outcome.detail


async def test_stop_twice_is_harmless(harness: Harness) -> None:
    req = await harness.existing()
    target = harness.target()
    await target.stop(req)
    again = await target.stop(req)
    expected = (
        {OutcomeStatus.DONE, OutcomeStatus.SKIPPED} if harness.mutating else {OutcomeStatus.DRY_RUN}
    )
    assert again.status in expected


async def test_missing_object_is_a_permanent_failure(harness: Harness) -> None:
    req = harness.missing()
    if not harness.mutating:
        outcome = await harness.target().stop(req)
        assert outcome.status == OutcomeStatus.DRY_RUN
        return
    with pytest.raises(RollbackFailed) as info:
        await harness.target().stop(req)
    assert not info.value.retryable
    assert req.rollout.name in info.value.reason
    assert "not found" in info.value.reason


async def test_missing_permission_is_a_permanent_failure_naming_it(harness: Harness) -> None:
    req = await harness.existing()
    target = harness.denied()
    if not harness.mutating:
        outcome = await target.stop(req)
        assert outcome.status == OutcomeStatus.DRY_RUN
        assert not await harness.effect(req)
        return
    with pytest.raises(RollbackFailed) as info:
        await target.stop(req)
    assert not info.value.retryable
    assert "missing permission: " in info.value.reason
    assert not await harness.effect(req)


@pytest.mark.parametrize("fault", sorted(RETRYABLE_FAULTS))
async def test_transient_faults_are_retryable_failures_without_effect(
    harness: Harness, fault: int
) -> None:
    req = await harness.existing()
    target = harness.target(fault)
    if not harness.mutating:
        outcome = await target.stop(req)
        assert outcome.status == OutcomeStatus.DRY_RUN
    else:
        with pytest.raises(RollbackFailed) as info:
            await target.stop(req)
        assert info.value.retryable, info.value.reason
    assert not await harness.effect(req)


async def test_unsupported_action_is_refused(harness: Harness) -> None:
    req = await harness.existing()
    bad = ActionRequest(req.rollout, "explode", req.reason)
    if not harness.mutating:
        outcome = await harness.target().stop(bad)
        assert outcome.status == OutcomeStatus.DRY_RUN
        assert "would fail" in outcome.detail
        return
    with pytest.raises(RollbackFailed) as info:
        await harness.target().stop(bad)
    assert not info.value.retryable
    assert "explode" in info.value.reason


async def test_check_passes_when_healthy(harness: Harness) -> None:
    await harness.target().check()  # raises RollbackFailed when unhealthy
