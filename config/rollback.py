"""Rollback settings: which target stops each service's rollout, how the service reaches the
Kubernetes API, the guardrails, the emergency switch and the retry policy.

Read by :mod:`config.schema` (global ``rollback:`` and per-service ``services.<name>.rollback``),
by :func:`rollback.targets.registry.build_target` and by :mod:`rollback.dispatch`.
A target is chosen by its ``type:``; an unknown type is refused when the file is loaded
(pydantic discriminated union), never silently replaced by another target.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_MODE_DESCRIPTION = (
    "`enforce` sends the action to the API server; `dry-run` only records the requests that "
    "would have been sent (the emergency switch forces `dry-run` for every service)."
)


class DryRunTargetSettings(_Strict):
    """Records what would be done and touches nothing."""

    type: Literal["dry-run"] = Field(
        "dry-run",
        description="`dry-run` records what it would do and touches nothing.",
    )
    action: Literal["abort", "pause", "undo"] = Field(
        "abort", description="The action named in the dry-run record."
    )
    mode: Literal["dry-run"] = Field(
        "dry-run", description="Always `dry-run` for this target (the schema is uniform)."
    )


class ArgoRolloutTargetSettings(_Strict):
    """Stops an Argo Rollouts `Rollout` named like the service."""

    type: Literal["argo-rollout"] = Field(
        description="`argo-rollout`: the service is an Argo Rollouts `Rollout` of the same name."
    )
    action: Literal["abort", "pause"] = Field(
        "abort",
        description=(
            "`abort` (as `kubectl argo rollouts abort`: scale back to the stable ReplicaSet) or "
            "`pause` (as `kubectl argo rollouts pause`: freeze the rollout where it is)."
        ),
    )
    mode: Literal["enforce", "dry-run"] = Field("enforce", description=_MODE_DESCRIPTION)


class DeploymentTargetSettings(_Strict):
    """Stops an apps/v1 `Deployment` named like the service."""

    type: Literal["deployment"] = Field(
        description="`deployment`: the service is an apps/v1 `Deployment` of the same name."
    )
    action: Literal["pause", "undo"] = Field(
        "undo",
        description=(
            "`undo` (as `kubectl rollout undo`: restore the previous revision's pod template) or "
            "`pause` (as `kubectl rollout pause`: freeze a half-done rollout, old and new mixed)."
        ),
    )
    paused_deployment: Literal["resume", "refuse"] = Field(
        "refuse",
        description=(
            "What `undo` does with a paused Deployment: `refuse` (kubectl's behaviour; the "
            "rollback fails with that reason) or `resume` it first, then undo."
        ),
    )
    mode: Literal["enforce", "dry-run"] = Field("enforce", description=_MODE_DESCRIPTION)


RollbackTargetSettings: TypeAlias = Annotated[
    DryRunTargetSettings | ArgoRolloutTargetSettings | DeploymentTargetSettings,
    Field(discriminator="type"),
]
"""How one service's rollout is stopped: one of the target settings above, chosen by `type:`."""


class KubeAccessSettings(_Strict):
    """How the service reaches the Kubernetes API."""

    mode: Literal["in-cluster", "kubeconfig"] = Field(
        "in-cluster",
        description=(
            "`in-cluster`: the pod's service account (token re-read as it rotates); "
            "`kubeconfig`: a kubeconfig file (local development)."
        ),
    )
    service_account_dir: str = Field(
        DEFAULT_SA_DIR,
        description="In-cluster: directory holding `token`, `ca.crt` and `namespace`.",
    )
    host: str | None = Field(
        None, description="In-cluster: API host; default `$KUBERNETES_SERVICE_HOST`."
    )
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="In-cluster: API port; default `$KUBERNETES_SERVICE_PORT`.",
    )
    kubeconfig: str | None = Field(
        None, description="Kubeconfig mode: the file; default `$KUBECONFIG` or `~/.kube/config`."
    )
    context: str | None = Field(
        None, description="Kubeconfig mode: the context; default the file's `current-context`."
    )
    token_refresh_seconds: float = Field(
        60.0, gt=0, description="Re-read a token file at most this often (it rotates)."
    )
    timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of one API request (connect, read, write)."
    )


class GuardrailSettings(_Strict):
    """Limits on how often the service may act, whatever the detector decides."""

    cooldown_seconds: float = Field(
        300.0,
        ge=0,
        description="After an enforced action in a namespace, refuse the next one for this long.",
    )
    max_actions_per_hour: int = Field(
        3,
        ge=0,
        description="At most this many enforced actions per namespace in any 60-minute window.",
    )
    emergency_switch_file: str | None = Field(
        "/etc/canary-sentinel/dry-run",
        description=(
            "While this file exists every target acts as dry-run (checked before each action, "
            "no restart needed). Mount it from a ConfigMap or `touch` it. `null` disables it."
        ),
    )
    emergency_switch_env: str | None = Field(
        "CANARY_SENTINEL_DRY_RUN",
        description=(
            "While this environment variable is set to a non-empty value other than `0`/`false`, "
            "every target acts as dry-run (read before each action). `null` disables it."
        ),
    )


class RetrySettings(_Strict):
    """Retries of one action after a retryable failure (409, 429, 5xx, timeouts)."""

    attempts: int = Field(5, ge=1, description="Tries in total, the first included.")
    initial_backoff_seconds: float = Field(
        0.5, ge=0, description="Wait before the second try; doubles after each failure."
    )
    max_backoff_seconds: float = Field(
        10.0, ge=0, description="Cap of a single wait (a 429's Retry-After is capped too)."
    )
    jitter: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Each wait is shortened by a random fraction up to this (0 = no jitter).",
    )
    attempt_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Give up one try after this long (counts as a retryable timeout).",
    )


class RollbackSettings(_Strict):
    """Global rollback settings; services may override `target`."""

    target: RollbackTargetSettings = Field(
        default_factory=DryRunTargetSettings,
        description="The default target for services that do not name one.",
    )
    kube: KubeAccessSettings = Field(
        default_factory=KubeAccessSettings, description="How to reach the Kubernetes API."
    )
    guardrails: GuardrailSettings = Field(
        default_factory=GuardrailSettings, description="Cooldown, hourly cap, emergency switch."
    )
    retry: RetrySettings = Field(
        default_factory=RetrySettings, description="Retries after retryable API failures."
    )
