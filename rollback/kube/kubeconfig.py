"""Build a :class:`~rollback.kube.auth.KubeConnection` from a kubeconfig (local development).

Who calls this: :func:`rollback.kube.client.connect` when ``rollback.kube.mode`` is
``kubeconfig``, and tests. What it promises: the same choice ``kubectl`` makes for the common
cases: the files of ``$KUBECONFIG`` (``:``-separated, the first file that names an item wins)
or ``~/.kube/config``; ``current-context`` (or an explicit context) picks cluster, user and
namespace. Supported: ``server``, ``certificate-authority[-data]``, ``insecure-skip-tls-verify``,
``tls-server-name``; users with ``token``, ``tokenFile``, ``client-certificate[-data]`` and
``client-key[-data]``, or an ``exec`` credential plugin that returns a token
(:mod:`rollback.kube.exec_plugin`). ``auth-provider`` (removed from kubectl) is refused with a
clear :class:`KubeConfigError`. Relative paths are relative to the
kubeconfig file that named them, as in kubectl.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from rollback.kube.auth import (
    TOKEN_REFRESH_SECONDS,
    BearerToken,
    KubeConnection,
    TokenFile,
    ssl_context,
)
from rollback.kube.errors import KubeConfigError
from rollback.kube.exec_plugin import ExecPlugin


def kubeconfig_paths(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """The files to read, in precedence order: ``explicit``, else ``$KUBECONFIG``, else
    ``~/.kube/config``."""
    if explicit is not None:
        return [Path(explicit)]
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG", "")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _load(paths: list[Path]) -> tuple[dict[str, Any], dict[str, dict[str, Path]]]:
    """Merge the files as kubectl does; remember which file named each cluster and user so
    their relative paths resolve against that file's directory."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}}
    origin: dict[str, dict[str, Path]] = {"clusters": {}, "users": {}}
    read_any = False
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue  # kubectl ignores missing files in $KUBECONFIG
        except OSError as exc:
            raise KubeConfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
        read_any = True
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise KubeConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise KubeConfigError(f"kubeconfig {path} is not a mapping")
        if "current-context" in doc and doc["current-context"] and "current" not in merged:
            merged["current"] = str(doc["current-context"])
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                name = str(item.get("name", ""))
                if name and name not in merged[section]:
                    merged[section][name] = item.get(inner) or {}
                    if section in origin:
                        origin[section][name] = path.parent
    if not read_any:
        raise KubeConfigError(f"no kubeconfig found (looked at {', '.join(map(str, paths))})")
    return merged, origin


def _decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KubeConfigError(f"kubeconfig {what} is not valid base64") from None


@contextlib.contextmanager
def _as_file(data: bytes) -> Iterator[str]:
    """ssl.load_cert_chain only reads files: hold inline key material in a private temporary
    file for the duration of the load, then delete it."""
    fd, name = tempfile.mkstemp(prefix="kubeconfig-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield name
    finally:
        os.unlink(name)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _client_cert(ctx: ssl.SSLContext, user: dict[str, Any], base: Path) -> None:
    has_cert = "client-certificate" in user or "client-certificate-data" in user
    has_key = "client-key" in user or "client-key-data" in user
    if not has_cert and not has_key:
        return
    if has_cert != has_key:
        raise KubeConfigError(
            "kubeconfig user has a client certificate without its key, or a key without its "
            "certificate"
        )
    with contextlib.ExitStack() as stack:
        if "client-certificate-data" in user:
            cert = stack.enter_context(
                _as_file(_decode(str(user["client-certificate-data"]), "client-certificate-data"))
            )
        else:
            cert = str(_resolve(base, str(user["client-certificate"])))
        if "client-key-data" in user:
            key = stack.enter_context(
                _as_file(_decode(str(user["client-key-data"]), "client-key-data"))
            )
        else:
            key = str(_resolve(base, str(user["client-key"])))
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise KubeConfigError(f"cannot load kubeconfig client certificate: {exc}") from None


def from_kubeconfig(
    path: str | Path | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    refresh_seconds: float = TOKEN_REFRESH_SECONDS,
    clock: Callable[[], float] | None = None,
) -> KubeConnection:
    """The connection of ``context`` (default: ``current-context``) of the kubeconfig at
    ``path`` (default: ``$KUBECONFIG`` or ``~/.kube/config``)."""
    merged, origin = _load(kubeconfig_paths(path, environ))
    name = context or merged.get("current")
    if not name:
        raise KubeConfigError("kubeconfig has no current-context and no context was given")
    ctx_entry = merged["contexts"].get(name)
    if ctx_entry is None:
        raise KubeConfigError(f"kubeconfig has no context {name!r}")
    cluster_name = str(ctx_entry.get("cluster", ""))
    cluster = merged["clusters"].get(cluster_name)
    if cluster is None:
        raise KubeConfigError(f"kubeconfig context {name!r} names unknown cluster {cluster_name!r}")
    user_name = str(ctx_entry.get("user", ""))
    user: dict[str, Any] = merged["users"].get(user_name) or {}
    if user_name and user_name not in merged["users"]:
        raise KubeConfigError(f"kubeconfig context {name!r} names unknown user {user_name!r}")
    if "auth-provider" in user:
        raise KubeConfigError(
            f"kubeconfig user {user_name!r} uses an `auth-provider` plugin (removed from kubectl "
            "in 1.26), which is not supported: use its `exec` plugin, a token, tokenFile or "
            "client certificate"
        )

    server = str(cluster.get("server", "")).rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"kubeconfig cluster {cluster_name!r} has no usable server URL")
    cbase = origin["clusters"].get(cluster_name, Path.cwd())
    ubase = origin["users"].get(user_name, Path.cwd())
    pem: bytes | None = None
    if "certificate-authority-data" in cluster:
        pem = _decode(str(cluster["certificate-authority-data"]), "certificate-authority-data")
        ctx = ssl_context(cadata=pem.decode("ascii", errors="replace"))
    elif "certificate-authority" in cluster:
        ca_file = _resolve(cbase, str(cluster["certificate-authority"]))
        ctx = ssl_context(cafile=ca_file)
        pem = ca_file.read_bytes()
    else:
        ctx = ssl_context(insecure=bool(cluster.get("insecure-skip-tls-verify", False)))
    if cluster.get("insecure-skip-tls-verify") and (
        "certificate-authority-data" in cluster or "certificate-authority" in cluster
    ):
        raise KubeConfigError(
            f"kubeconfig cluster {cluster_name!r} sets both a CA and insecure-skip-tls-verify"
        )
    _client_cert(ctx, user, ubase)

    auth: httpx.Auth | None = None
    if user.get("token"):
        auth = BearerToken(str(user["token"]))
    elif user.get("tokenFile"):
        kw: dict[str, Any] = {"refresh_seconds": refresh_seconds}
        if clock is not None:
            kw["clock"] = clock
        tf = TokenFile(_resolve(ubase, str(user["tokenFile"])), **kw)
        tf.token()
        auth = tf
    elif user.get("exec"):
        # the plugin gets this process's environment (its PATH, cloud credentials), as kubectl
        # gives it; ``environ`` above only says where kubeconfigs are
        plugin = ExecPlugin(user["exec"], base=ubase, cluster=cluster, ca_pem=pem)
        plugin.token()  # fail at start, not at the first rollback
        auth = plugin
    return KubeConnection(
        server=server,
        verify=ctx,
        auth=auth,
        namespace=str(ctx_entry.get("namespace") or "default"),
        sni_hostname=str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
    )
