"""Kubeconfig ``exec`` credential plugins: what the command is given, what its answer must be,
when it runs again, and how it fails (unit tests with a real plugin executable)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rollback.kube.errors import KubeConfigError
from rollback.kube.exec_plugin import EXPIRY_MARGIN_SECONDS, ExecPlugin
from rollback.kube.kubeconfig import from_kubeconfig

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

# The plugin prints the token held in $TOKEN_FILE, records what it was given in $PLUGIN_LOG, and
# answers in the apiVersion of its first argument (or the one it was asked for).
PLUGIN = """\
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open(os.environ["PLUGIN_LOG"], "a") as log:
    log.write(json.dumps({"info": info, "args": sys.argv[1:], "stdin_tty": sys.stdin.isatty()})
              + "\\n")
mode = os.environ.get("PLUGIN_MODE", "token")
if mode == "fail":
    sys.stderr.write("could not get a token: expired session\\n")
    sys.exit(3)
if mode == "garbage":
    print("hello")
    sys.exit(0)
status = {"token": open(os.environ["TOKEN_FILE"]).read().strip()}
if mode == "cert":
    status = {"clientCertificateData": "-----BEGIN CERTIFICATE-----", "clientKeyData": "k"}
if os.environ.get("EXPIRES"):
    status["expirationTimestamp"] = os.environ["EXPIRES"]
version = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else info["apiVersion"]
print(json.dumps({"apiVersion": version, "kind": "ExecCredential", "status": status}))
"""


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "get-token"
    path.parent.mkdir()
    path.write_text(f"#!{sys.executable}\n{PLUGIN}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "token").write_text("token-1\n")
    return path


def spec(tmp_path: Path, command: str, **extra: Any) -> dict[str, Any]:
    env = {"TOKEN_FILE": str(tmp_path / "token"), "PLUGIN_LOG": str(tmp_path / "log")}
    env.update(extra.pop("env", {}))
    return {
        "apiVersion": V1,
        "command": command,
        "args": extra.pop("args", ["-", "--region", "eu-west-1"]),
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "interactiveMode": "Never",
        **extra,
    }


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "log").read_text().splitlines()]


def test_the_plugin_gets_args_env_and_exec_info_and_its_token_is_kept(
    tmp_path: Path, plugin: Path
) -> None:
    auth = ExecPlugin(spec(tmp_path, str(plugin)), base=tmp_path)
    assert auth.token() == "token-1"
    (tmp_path / "token").write_text("token-2")
    assert auth.token() == "token-1"  # no expiry stated: kept until a 401
    assert auth.runs == 1
    (call,) = calls(tmp_path)
    assert call["args"] == ["-", "--region", "eu-west-1"]
    assert call["info"] == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    assert call["stdin_tty"] is False
    assert "token-1" not in repr(auth)


def test_the_token_is_renewed_before_it_expires(tmp_path: Path, plugin: Path) -> None:
    clock = Clock(1_800_000_000.0)
    expires = "2027-01-15T09:00:00Z"  # 1_800_000_000 + 3600
    s = spec(tmp_path, str(plugin), env={"EXPIRES": expires})
    auth = ExecPlugin(s, base=tmp_path, clock=clock)
    assert auth.token() == "token-1"
    (tmp_path / "token").write_text("token-2")
    clock.t += 3600 - EXPIRY_MARGIN_SECONDS - 1
    assert auth.token() == "token-1"
    clock.t += 1
    assert auth.token() == "token-2"
    assert auth.runs == 2


def test_a_401_runs_the_plugin_again_and_resends_once(tmp_path: Path, plugin: Path) -> None:
    auth = ExecPlugin(spec(tmp_path, str(plugin)), base=tmp_path)
    auth.token()
    (tmp_path / "token").write_text("token-2")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200 if request.headers["Authorization"] == "Bearer token-2" else 401)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        assert client.get("https://k8s.test/api").status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-2"]


async def test_the_async_client_runs_the_plugin_off_the_event_loop(
    tmp_path: Path, plugin: Path
) -> None:
    auth = ExecPlugin(spec(tmp_path, str(plugin)), base=tmp_path)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as client:
        assert (await client.get("https://k8s.test/api")).status_code == 200
    assert seen == ["Bearer token-1"]


def test_provide_cluster_info_passes_the_cluster(tmp_path: Path, plugin: Path) -> None:
    cluster = {
        "server": "https://k8s.test:6443",
        "tls-server-name": "api.k8s.test",
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"a": 1}}],
    }
    s = spec(tmp_path, str(plugin), provideClusterInfo=True)
    ExecPlugin(s, base=tmp_path, cluster=cluster, ca_pem=b"PEM").token()
    (call,) = calls(tmp_path)
    assert call["info"]["spec"]["cluster"] == {
        "server": "https://k8s.test:6443",
        "tls-server-name": "api.k8s.test",
        "certificate-authority-data": "UEVN",
        "config": {"a": 1},
    }


def test_a_relative_command_is_relative_to_the_kubeconfig(tmp_path: Path, plugin: Path) -> None:
    auth = ExecPlugin(spec(tmp_path, os.path.join("bin", "get-token")), base=tmp_path)
    assert auth.token() == "token-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apiVersion": "client.authentication.k8s.io/v1alpha1"}, "is not supported"),
        ({"interactiveMode": "Always"}, "needs a terminal"),
        ({"command": ""}, "has no command"),
        ({"command": "no-such-plugin", "installHint": "brew install it"}, "brew install it"),
        ({"env": {"PLUGIN_MODE": "fail"}}, "exited with 3: could not get a token"),
        ({"env": {"PLUGIN_MODE": "garbage"}}, "not JSON"),
        ({"env": {"PLUGIN_MODE": "cert"}}, "client certificate, which is not supported"),
        ({"args": [V1BETA1]}, "answered in 'client.authentication.k8s.io/v1beta1'"),
        ({"env": {"EXPIRES": "tomorrow"}}, "not RFC 3339"),
    ],
)
def test_plugin_failures_are_clear(
    tmp_path: Path, plugin: Path, change: dict[str, Any], message: str
) -> None:
    s = {**spec(tmp_path, str(plugin), env=change.pop("env", {})), **change}
    with pytest.raises(KubeConfigError, match=message) as info:
        ExecPlugin(s, base=tmp_path).token()
    assert "token-1" not in str(info.value)


def test_kubeconfig_user_with_exec_runs_it_at_start(tmp_path: Path, plugin: Path) -> None:
    doc: dict[str, Any] = {
        "clusters": [{"name": "c", "cluster": {"server": "https://h:1"}}],
        "users": [{"name": "u", "user": {"exec": spec(tmp_path, str(plugin), args=[])}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    conn = from_kubeconfig(path)
    assert isinstance(conn.auth, ExecPlugin) and conn.auth.runs == 1
    (tmp_path / "token").write_text("")
    doc["users"][0]["user"]["exec"]["env"].append({"name": "PLUGIN_MODE", "value": "fail"})
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KubeConfigError, match="exited with 3"):
        from_kubeconfig(path)


def test_the_plugin_sees_the_environment_as_it_is_when_it_runs(
    tmp_path: Path, plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = ExecPlugin(spec(tmp_path, str(plugin)), base=tmp_path)
    monkeypatch.setenv("PLUGIN_MODE", "fail")  # e.g. credentials that changed since the start
    with pytest.raises(KubeConfigError, match="exited with 3"):
        auth.token()
