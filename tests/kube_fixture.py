"""A real kube-apiserver (and etcd) on 127.0.0.1 for integration tests, plain functions.

Who calls this: ``tests/rollback/conftest.py`` (the session-scoped ``kube_apiserver`` fixture),
and anyone who wants a throw-away API server in a script. What it promises:

- :func:`ensure_binaries` returns the directory holding ``kube-apiserver`` and ``etcd``, running
  ``tools/kube/build.sh`` (a no-op when its cache marker exists) so tests never skip; it fails
  loudly with the build's output if Go is missing or the build breaks.
- :func:`start_kube_apiserver` makes a throw-away CA, a serving certificate for
  ``IP:127.0.0.1``, an admin client certificate, a service-account key (``openssl`` CLI), a
  static token file (``admin`` in ``system:masters``; ``canary-sentinel`` with no groups),
  starts etcd and kube-apiserver on free loopback ports, and returns once ``/readyz`` answers
  200 (polled under a deadline; if a process exits, the error shows the tail of its log).
- :meth:`KubeAPIServer.install_rollout_crd` creates the Argo Rollouts CRD taken from the
  ``github.com/argoproj/argo-rollouts`` Go module (converted to JSON once and cached next to
  the binaries) and waits for ``Established``.
- :meth:`KubeAPIServer.stop` terminates both processes (and waits for them).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from detector.localbroker import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "tools" / "kube" / "build.sh"
ARGO_ROLLOUTS_MODULE = "github.com/argoproj/argo-rollouts"
ARGO_ROLLOUTS_VERSION = "v1.9.1"
SENTINEL_USER = "canary-sentinel"


class KubeFixtureError(RuntimeError):
    """The test API server could not be built or started; the message says why."""


def ensure_binaries(*, timeout: float = 3600.0) -> Path:
    """The ``bin`` directory with ``kube-apiserver`` and ``etcd``, built if missing."""
    if shutil.which("go") is None:
        raise KubeFixtureError("`go` is not on PATH: it is needed to build kube-apiserver/etcd")
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise KubeFixtureError(
            f"tools/kube/build.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    for exe in ("kube-apiserver", "etcd"):
        if not os.access(bin_dir / exe, os.X_OK):
            raise KubeFixtureError(f"{bin_dir / exe} missing after tools/kube/build.sh")
    return bin_dir


def rollout_crd(cache_dir: Path) -> dict[str, Any]:
    """The Rollout CRD of Argo Rollouts ``ARGO_ROLLOUTS_VERSION`` as a JSON object, read from
    the Go module (``go mod download``), cached as JSON in ``cache_dir``."""
    cached = cache_dir / f"argo-rollouts-{ARGO_ROLLOUTS_VERSION}-rollout-crd.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    with tempfile.TemporaryDirectory() as outside_any_module:
        proc = subprocess.run(
            ["go", "mod", "download", "-json", f"{ARGO_ROLLOUTS_MODULE}@{ARGO_ROLLOUTS_VERSION}"],
            capture_output=True,
            text=True,
            cwd=outside_any_module,
            timeout=600,
            check=False,
        )
    if proc.returncode != 0:
        raise KubeFixtureError(
            f"go mod download of argo-rollouts failed:\n{proc.stdout}{proc.stderr}"
        )
    module_dir = Path(json.loads(proc.stdout)["Dir"])
    crd = yaml.safe_load((module_dir / "manifests" / "crds" / "rollout-crd.yaml").read_text())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(crd))
    tmp.replace(cached)
    return dict(crd)


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KubeFixtureError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _sign(d: Path, name: str, subject: str, extensions: str) -> None:
    """Key ``name.key`` and certificate ``name.crt`` signed by ``ca.crt``."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(
        extensions + "\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
             "-extfile", f"{name}.ext", cwd=d)  # fmt: skip


def make_pki(d: Path) -> None:
    """CA, serving certificate (SAN IP:127.0.0.1), admin client certificate, SA key."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=canary-sentinel-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _sign(
        d,
        "server",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost",
    )
    _sign(
        d,
        "admin-client",
        "/O=system:masters/CN=cert-admin",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth",
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


@dataclass
class KubeAPIServer:
    """A running etcd + kube-apiserver pair. ``url`` is ``https://127.0.0.1:<port>``."""

    workdir: Path
    url: str
    port: int
    admin_token: str
    user_token: str
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def admin(self) -> httpx.Client:
        """A synchronous admin client for test setup (``system:masters``)."""
        return httpx.Client(
            base_url=self.url,
            verify=self.ssl_context(),
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )

    def write_kubeconfig(
        self, path: Path, *, token: str | None = None, client_cert: bool = False
    ) -> Path:
        """A kubeconfig for this server (for kubectl and the kubeconfig code path): a bearer
        ``token`` (default: admin's), or the admin client certificate."""
        user: dict[str, Any]
        if client_cert:
            user = {
                "client-certificate": str(self.workdir / "admin-client.crt"),
                "client-key": str(self.workdir / "admin-client.key"),
            }
        else:
            user = {"token": token or self.admin_token}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "test-user", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test-user"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def install_rollout_crd(self, crd: dict[str, Any], *, deadline_seconds: float = 60.0) -> None:
        name = crd["metadata"]["name"]
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        with self.admin() as c:
            r = c.post(base, json=crd)
            if r.status_code not in (201, 409):
                raise KubeFixtureError(f"creating CRD {name}: {r.status_code} {r.text[:500]}")
            deadline = time.monotonic() + deadline_seconds
            while True:
                got = c.get(f"{base}/{name}").json()
                conds = (got.get("status") or {}).get("conditions") or []
                if any(x["type"] == "Established" and x["status"] == "True" for x in conds):
                    break
                if time.monotonic() > deadline:
                    raise KubeFixtureError(f"CRD {name} not Established: {conds}")
                time.sleep(0.1)  # poll interval, under the deadline
            # Established does not mean the new API is served yet: wait for discovery too.
            group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
            while c.get(f"/apis/{group}/{version}").status_code != 200:
                if time.monotonic() > deadline:
                    raise KubeFixtureError(f"/apis/{group}/{version} never served")
                time.sleep(0.1)  # poll interval, under the deadline

    def check_alive(self) -> None:
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                raise KubeFixtureError(
                    f"{name} exited with {proc.returncode}; last lines of {log}:\n{_tail(log)}"
                )

    def stop(self) -> None:
        # The API server first, then its storage.
        for _name, proc, _log in reversed(self.procs):
            stop_process(proc, timeout=20)
        self.procs.clear()


def _spawn(name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_ready(server: KubeAPIServer, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    last = "no answer yet"
    with server.admin() as c:
        while True:
            server.check_alive()
            try:
                r = c.get("/readyz", timeout=5)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[-300:]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}:\n{_tail(p)}" for n, _, p in server.procs)
                raise KubeFixtureError(f"kube-apiserver not ready: {last}\n{logs}")
            time.sleep(0.2)  # poll interval, under the deadline


def start_kube_apiserver(
    workdir: Path, *, bin_dir: Path | None = None, deadline_seconds: float = 120.0
) -> KubeAPIServer:
    """Start etcd and kube-apiserver in ``workdir`` and wait until ready (see module doc)."""
    bin_dir = bin_dir or ensure_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    make_pki(workdir)
    admin_token = secrets.token_hex(16)
    user_token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(
        f'{admin_token},admin,admin-uid,"system:masters"\n'
        f"{user_token},{SENTINEL_USER},canary-sentinel-uid\n"
    )
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = KubeAPIServer(
        workdir=workdir,
        url=f"https://127.0.0.1:{api_port}",
        port=api_port,
        admin_token=admin_token,
        user_token=user_token,
    )
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        server.procs.append((
            "etcd",
            _spawn("etcd", [
                str(bin_dir / "etcd"), "--data-dir", str(workdir / "etcd"),
                "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"default={peer_url}", "--unsafe-no-fsync",
            ], workdir / "etcd.log"),
            workdir / "etcd.log",
        ))  # fmt: skip
        server.procs.append((
            "kube-apiserver",
            _spawn("kube-apiserver", [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={workdir / 'server.crt'}",
                f"--tls-private-key-file={workdir / 'server.key'}",
                f"--client-ca-file={workdir / 'ca.crt'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                f"--token-auth-file={workdir / 'tokens.csv'}",
                f"--service-account-issuer=https://127.0.0.1:{api_port}",
                f"--service-account-key-file={workdir / 'sa.key'}",
                f"--service-account-signing-key-file={workdir / 'sa.key'}",
                "--disable-admission-plugins=ServiceAccount",
                f"--cert-dir={workdir / 'certs'}",
                "--profiling=false",
            ], workdir / "kube-apiserver.log"),
            workdir / "kube-apiserver.log",
        ))  # fmt: skip
        _wait_ready(server, deadline_seconds)
    except BaseException:
        server.stop()
        raise
    return server
