"""Unit tests of the ledger (record format, the in-memory fake, Kafka message decoding), the
target registry against the config schema, and the per-service resolver."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from config.loader import ConfigError, parse_config
from config.rollback import (
    ArgoRolloutTargetSettings,
    DeploymentTargetSettings,
    DryRunTargetSettings,
    KubeAccessSettings,
)
from rollback.kube.auth import KubeConnection
from rollback.kube.client import KubeClient
from rollback.kube.errors import KubeConfigError
from rollback.ledger import InMemoryLedger, KafkaLedger, decode_action, group
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.deployment import DeploymentTarget
from rollback.targets.dry_run import DryRunTarget
from rollback.targets.registry import (
    TARGET_TYPES,
    build_target,
    resolver_from_config,
    shared_kube_client,
)
from tests.rollback.helpers import decision


def test_decode_action_keeps_only_action_records() -> None:
    rec = {"record": "action", "phase": "attempt"}
    assert decode_action(b"shop/web/7", json.dumps(rec).encode()) == ("shop/web/7", rec)
    decision_record = decision().to_record()
    assert decode_action(b"shop/web/7", json.dumps(decision_record).encode()) is None
    assert decode_action(b"k", b"not json") is None
    assert decode_action(None, b"{}") is None
    assert decode_action(b"k", None) is None
    assert decode_action(b"\xff", json.dumps(rec).encode()) is None


def test_group_keeps_order_per_key() -> None:
    pairs = [("a", {"n": 1}), ("b", {"n": 2}), ("a", {"n": 3})]
    assert group(pairs) == {"a": [{"n": 1}, {"n": 3}], "b": [{"n": 2}]}


async def test_in_memory_ledger_load_ignores_decision_records() -> None:
    ledger = InMemoryLedger([("shop/web/7", decision().to_record())])
    await ledger.append("shop/web/7", {"record": "action", "phase": "attempt"})
    assert await ledger.load() == {"shop/web/7": [{"record": "action", "phase": "attempt"}]}
    with pytest.raises(TypeError):
        await ledger.append("k", {"record": "action", "bad": object()})


def test_kafka_ledger_constructor() -> None:
    ledger = KafkaLedger("127.0.0.1:9092", "sentinel.decisions")
    assert ledger.bootstrap_servers == "127.0.0.1:9092"
    assert ledger.topic == "sentinel.decisions"


def test_registry_types_are_exactly_the_config_tags() -> None:
    tags = {
        typing.get_args(m.model_fields["type"].annotation)[0]
        for m in (DryRunTargetSettings, ArgoRolloutTargetSettings, DeploymentTargetSettings)
    }
    assert set(TARGET_TYPES) == tags


def test_unknown_target_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"services": {"web": {"rollback": {"type": "helm"}}}})
    assert "services.web.rollback" in str(info.value)
    assert "'helm'" in str(info.value)
    with pytest.raises(ConfigError, match="action"):
        parse_config({"rollback": {"target": {"type": "deployment", "action": "abort"}}})


def fake_factory() -> KubeClient:
    return KubeClient(KubeConnection("https://k8s.test", True, None))


async def test_build_target_per_type() -> None:
    made: list[KubeClient] = []

    def factory() -> KubeClient:
        made.append(fake_factory())
        return made[-1]

    assert isinstance(build_target(DryRunTargetSettings(), factory), DryRunTarget)
    assert made == []  # dry-run needs no credentials
    argo = build_target(ArgoRolloutTargetSettings(type="argo-rollout"), factory)
    assert isinstance(argo, ArgoRolloutTarget)
    dep = build_target(
        DeploymentTargetSettings(type="deployment", paused_deployment="resume"), factory
    )
    assert isinstance(dep, DeploymentTarget)
    assert dep.paused_deployment == "resume"
    for k in made:
        await k.aclose()


async def test_resolver_uses_service_settings_else_global() -> None:
    cfg = parse_config({
        "rollback": {"target": {"type": "argo-rollout", "action": "pause"}},
        "services": {"api": {"rollback": {"type": "deployment", "mode": "dry-run"}}},
    })  # fmt: skip
    kube = fake_factory()
    resolve = resolver_from_config(cfg, lambda: kube)
    web = resolve(decision(service="web"))
    assert isinstance(web.target, ArgoRolloutTarget)
    assert (web.action, web.mode) == ("pause", "enforce")
    api = resolve(decision(service="api"))
    assert isinstance(api.target, DeploymentTarget)
    assert (api.action, api.mode) == ("undo", "dry-run")
    assert resolve(decision(service="web")) is web  # built once
    await kube.aclose()


def test_shared_kube_client_reports_config_errors_on_first_use(tmp_path: Path) -> None:
    settings = KubeAccessSettings(service_account_dir=str(tmp_path / "none"), host="h", port=1)
    factory = shared_kube_client(settings)
    with pytest.raises(KubeConfigError, match=r"CA .* is missing"):
        factory()
