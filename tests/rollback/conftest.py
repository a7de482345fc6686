"""Fixtures of the rollback tests: a real kube-apiserver (session), namespaces, API clients.

The binaries are built (or found in the cache) once, before the first test runs, outside any
per-test timeout: a cold build of kube-apiserver takes minutes. Nothing here skips: without Go,
or if the build fails, the session fails with the build's output.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rollback.kube.auth import BearerToken, KubeConnection
from rollback.kube.client import KubeClient
from tests.kube_fixture import KubeAPIServer, ensure_binaries, rollout_crd, start_kube_apiserver

_bin_dir: list[Path] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Build kube-apiserver/etcd before the first test if any selected test needs them."""
    if session.config.option.collectonly:
        return
    if any(_needs_kube(i) for i in session.items):
        _bin_dir.append(ensure_binaries())


def _needs_kube(item: pytest.Item) -> bool:
    return "kube_apiserver" in getattr(item, "fixturenames", ()) or (
        item.get_closest_marker("integration") is not None
        and Path(str(item.path)).is_relative_to(Path(__file__).parent)
    )


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    bin_dir = _bin_dir[0] if _bin_dir else ensure_binaries()
    server = start_kube_apiserver(tmp_path_factory.mktemp("kube"), bin_dir=bin_dir)
    try:
        server.install_rollout_crd(rollout_crd(bin_dir.parent))
        yield server
    finally:
        server.stop()


@pytest.fixture
def namespace(kube_apiserver: KubeAPIServer) -> str:
    """A fresh namespace per test (left behind: there is no namespace controller to delete it)."""
    name = f"t-{secrets.token_hex(4)}"
    with kube_apiserver.admin() as c:
        r = c.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert r.status_code == 201, r.text
    return name


def connection(server: KubeAPIServer, token: str) -> KubeConnection:
    return KubeConnection(server=server.url, verify=server.ssl_context(), auth=BearerToken(token))


@pytest.fixture
async def admin_kube(kube_apiserver: KubeAPIServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(connection(kube_apiserver, kube_apiserver.admin_token)) as kube:
        yield kube


@pytest.fixture
async def user_kube(kube_apiserver: KubeAPIServer) -> AsyncIterator[KubeClient]:
    """The static-token user ``canary-sentinel``, with no RBAC bindings at all."""
    async with KubeClient(connection(kube_apiserver, kube_apiserver.user_token)) as kube:
        yield kube
