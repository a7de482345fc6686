"""Alertmanager behind basic auth and TLS: a real Alertmanager with its own ``--web.config.file``
(integration), and the settings and secrets that configure the sink (unit)."""

from __future__ import annotations

import io
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from config.alerting import AlertmanagerSinkSettings, SecretError
from config.schema import SentinelConfig
from detector.core.types import Severity
from detector.explain import explain
from rollback.sinks.alertmanager_local import LocalAlertmanager, WebConfig
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.sinks.fake import sample_decision
from rollback.sinks.registry import SinkDeps, make_sink
from tests.kube_fixture import make_pki

USER = "sentinel"
PASSWORD = "alert-pass"
# bcrypt of PASSWORD at the lowest cost (4), so that Alertmanager checks it quickly
PASSWORD_HASH = "$2b$04$z1Q2KYknsYg4HkcrAt8c..YMsg/tNdugGXFKIAk7pMDSvnk/6nZyK"
PASSWORD_ENV = "TEST_ALERTMANAGER_PASSWORD"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("am-pki")
    make_pki(d)
    return d


@pytest.fixture(scope="module")
def secured(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    web = WebConfig(
        cert_file=pki / "server.crt",
        key_file=pki / "server.key",
        ca_file=pki / "ca.crt",
        username=USER,
        password=PASSWORD,
        password_hash=PASSWORD_HASH,
    )
    am = LocalAlertmanager(tmp_path_factory.mktemp("am-secured"), web=web)
    am.start(timeout=60)
    try:
        yield am.url
    finally:
        am.stop()


def settings(url: str, **extra: Any) -> AlertmanagerSinkSettings:
    return AlertmanagerSinkSettings.model_validate({"type": "alertmanager", "url": url, **extra})


async def close(sink: object) -> None:
    aclose = getattr(sink, "aclose", None)  # as the router closes its sinks
    if aclose is not None:
        await aclose()


def ca(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.crt"))


def alert(service: str) -> Alert:
    return Alert(AlertEvent.TRIGGER, sample_decision(service=service), Severity.CRITICAL, "x")


@pytest.mark.integration
async def test_alerts_reach_an_alertmanager_behind_basic_auth_and_tls(
    secured: str, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert secured.startswith("https://")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    s = settings(
        secured,
        basic_auth={"username": USER, "password": {"env": PASSWORD_ENV}},
        tls={"ca_file": str(pki / "ca.crt")},
    )
    service = f"checkout-{uuid.uuid4().hex[:8]}"
    sink = make_sink(s, SinkDeps())
    await sink.send(alert(service))
    await close(sink)
    async with httpx.AsyncClient(auth=(USER, PASSWORD), verify=ca(pki)) as c:
        resp = await c.get(f"{secured}/api/v2/alerts", params={"filter": f'service="{service}"'})
        assert resp.status_code == 200
        assert [a["labels"]["service"] for a in resp.json()] == [service]
        # and the server does want the credentials
    async with httpx.AsyncClient(verify=ca(pki)) as anonymous:
        assert (await anonymous.get(f"{secured}/-/ready")).status_code == 401


@pytest.mark.integration
async def test_a_wrong_password_is_not_retried_and_an_unknown_ca_fails(
    secured: str, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    auth = {"username": USER, "password": {"env": PASSWORD_ENV}}
    sink = make_sink(
        settings(secured, basic_auth=auth, tls={"ca_file": str(pki / "ca.crt")}), SinkDeps()
    )
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(alert("checkout"))
    await close(sink)
    assert not info.value.retryable and "401" in info.value.reason
    # the system trust store does not know the test CA
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sink = make_sink(settings(secured, basic_auth=auth), SinkDeps())
    with pytest.raises(DeliveryFailed, match="network error"):
        await sink.send(alert("checkout"))
    await close(sink)


async def test_a_bearer_token_goes_with_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AM_TOKEN", " tok-123\n")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    s = settings("http://am.test:9093", bearer_token={"env": "TEST_AM_TOKEN"})
    sink = make_sink(s, SinkDeps(client=client))
    await sink.send(alert("checkout"))
    await client.aclose()
    assert seen == ["Bearer tok-123"]
    assert "tok-123" not in repr(sink)


def test_a_missing_secret_is_refused_when_the_sink_is_built(tmp_path: Path) -> None:
    s = settings(
        "http://am.test:9093",
        basic_auth={"username": USER, "password": {"file": str(tmp_path / "nope")}},
    )
    with pytest.raises(SecretError, match=r"secret file .*nope cannot be read"):
        make_sink(s, SinkDeps())
    (tmp_path / "empty").write_text("\n")
    s = settings("http://am.test:9093", bearer_token={"file": str(tmp_path / "empty")})
    with pytest.raises(SecretError, match="is empty"):
        make_sink(s, SinkDeps())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {
                "basic_auth": {"username": "u", "password": {"env": "P"}},
                "bearer_token": {"env": "T"},
            },
            "not both",
        ),
        ({"tls": {"insecure_skip_verify": True}}, "needs an https:// url"),
        ({"bearer_token": {}}, "name an environment variable"),
        ({"url": "https://am:9093", "tls": {"cert_file": "/c.pem"}}, "both `cert_file` and"),
        (
            {"url": "https://am:9093", "tls": {"ca_file": "/ca", "insecure_skip_verify": True}},
            "contradict",
        ),
    ],
)
def test_contradictory_settings_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(extra.pop("url", "http://am:9093"), **extra)


def test_check_config_says_whether_the_secret_is_set_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-value")
    cfg = SentinelConfig.model_validate(
        {
            "alerting": {
                "sinks": [
                    {
                        "type": "alertmanager",
                        "url": "https://am:9093",
                        "basic_auth": {"username": USER, "password": {"env": PASSWORD_ENV}},
                    }
                ]
            }
        }
    )
    out = io.StringIO()
    explain(cfg, out)
    text = out.getvalue()
    assert f"basic auth {USER}, password set (environment variable {PASSWORD_ENV})" in text
    assert "s3cret-value" not in text
    monkeypatch.delenv(PASSWORD_ENV)
    out = io.StringIO()
    explain(cfg, out)
    assert f"secret environment variable {PASSWORD_ENV} is not set" in out.getvalue()
