"""The rollback-target registry: YAML ``type:`` to implementation.

Who calls this: the service at start (one target per service) and tests. What it promises: the
types here are exactly the tags of ``config.rollback.RollbackTargetSettings`` (an unknown type
never gets this far: the config loader refuses it); a target is built from its settings and a
factory of the shared :class:`~rollback.kube.client.KubeClient`, which is only called by targets
that talk to Kubernetes (so a dry-run-only configuration needs no credentials). The returned
target is the *real* one; the dispatcher wraps it in
:class:`~rollback.targets.dry_run.DryRunTarget` when the service's mode or the emergency switch
says dry-run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from config.rollback import (
    DeploymentTargetSettings,
    KubeAccessSettings,
    RollbackTargetSettings,
)
from config.schema import SentinelConfig
from detector.core.types import Decision
from rollback.kube.client import KubeClient, connect
from rollback.targets.argo_rollout import ArgoRolloutTarget
from rollback.targets.base import RollbackTarget
from rollback.targets.deployment import DeploymentTarget
from rollback.targets.dry_run import DryRunTarget

if TYPE_CHECKING:
    from rollback.dispatch import ServiceTarget

KubeClientFactory = Callable[[], KubeClient]

TARGET_TYPES: dict[str, Callable[[RollbackTargetSettings, KubeClientFactory], RollbackTarget]] = {}


def _dry_run(settings: RollbackTargetSettings, kube: KubeClientFactory) -> RollbackTarget:
    return DryRunTarget()


def _argo(settings: RollbackTargetSettings, kube: KubeClientFactory) -> RollbackTarget:
    return ArgoRolloutTarget(kube())


def _deployment(settings: RollbackTargetSettings, kube: KubeClientFactory) -> RollbackTarget:
    assert isinstance(settings, DeploymentTargetSettings)
    return DeploymentTarget(kube(), paused_deployment=settings.paused_deployment)


TARGET_TYPES.update({"dry-run": _dry_run, "argo-rollout": _argo, "deployment": _deployment})


def build_target(settings: RollbackTargetSettings, kube: KubeClientFactory) -> RollbackTarget:
    """The target ``settings`` describe. Raises ``KeyError`` only if the registry and the config
    schema disagree, which ``tests/rollback/test_registry.py`` rules out."""
    return TARGET_TYPES[settings.type](settings, kube)


def shared_kube_client(settings: KubeAccessSettings) -> KubeClientFactory:
    """A factory that connects on first use and then always returns the same client."""
    made: list[KubeClient] = []

    def factory() -> KubeClient:
        if not made:
            made.append(KubeClient(connect(settings), timeout=settings.timeout_seconds))
        return made[0]

    return factory


def resolver_from_config(
    config: SentinelConfig, kube: KubeClientFactory
) -> Callable[[Decision], ServiceTarget]:
    """The dispatcher's ``resolve``: each service's target (its own ``rollback:`` or the global
    ``rollback.target``), built on first use and then reused."""
    from rollback.dispatch import ServiceTarget

    built: dict[str, ServiceTarget] = {}

    def resolve(decision: Decision) -> ServiceTarget:
        st = built.get(decision.service)
        if st is None:
            svc = config.services.get(decision.service)
            settings = (svc.rollback if svc is not None else None) or config.rollback.target
            st = ServiceTarget(build_target(settings, kube), settings.action, settings.mode)
            built[decision.service] = st
        return st

    return resolve
