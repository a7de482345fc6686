"""Unit tests of in-cluster auth (token re-read on rotation) and kubeconfig parsing."""

from __future__ import annotations

import base64
import ssl
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rollback.kube.auth import BearerToken, KubeConnection, TokenFile, in_cluster
from rollback.kube.client import KubeClient
from rollback.kube.errors import KubeConfigError
from rollback.kube.kubeconfig import from_kubeconfig, kubeconfig_paths
from tests.kube_fixture import make_pki


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_pki(d)
    return d


def sa_dir(tmp_path: Path, pki: Path, token: str = "token-1") -> Path:
    d = tmp_path / "sa"
    d.mkdir()
    (d / "token").write_text(token + "\n")
    (d / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (d / "namespace").write_text("canary-sentinel")
    return d


def test_token_file_is_reread_at_most_every_refresh_seconds(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("one")
    clock = Clock()
    auth = TokenFile(f, refresh_seconds=60, clock=clock)
    assert auth.token() == "one"
    f.write_text("two")  # the kubelet rotated it
    clock.t = 59.9
    assert auth.token() == "one"
    assert auth.reads == 1
    clock.t = 60.0
    assert auth.token() == "two"
    assert auth.reads == 2


async def test_rotated_token_is_used_on_requests_and_after_a_401(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("old")
    clock = Clock()
    seen: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r.headers["Authorization"])
        ok = r.headers["Authorization"] == f"Bearer {f.read_text()}"
        return httpx.Response(200 if ok else 401, json={"kind": "Status"} if not ok else {})

    conn = KubeConnection("https://k8s.test", True, TokenFile(f, clock=clock))
    async with KubeClient(conn, transport=httpx.MockTransport(handler)) as kube:
        await kube.get("/api/v1/namespaces/a")
        f.write_text("new")
        # Within the refresh window the cached token is sent, gets 401, is re-read, resent.
        clock.t = 10
        await kube.get("/api/v1/namespaces/a")
        clock.t = 200
        f.write_text("newer")
        await kube.get("/api/v1/namespaces/a")
    assert seen == ["Bearer old", "Bearer old", "Bearer new", "Bearer newer"]


def test_missing_or_empty_token_file(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="cannot read token file"):
        TokenFile(tmp_path / "nope").token()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KubeConfigError, match="is empty"):
        TokenFile(tmp_path / "empty").token()


def test_in_cluster_connection(tmp_path: Path, pki: Path) -> None:
    d = sa_dir(tmp_path, pki)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    conn = in_cluster(sa_dir=d, environ=env)
    assert conn.server == "https://10.0.0.1:443"
    assert conn.namespace == "canary-sentinel"
    assert isinstance(conn.verify, ssl.SSLContext)
    assert isinstance(conn.auth, TokenFile)
    assert conn.auth.token() == "token-1"
    v6 = in_cluster(sa_dir=d, environ={"KUBERNETES_SERVICE_HOST": "fd00::1",
                                       "KUBERNETES_SERVICE_PORT": "443"})  # fmt: skip
    assert v6.server == "https://[fd00::1]:443"
    assert in_cluster(sa_dir=d, host="127.0.0.1", port=6443, environ={}).server == (
        "https://127.0.0.1:6443"
    )


def test_in_cluster_errors(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(KubeConfigError, match="not running in a cluster"):
        in_cluster(sa_dir=tmp_path, environ={})
    with pytest.raises(KubeConfigError, match=r"CA .* is missing"):
        in_cluster(sa_dir=tmp_path, host="h", port=1, environ={})
    d = sa_dir(tmp_path, pki)
    (d / "token").unlink()
    with pytest.raises(KubeConfigError, match="cannot read token file"):
        in_cluster(sa_dir=d, host="h", port=1, environ={})


# --- kubeconfig ---------------------------------------------------------------------------


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def config(
    *,
    clusters: dict[str, Any],
    users: dict[str, Any],
    contexts: dict[str, Any],
    current: str | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": k, "cluster": v} for k, v in clusters.items()],
        "users": [{"name": k, "user": v} for k, v in users.items()],
        "contexts": [{"name": k, "context": v} for k, v in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_kubeconfig_paths(home: Path) -> None:
    assert kubeconfig_paths(environ={}) == [home / ".kube" / "config"]
    assert kubeconfig_paths(environ={"KUBECONFIG": "/a:/b::"}) == [Path("/a"), Path("/b")]
    assert kubeconfig_paths("/x", environ={"KUBECONFIG": "/a"}) == [Path("/x")]


def test_token_user_ca_file_relative_to_kubeconfig_and_namespace(tmp_path: Path, pki: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    path = write(tmp_path / "config", config(
        clusters={"c": {"server": "https://127.0.0.1:6443/",
                        "certificate-authority": "certs/ca.crt",
                        "tls-server-name": "kubernetes"}},
        users={"u": {"token": "abc"}},
        contexts={"ctx": {"cluster": "c", "user": "u", "namespace": "shop"}},
        current="ctx",
    ))  # fmt: skip
    conn = from_kubeconfig(path)
    assert conn.server == "https://127.0.0.1:6443"
    assert conn.namespace == "shop"
    assert conn.sni_hostname == "kubernetes"
    assert isinstance(conn.auth, BearerToken)
    assert isinstance(conn.verify, ssl.SSLContext)
    assert conn.verify.verify_mode == ssl.CERT_REQUIRED


def test_kubeconfig_merge_first_file_wins_and_explicit_context(tmp_path: Path, pki: Path) -> None:
    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    a = write(tmp_path / "a", config(
        clusters={"c": {"server": "https://a:1", "certificate-authority-data": ca}},
        users={"u": {"token": "from-a"}},
        contexts={"one": {"cluster": "c", "user": "u"}},
        current="one",
    ))  # fmt: skip
    b = write(tmp_path / "b", config(
        clusters={"c": {"server": "https://b:2"}, "d": {"server": "https://d:3",
                                                       "insecure-skip-tls-verify": True}},
        users={"u": {"token": "from-b"}, "v": {"tokenFile": "tok"}},
        contexts={"one": {"cluster": "d", "user": "v"}, "two": {"cluster": "d", "user": "v"}},
        current="two",
    ))  # fmt: skip
    (tmp_path / "tok").write_text("file-token")
    env = {"KUBECONFIG": f"{a}:{tmp_path / 'missing'}:{b}"}
    conn = from_kubeconfig(environ=env)
    assert conn.server == "https://a:1"
    assert conn.namespace == "default"
    two = from_kubeconfig(environ=env, context="two")
    assert two.server == "https://d:3"
    assert isinstance(two.verify, ssl.SSLContext)
    assert two.verify.verify_mode == ssl.CERT_NONE
    assert isinstance(two.auth, TokenFile)
    assert two.auth.token() == "file-token"


def test_client_certificate_data_and_files(tmp_path: Path, pki: Path) -> None:
    crt, key = (pki / "admin-client.crt").read_bytes(), (pki / "admin-client.key").read_bytes()
    for user in (
        {"client-certificate-data": base64.b64encode(crt).decode(),
         "client-key-data": base64.b64encode(key).decode()},
        {"client-certificate": str(pki / "admin-client.crt"),
         "client-key": str(pki / "admin-client.key")},
    ):  # fmt: skip
        path = write(tmp_path / "config", config(
            clusters={"c": {"server": "https://h:1", "certificate-authority": str(pki / "ca.crt")}},
            users={"u": user}, contexts={"x": {"cluster": "c", "user": "u"}}, current="x",
        ))  # fmt: skip
        conn = from_kubeconfig(path)
        assert conn.auth is None
        assert isinstance(conn.verify, ssl.SSLContext)
    # No temporary key file is left behind.
    assert not list(Path(tempfile.gettempdir()).glob("kubeconfig-*.pem"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("current-context"), "no current-context"),
        (lambda d: d.update({"current-context": "nope"}), "no context 'nope'"),
        (lambda d: d["contexts"][0]["context"].update(cluster="zz"), "unknown cluster 'zz'"),
        (lambda d: d["contexts"][0]["context"].update(user="zz"), "unknown user 'zz'"),
        (lambda d: d["users"][0].update(user={"auth-provider": {"name": "gcp"}}), "auth-provider"),
        (lambda d: d["users"][0].update(user={"client-key": "/k"}), "without its"),
        (lambda d: d["clusters"][0]["cluster"].update(server="ftp://x"), "no usable server"),
        (
            lambda d: d["clusters"][0]["cluster"].update({"certificate-authority-data": "!!"}),
            "not valid base64",
        ),
    ],
)
def test_kubeconfig_errors(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = config(
        clusters={"c": {"server": "https://h:1"}},
        users={"u": {"token": "t"}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        current="x",
    )
    mutate(doc)
    with pytest.raises(KubeConfigError, match=message) as info:
        from_kubeconfig(write(tmp_path / "config", doc))
    assert "t\n" not in str(info.value)


def test_no_kubeconfig_at_all(home: Path) -> None:
    with pytest.raises(KubeConfigError, match="no kubeconfig found"):
        from_kubeconfig(environ={})
