"""How the client reaches and authenticates to the API server: in-cluster service account.

Who calls this: :func:`rollback.kube.client.connect` (from the rollback settings) and tests,
which point ``sa_dir``, ``host`` and ``port`` at a temporary directory and a local API server.
What it promises: a :class:`KubeConnection` whose ``verify`` is an :class:`ssl.SSLContext`
trusting exactly the cluster CA, and whose ``auth`` re-reads the projected token file at most
every ``refresh_seconds`` (the kubelet rotates it about hourly), and once more on a 401.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from rollback.kube.errors import KubeConfigError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KubeConnection:
    """Everything needed to talk to one API server. ``namespace`` is the default namespace of
    the credentials (in-cluster: the pod's; kubeconfig: the context's); ``sni_hostname`` is the
    kubeconfig ``tls-server-name`` (checked against the certificate instead of the URL host)."""

    server: str
    verify: ssl.SSLContext | bool
    auth: httpx.Auth | None
    namespace: str = "default"
    sni_hostname: str | None = None


class BearerToken(httpx.Auth):
    """A fixed bearer token (kubeconfig ``token:``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:  # never show the token
        return "BearerToken(<redacted>)"


class RefreshingToken(httpx.Auth):
    """A bearer token that may change underneath us: ``token(force=True)`` fetches it again.
    A 401 fetches it once more and, if it changed, resends the request with it."""

    def token(self, *, force: bool = False) -> str:
        raise NotImplementedError

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self.token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401 and self.token(force=True) != used:
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request


class TokenFile(RefreshingToken):
    """A bearer token read from a file that is rotated underneath us (the projected
    service-account token, kubeconfig ``tokenFile:``).

    The file is read when the cached copy is older than ``refresh_seconds`` on ``clock`` (a
    monotonic clock, injectable for tests), and again when the server answers 401, since the
    kubelet may have rotated it since the last read; the request is then sent once more if the
    token changed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        refresh_seconds: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._token: str | None = None
        self._read_at = 0.0
        self.reads = 0  # how many times the file was read; tests assert on it

    def token(self, *, force: bool = False) -> str:
        now = self._clock()
        if force or self._token is None or now - self._read_at >= self.refresh_seconds:
            try:
                token = self.path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise KubeConfigError(
                    f"cannot read token file {self.path}: {exc.strerror}"
                ) from None
            if not token:
                raise KubeConfigError(f"token file {self.path} is empty")
            self._token = token
            self._read_at = now
            self.reads += 1
        return self._token

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"


def ssl_context(
    *, cafile: str | Path | None = None, cadata: str | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """A client TLS context trusting ``cafile``/``cadata`` (PEM), or the system store when
    neither is given. ``insecure`` turns verification off (kubeconfig
    ``insecure-skip-tls-verify``), which only a development cluster should use."""
    try:
        if insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if cafile is None and cadata is None:
            return ssl.create_default_context()
        return ssl.create_default_context(
            cafile=str(cafile) if cafile is not None else None, cadata=cadata
        )
    except (OSError, ssl.SSLError) as exc:
        where = str(cafile) if cafile is not None else "certificate-authority-data"
        raise KubeConfigError(f"cannot load CA certificate from {where}: {exc}") from None


def _host_url(host: str, port: int | str) -> str:
    # An IPv6 service host (e.g. fd00::1) must be bracketed in a URL.
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def in_cluster(
    *,
    sa_dir: str | Path = SERVICE_ACCOUNT_DIR,
    host: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
    refresh_seconds: float = TOKEN_REFRESH_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> KubeConnection:
    """The connection of a pod's service account: ``https://$KUBERNETES_SERVICE_HOST:
    $KUBERNETES_SERVICE_PORT`` (``host``/``port`` override), trusting ``sa_dir/ca.crt``,
    authenticating with ``sa_dir/token``; ``sa_dir/namespace`` is the default namespace."""
    env = os.environ if environ is None else environ
    host = host or env.get("KUBERNETES_SERVICE_HOST")
    port_s = str(port) if port is not None else env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port_s:
        raise KubeConfigError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset "
            "(set rollback.kube.mode: kubeconfig to use a kubeconfig instead)"
        )
    d = Path(sa_dir)
    ca = d / "ca.crt"
    if not ca.is_file():
        raise KubeConfigError(f"service-account CA {ca} is missing (is a token mounted?)")
    auth = TokenFile(d / "token", refresh_seconds=refresh_seconds, clock=clock)
    auth.token()  # fail at start, not at the first rollback
    ns_file = d / "namespace"
    namespace = ns_file.read_text(encoding="utf-8").strip() if ns_file.is_file() else "default"
    return KubeConnection(
        server=_host_url(host, port_s),
        verify=ssl_context(cafile=ca),
        auth=auth,
        namespace=namespace or "default",
    )
