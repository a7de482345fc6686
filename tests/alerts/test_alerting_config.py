"""Alerting configuration: what SREs write, what is refused at load time, and what the router
built from it does (per-service routing keys, missing keys fail the start)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from config import alerting as alerting_config
from config.loader import ConfigError, parse_config
from detector.core.types import Action, Severity, Verdict
from rollback.alerting import build_router
from rollback.sinks.fake import FakeTime, sample_decision
from rollback.sinks.fake_pagerduty import FakePagerDuty

OTHER_KEY = "OTHERKEY" + "0" * 24

EXAMPLE = """
alerting:
  min_severity: warning
  outbox_path: {outbox}
  links:
    - text: Grafana canary vs baseline
      href: https://grafana.example/d/canary?var-service={{service}}&var-namespace={{namespace}}
  sinks:
    - type: pagerduty
      base_url: {pd_url}
    - type: alertmanager
      url: http://127.0.0.1:9/
      labels: {{team: sre}}
    - type: log
services:
  checkout:
    namespace: shop
    alerting:
      sinks: [pagerduty, log]
      pagerduty_routing_key: {{env: PAYMENTS_PD_KEY}}
      links:
        - text: Runbook
          href: https://runbooks.example/{{service}}
"""


def load(text: str) -> Any:
    return parse_config(yaml.safe_load(text), "test.yaml")


def test_a_full_example_loads(tmp_path: Path) -> None:
    cfg = load(EXAMPLE.format(outbox=tmp_path / "o.sqlite3", pd_url="https://events.pagerduty.com"))
    sinks = cfg.alerting.sinks
    assert [s.type for s in sinks] == ["pagerduty", "alertmanager", "log"]
    assert sinks[0].routing_key.env == "CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY"
    assert sinks[1].url == "http://127.0.0.1:9"
    svc = cfg.services["checkout"].alerting
    assert svc.sinks == ("pagerduty", "log")
    assert svc.pagerduty_routing_key.env == "PAYMENTS_PD_KEY"


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("alerting: {sinks: [{type: opsgenie}]}", "alerting.sinks.0"),
        ("alerting: {sinks: [{type: log}, {type: log}]}", "alerting"),
        ("alerting: {sinks: [{type: alertmanager}]}", "alerting.sinks.0.alertmanager.url"),
        ("alerting: {sinks: [{type: pagerduty, routing_key: {env: null}}]}", "routing_key"),
        ("alerting: {sinks: [{type: pagerduty, routing_key: 'abc'}]}", "routing_key"),
        ("alerting: {links: [{text: x, href: 'https://g/{pod}'}]}", "alerting.links.0.href"),
        ("alerting: {links: [{text: x, href: 'grafana/d'}]}", "alerting.links.0.href"),
        ("alerting: {min_severity: page}", "alerting.min_severity"),
        ("alerting: {sinks: [{type: log, colour: red}]}", "colour"),
        (
            "alerting: {sinks: [{type: alertmanager, url: 'http://a', labels: {'a-b': x}}]}",
            "labels",
        ),
    ],
)
def test_bad_alerting_config_is_refused_at_load(yaml_text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(yaml_text)
    assert any(where in path for path, _ in info.value.problems), info.value.problems


def test_every_field_is_described() -> None:
    models = [
        v
        for v in vars(alerting_config).values()
        if isinstance(v, type)
        and issubclass(v, BaseModel)
        and v.__module__ == alerting_config.__name__
    ]
    assert len(models) >= 7
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_unknown_sink_names_in_a_service_are_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(
            f"alerting: {{outbox_path: {tmp_path / 'o.sqlite3'}}}\n"
            "services: {cart: {alerting: {sinks: [pagerduty]}}}"
        )
    assert "services.cart.alerting.sinks: no sink named 'pagerduty'" in str(info.value)


def test_a_missing_routing_key_fails_the_build_without_echo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY", "abc-secret-too-short")
    cfg = load("alerting: {sinks: [{type: pagerduty}]}")
    with pytest.raises(alerting_config.RoutingKeyError) as info:
        build_router(cfg, registry=CollectorRegistry())
    assert "abc-secret-too-short" not in str(info.value)
    assert "CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY" in str(info.value)


async def test_each_service_pages_with_its_own_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, routing_key: str, fake_pd: FakePagerDuty
) -> None:
    monkeypatch.setenv("PAYMENTS_PD_KEY", OTHER_KEY)
    cfg = load(EXAMPLE.format(outbox=tmp_path / "o.sqlite3", pd_url=fake_pd.url))
    t = FakeTime(block_after=2)  # the unreachable Alertmanager retries, then parks
    router = build_router(cfg, clock=t.clock, sleep=t.sleep, registry=CollectorRegistry())
    assert set(router.health()["sinks"]) == {
        "pagerduty",
        "alertmanager",
        "log",
        "pagerduty:checkout",
    }
    async with router:
        await router.notify(sample_decision(service="checkout"), None)
        await router.notify(sample_decision(service="cart"), None)
        info = sample_decision(
            service="orders", verdict=Verdict.ANOMALY, action=Action.ALERT, severity=Severity.INFO
        )
        await router.notify(info, None)  # below the global minimum (warning): not sent
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while any(
            router.health()["sinks"][n]["pending"] for n in ("pagerduty", "pagerduty:checkout")
        ):
            assert loop.time() < deadline, router.health()
            await asyncio.sleep(0.02)  # polling interval under a deadline
        await asyncio.wait_for(t.parked.wait(), 20)
        assert router.health()["sinks"]["alertmanager"]["up"] is False
    keys = {i.dedup_key.split("/")[1].split("@")[0]: i.routing_key for i in fake_pd.incidents}
    assert keys == {"checkout": OTHER_KEY, "cart": routing_key}
    checkout = next(r.body for r in fake_pd.requests if r.body["routing_key"] == OTHER_KEY)
    assert [ln["text"] for ln in checkout["links"]] == ["Grafana canary vs baseline", "Runbook"]
    assert checkout["links"][1]["href"] == "https://runbooks.example/checkout"
