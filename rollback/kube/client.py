"""A small async Kubernetes API client on plain httpx: the six calls the targets need.

Who calls this: the rollback targets (:mod:`rollback.targets.argo_rollout`,
:mod:`rollback.targets.deployment`) and the integration-test fixtures. What it promises:

- Paths are built by the caller (no discovery); every answer is decoded JSON.
- Every failure is a :class:`rollback.kube.errors.KubeError` carrying the verb and path, the
  API server's ``Status`` message and reason, and for 403 the missing permission spelled out
  (``patch rollouts/status in API group argoproj.io in namespace shop``). Tokens, headers and
  certificates never appear in an error or a log line.
- ``list_all`` follows ``continue`` tokens until the list is complete.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from config.rollback import KubeAccessSettings
from rollback.kube.auth import KubeConnection, in_cluster
from rollback.kube.errors import (
    Forbidden,
    KubeAPIError,
    KubeConnectionError,
    KubeError,
    TooManyRequests,
    error_class_for,
)
from rollback.kube.kubeconfig import from_kubeconfig

log = logging.getLogger(__name__)

USER_AGENT = "canary-sentinel/0.1"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def required_permission(method: str, path: str) -> str:
    """The RBAC rule a request needs, in words: ``patch rollouts/status in API group
    argoproj.io in namespace shop``. Used in 403 messages so the alert names what to grant."""
    m = _PATH.match(path.split("?", 1)[0])
    if m is None:
        return f"{method} {path}"
    named = m["name"] is not None
    verb = {
        "GET": "get" if named else "list",
        "PATCH": "patch",
        "POST": "create",
        "PUT": "update",
        "DELETE": "delete",
    }.get(method.upper(), method.lower())
    resource = m["resource"] + (f"/{m['sub']}" if m["sub"] else "")
    group = m["group"] or '"" (core)'
    where = f" in namespace {m['ns']}" if m["ns"] else " cluster-wide"
    return f"{verb} {resource} in API group {group}{where}"


def describe_request(
    method: str, path: str, *, content_type: str | None = None, body: Any = None
) -> dict[str, Any]:
    """The ledger's description of one API call (see ``ActionOutcome.requests``)."""
    return {"method": method, "path": path, "content_type": content_type, "body": body}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _translate(response: httpx.Response, method: str, path: str) -> KubeError:
    status = response.status_code
    reason: str | None = None
    message = response.reason_phrase or f"HTTP {status}"
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        message = str(doc.get("message") or message)
        reason = str(doc["reason"]) if doc.get("reason") else None
    if status == 403:
        message = f"missing permission: {required_permission(method, path)} ({message})"
    cls = error_class_for(status)
    err: KubeAPIError = cls(message, status=status, verb=method, path=path, reason=reason)
    if isinstance(err, TooManyRequests):
        err.retry_after = _retry_after(response)
    return err


class KubeClient:
    """An async client for one API server. Use as ``async with KubeClient(conn) as kube:`` or
    call :meth:`aclose`. ``transport`` replaces the HTTP transport (tests inject faults); the
    default verifies with ``connection.verify``."""

    def __init__(
        self,
        connection: KubeConnection,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self._extensions = (
            {"sni_hostname": connection.sni_hostname} if connection.sni_hostname else {}
        )
        self._http = httpx.AsyncClient(
            base_url=connection.server,
            auth=connection.auth,
            timeout=httpx.Timeout(timeout),
            transport=transport or httpx.AsyncHTTPTransport(verify=connection.verify),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @property
    def namespace(self) -> str:
        """The default namespace of the credentials."""
        return self.connection.namespace

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer, or raise a ``KubeError``."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else {}
        try:
            response = await self._http.request(
                method,
                path,
                params=dict(params) if params else None,
                content=content,
                headers=headers,
                extensions=self._extensions,
            )
        except httpx.TimeoutException as exc:
            raise KubeConnectionError(
                f"timed out ({type(exc).__name__})", verb=method, path=path
            ) from None
        except httpx.TransportError as exc:
            raise KubeConnectionError(
                f"cannot reach the API server {self.connection.server}: {exc}",
                verb=method,
                path=path,
            ) from None
        if response.is_error:
            err = _translate(response, method, path)
            log.debug("kube %s %s -> %s", method, path, response.status_code)
            raise err
        try:
            doc = response.json()
        except ValueError:
            raise KubeAPIError(
                "the API server answered with something that is not JSON",
                status=response.status_code,
                verb=method,
                path=path,
            ) from None
        if not isinstance(doc, dict):
            raise KubeAPIError(
                "unexpected answer", status=response.status_code, verb=method, path=path
            )
        return doc

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def list_all(
        self, path: str, *, label_selector: str | None = None, page_size: int = 500
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``metadata.continue`` page by page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"limit": str(page_size)}
            if label_selector:
                params["labelSelector"] = label_selector
            if token:
                params["continue"] = token
            page = await self.request("GET", path, params=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    async def patch(
        self,
        path: str,
        body: Any,
        *,
        content_type: str = MERGE_PATCH,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", path, params=params, body=body, content_type=content_type
        )

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def delete(self, path: str) -> dict[str, Any]:
        return await self.request("DELETE", path)


def connect(settings: KubeAccessSettings) -> KubeConnection:
    """The connection the settings describe (in-cluster service account or a kubeconfig)."""
    if settings.mode == "in-cluster":
        return in_cluster(
            sa_dir=settings.service_account_dir,
            host=settings.host,
            port=settings.port,
            refresh_seconds=settings.token_refresh_seconds,
        )
    return from_kubeconfig(
        settings.kubeconfig,
        context=settings.context,
        refresh_seconds=settings.token_refresh_seconds,
    )


__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "Forbidden",
    "KubeClient",
    "connect",
    "describe_request",
    "required_permission",
]
