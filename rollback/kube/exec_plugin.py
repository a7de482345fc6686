"""Kubeconfig ``exec`` credential plugins (``aws eks get-token``, ``gke-gcloud-auth-plugin``,
``kubelogin``): the bearer token a command prints, as kubectl obtains it.

Who calls this: :func:`rollback.kube.kubeconfig.from_kubeconfig` for a user with ``exec:``.
What it promises (the ``client.authentication.k8s.io`` ExecCredential contract, v1 and v1beta1):

- the command runs with the kubeconfig's ``args`` and ``env`` on top of our environment, no
  stdin, and ``KUBERNETES_EXEC_INFO`` set to an ExecCredential whose ``spec`` says it is not
  interactive (and, with ``provideClusterInfo``, carries the cluster);
- its stdout must be an ExecCredential of the same ``apiVersion`` with ``status.token``; the
  token is kept until ``status.expirationTimestamp`` (less a small margin) or, without one,
  until the server answers 401; a 401 runs the command again and resends once if the token
  changed;
- a plugin that needs a terminal (``interactiveMode: Always``), returns only a client
  certificate, fails, or prints something else is refused with a :class:`KubeConfigError` that
  names the command, its exit status and the end of its stderr, never the token;
- the command runs in a worker thread from the async client, so a slow plugin does not stall
  the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from rollback.kube.auth import RefreshingToken
from rollback.kube.errors import KubeConfigError

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXPIRY_MARGIN_SECONDS = 10.0  # renew this long before the plugin's stated expiry
RUN_TIMEOUT_SECONDS = 60.0


def _cluster_info(cluster: Mapping[str, Any], ca_pem: bytes | None) -> dict[str, Any]:
    """The ExecCredential ``spec.cluster`` for ``provideClusterInfo`` (CA data as base64)."""
    info: dict[str, Any] = {"server": str(cluster.get("server", ""))}
    if cluster.get("tls-server-name"):
        info["tls-server-name"] = str(cluster["tls-server-name"])
    if cluster.get("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    if ca_pem is not None:
        info["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = ext.get("extension")
    return info


class ExecPlugin(RefreshingToken):
    """Bearer tokens from a kubeconfig ``exec`` plugin (see the module). ``clock`` is wall-clock
    seconds (expiry timestamps are wall-clock), injectable for tests; ``runs`` counts how often
    the command ran."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        base: Path,
        cluster: Mapping[str, Any] | None = None,
        ca_pem: bytes | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.api_version = str(spec.get("apiVersion", ""))
        if self.api_version not in API_VERSIONS:
            raise KubeConfigError(
                f"kubeconfig exec plugin apiVersion {self.api_version!r} is not supported: use "
                f"{' or '.join(API_VERSIONS)}"
            )
        command = str(spec.get("command") or "")
        if not command:
            raise KubeConfigError("kubeconfig exec plugin has no command")
        if spec.get("interactiveMode") == "Always":
            raise KubeConfigError(
                f"kubeconfig exec plugin {command!r} needs a terminal (interactiveMode: Always); "
                "canary-sentinel runs unattended: configure the plugin to work without one"
            )
        # as kubectl: a relative command with a path separator is relative to the kubeconfig
        if os.sep in command and not os.path.isabs(command):
            command = str(base / command)
        self.argv = [command, *(str(a) for a in spec.get("args") or [])]
        self.install_hint = str(spec.get("installHint") or "")
        info: dict[str, Any] = {"interactive": False}
        if spec.get("provideClusterInfo") and cluster is not None:
            info["cluster"] = _cluster_info(cluster, ca_pem)
        exec_info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": info}
        # laid over the environment as it is at each run (cloud credentials may be refreshed
        # underneath us), unless ``environ`` pins it
        extra = {str(item["name"]): str(item["value"]) for item in spec.get("env") or []}
        extra["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
        self._extra_env = extra
        self._environ = environ
        self._clock = clock
        self._token: str | None = None
        self._expires = float("inf")
        self.runs = 0

    def token(self, *, force: bool = False) -> str:
        """The cached token, or a fresh one from the command when forced, absent or expiring."""
        if force or self._token is None or self._clock() >= self._expires:
            self._token, self._expires = self._run()
        return self._token

    def _run(self) -> tuple[str, float]:
        name = self.argv[0]
        self.runs += 1
        try:
            done = subprocess.run(
                self.argv,
                env={**(os.environ if self._environ is None else self._environ), **self._extra_env},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=RUN_TIMEOUT_SECONDS,
                check=False,
            )
        except FileNotFoundError:
            hint = f" ({self.install_hint.strip()})" if self.install_hint else ""
            raise KubeConfigError(f"kubeconfig exec plugin {name!r} was not found{hint}") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KubeConfigError(f"kubeconfig exec plugin {name!r} could not run: {exc}") from None
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", errors="replace").strip()[-500:]
            raise KubeConfigError(
                f"kubeconfig exec plugin {name!r} exited with {done.returncode}: {tail}"
            )
        return self._parse(done.stdout)

    def _parse(self, out: bytes) -> tuple[str, float]:
        name = self.argv[0]
        try:
            cred = json.loads(out)
        except ValueError:
            raise KubeConfigError(
                f"kubeconfig exec plugin {name!r} did not print an ExecCredential (not JSON)"
            ) from None
        if not isinstance(cred, dict) or cred.get("kind") != "ExecCredential":
            raise KubeConfigError(
                f"kubeconfig exec plugin {name!r} did not print an ExecCredential"
            )
        if cred.get("apiVersion") != self.api_version:
            raise KubeConfigError(
                f"kubeconfig exec plugin {name!r} answered in {cred.get('apiVersion')!r}, "
                f"not the {self.api_version!r} it was asked for"
            )
        status = cred.get("status") or {}
        token = status.get("token")
        if not token:
            what = (
                "a client certificate, which is not supported: use a plugin that returns a token"
                if status.get("clientCertificateData")
                else "no token"
            )
            raise KubeConfigError(f"kubeconfig exec plugin {name!r} returned {what}")
        expires = float("inf")
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                expires = datetime.fromisoformat(str(stamp)).timestamp() - EXPIRY_MARGIN_SECONDS
            except ValueError:
                raise KubeConfigError(
                    f"kubeconfig exec plugin {name!r} gave an expirationTimestamp that is not "
                    f"RFC 3339: {stamp!r}"
                ) from None
        return str(token), expires

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = await asyncio.to_thread(self.token)
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            fresh = await asyncio.to_thread(self.token, force=True)
            if fresh != used:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request

    def __repr__(self) -> str:  # never show the token
        return f"ExecPlugin({self.argv[0]!r})"
