"""Shared plumbing of the Kubernetes targets: record every call, send writes only when enforcing,
and turn client errors into :class:`RollbackFailed` with a reason an on-call engineer can act on.

Used by :mod:`rollback.targets.argo_rollout` and :mod:`rollback.targets.deployment`; not a
target itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from rollback.kube.client import KubeClient, describe_request
from rollback.kube.errors import (
    Forbidden,
    KubeConfigError,
    KubeConnectionError,
    KubeError,
    NotFound,
    Unauthorized,
)
from rollback.targets.base import RollbackFailed


class CallLog:
    """Sends reads, and sends writes only when ``send`` is true; records both, in order, in
    the shape of ``ActionOutcome.requests``. With ``send=False`` the log is exactly the list of
    requests an enforced run would have made from the same reads (dry-run)."""

    def __init__(self, kube: KubeClient, *, send: bool) -> None:
        self.kube = kube
        self.send = send
        self.requests: list[dict[str, Any]] = []

    async def get(self, path: str) -> dict[str, Any]:
        self.requests.append(describe_request("GET", path))
        return await self.kube.get(path)

    async def list_all(self, path: str, *, label_selector: str) -> list[dict[str, Any]]:
        self.requests.append(
            describe_request("GET", f"{path}?{urlencode({'labelSelector': label_selector})}")
        )
        return await self.kube.list_all(path, label_selector=label_selector)

    async def patch(
        self,
        path: str,
        body: Any,
        *,
        content_type: str,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        shown = f"{path}?{urlencode(dict(params))}" if params else path
        self.requests.append(describe_request("PATCH", shown, content_type=content_type, body=body))
        if not self.send:
            return None
        return await self.kube.patch(path, body, content_type=content_type, params=params)


def failed(err: KubeError, subject: str) -> RollbackFailed:
    """A :class:`RollbackFailed` for ``err`` while acting on ``subject`` (``argo rollout
    shop/web``). 403 names the permission to grant; 401, 404 and configuration errors are not
    retryable; conflicts, throttling, server errors and timeouts are."""
    if isinstance(err, Forbidden):
        reason = f"{subject}: {err.message}; grant it (see rollback/manifests/rbac.yaml)"
    elif isinstance(err, NotFound):
        reason = f"{subject} not found ({err.verb} {err.path})"
    elif isinstance(err, Unauthorized):
        reason = f"{subject}: the API server rejected the credentials (401); check the token"
    elif isinstance(err, KubeConfigError):
        reason = f"{subject}: no usable Kubernetes credentials: {err}"
    elif isinstance(err, KubeConnectionError):
        reason = f"{subject}: {err}"
    else:
        status = f"HTTP {err.status}" if err.status is not None else "error"
        reason = f"{subject}: {status} from {err.verb} {err.path}: {err.message}"
    out = RollbackFailed(reason, retryable=err.retryable)
    out.__cause__ = err
    return out


def check_supported(action: str, supported: tuple[str, ...], type_name: str) -> None:
    if action not in supported:
        raise RollbackFailed(
            f"target {type_name} cannot {action!r}; supported actions: {', '.join(supported)}"
        )
