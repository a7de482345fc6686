"""Unit tests of rollback.kube.client against httpx.MockTransport: error translation at the
boundary (with verb, path and the missing permission; no secrets), paging, request shape."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from rollback.kube.auth import BearerToken, KubeConnection
from rollback.kube.client import JSON_PATCH, KubeClient, required_permission
from rollback.kube.errors import (
    Conflict,
    Forbidden,
    KubeAPIError,
    KubeConnectionError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)

SECRET = "s3cr3t-token-value"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> KubeClient:
    conn = KubeConnection(server="https://k8s.test:6443", verify=True, auth=BearerToken(SECRET))
    return KubeClient(conn, transport=httpx.MockTransport(handler))


def status(code: int, reason: str, message: str) -> httpx.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}  # fmt: skip
    return httpx.Response(code, json=body)


FORBIDDEN_MSG = (
    'rollouts.argoproj.io "web" is forbidden: User "canary-sentinel" cannot patch resource '
    '"rollouts/status" in API group "argoproj.io" in the namespace "shop"'
)


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (401, Unauthorized, False),
        (403, Forbidden, False),
        (404, NotFound, False),
        (409, Conflict, True),
        (422, KubeAPIError, False),
        (429, TooManyRequests, True),
        (500, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
async def test_status_codes_translate_to_the_exception_tree(
    code: int, cls: type[KubeAPIError], retryable: bool
) -> None:
    async with client(lambda r: status(code, "Whatever", "the message")) as kube:
        with pytest.raises(cls) as info:
            await kube.patch("/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web", {})
    err = info.value
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status == code
    assert err.verb == "PATCH"
    assert err.path == "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web"
    assert SECRET not in str(err)


async def test_forbidden_names_the_missing_permission() -> None:
    path = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web/status"
    async with client(lambda r: status(403, "Forbidden", FORBIDDEN_MSG)) as kube:
        with pytest.raises(Forbidden) as info:
            await kube.patch(path, {"status": {"abort": True}})
    msg = str(info.value)
    assert "missing permission: patch rollouts/status in API group argoproj.io" in msg
    assert f"PATCH {path}" in msg
    assert FORBIDDEN_MSG in msg
    assert info.value.reason == "Forbidden"


def test_required_permission() -> None:
    assert required_permission("GET", "/apis/apps/v1/namespaces/a/replicasets?x=1") == (
        "list replicasets in API group apps in namespace a"
    )
    assert required_permission("GET", "/apis/apps/v1/namespaces/a/deployments/web") == (
        "get deployments in API group apps in namespace a"
    )
    assert required_permission("POST", "/api/v1/namespaces") == (
        'create namespaces in API group "" (core) cluster-wide'
    )
    assert required_permission("PATCH", "/weird") == "PATCH /weird"


async def test_429_keeps_retry_after() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        resp = status(429, "TooManyRequests", "slow down")
        resp.headers["Retry-After"] = "2"
        return resp

    async with client(handler) as kube:
        with pytest.raises(TooManyRequests) as info:
            await kube.get("/apis/apps/v1/namespaces/a/deployments/web")
    assert info.value.retry_after == 2.0


async def test_error_without_status_body() -> None:
    async with client(lambda r: httpx.Response(502, text="<html>bad gateway</html>")) as kube:
        with pytest.raises(ServerError) as info:
            await kube.get("/api/v1/namespaces")
    assert "Bad Gateway" in str(info.value)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ConnectTimeout("x")]
)
async def test_transport_failures_are_retryable_connection_errors(exc: Exception) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise exc

    async with client(handler) as kube:
        with pytest.raises(KubeConnectionError) as info:
            await kube.get("/apis/apps/v1/namespaces/a/deployments/web")
    assert info.value.retryable
    assert info.value.verb == "GET"
    assert info.value.status is None
    assert SECRET not in str(info.value)


async def test_request_shape_and_auth_header() -> None:
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, json={"kind": "Deployment"})

    patch = [{"op": "replace", "path": "/spec/template", "value": {}}]
    async with client(handler) as kube:
        await kube.patch("/apis/apps/v1/namespaces/a/deployments/web", patch,
                         content_type=JSON_PATCH, params={"fieldManager": "x"})  # fmt: skip
    r = seen[0]
    assert r.method == "PATCH"
    assert r.headers["Content-Type"] == "application/json-patch+json"
    assert r.headers["Authorization"] == f"Bearer {SECRET}"
    assert r.url.params["fieldManager"] == "x"
    assert json.loads(r.content) == patch


async def test_list_all_follows_continue() -> None:
    pages = {
        None: {"items": [{"n": 1}, {"n": 2}], "metadata": {"continue": "tok1"}},
        "tok1": {"items": [{"n": 3}], "metadata": {"continue": "tok2"}},
        "tok2": {"items": [], "metadata": {}},
    }
    seen: list[httpx.QueryParams] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r.url.params)
        return httpx.Response(200, json=pages[r.url.params.get("continue")])

    async with client(handler) as kube:
        items = await kube.list_all("/apis/apps/v1/namespaces/a/replicasets",
                                    label_selector="app=web", page_size=2)  # fmt: skip
    assert [i["n"] for i in items] == [1, 2, 3]
    assert [p.get("continue") for p in seen] == [None, "tok1", "tok2"]
    assert all(p["labelSelector"] == "app=web" and p["limit"] == "2" for p in seen)


def test_auth_repr_hides_the_token() -> None:
    assert SECRET not in repr(BearerToken(SECRET))
