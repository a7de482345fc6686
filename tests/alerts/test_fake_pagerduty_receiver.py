"""The fake PagerDuty receiver holds requests to the published Events API v2 contract, answers
what it is told to, and keeps incidents with PagerDuty's dedup semantics."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from rollback.sinks.fake_pagerduty import FakePagerDuty

KEY = "a" * 32


def trigger(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "canary-sentinel:shop/checkout@1:regression",
        "payload": {
            "summary": "checkout canary regressed",
            "source": "shop/checkout",
            "severity": "critical",
            "timestamp": "2026-11-27T10:15:00.000+00:00",
            "custom_details": {"p99": "412 ms"},
        },
        "links": [{"href": "https://grafana.example/d/x", "text": "Grafana"}],
        "images": [{"src": "https://grafana.example/render.png", "alt": "p99"}],
    }
    body.update(over)
    return body


def change(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": KEY,
        "payload": {"summary": "rollback of checkout done", "source": "shop/checkout"},
        "links": [{"href": "https://grafana.example/d/x"}],
    }
    body.update(over)
    return body


def with_payload(**over: Any) -> dict[str, Any]:
    body = trigger()
    body["payload"] = {**body["payload"], **over}
    return body


def without_payload_field(name: str) -> dict[str, Any]:
    body = copy.deepcopy(trigger())
    del body["payload"][name]
    return body


async def post(pd: FakePagerDuty, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        if isinstance(body, bytes):
            return await c.post(pd.url + path, content=body)
        return await c.post(pd.url + path, json=body)


async def test_a_valid_trigger_is_accepted_and_opens_one_incident(fake_pd: FakePagerDuty) -> None:
    resp = await post(fake_pd, "/v2/enqueue", trigger())
    assert resp.status_code == 202
    assert resp.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "canary-sentinel:shop/checkout@1:regression",
    }
    assert len(fake_pd.incidents) == 1
    assert fake_pd.incidents[0].severity == "critical"


INVALID_EVENTS: dict[str, Any] = {
    "routing key too short": trigger(routing_key="a" * 31),
    "routing key missing": {k: v for k, v in trigger().items() if k != "routing_key"},
    "event_action missing": {k: v for k, v in trigger().items() if k != "event_action"},
    "event_action not in enum": trigger(event_action="escalate"),
    "resolve without dedup_key": {"routing_key": KEY, "event_action": "resolve"},
    "acknowledge without dedup_key": {"routing_key": KEY, "event_action": "acknowledge"},
    "dedup_key over 255": trigger(dedup_key="d" * 256),
    "trigger without payload": {"routing_key": KEY, "event_action": "trigger"},
    "summary missing": without_payload_field("summary"),
    "summary over 1024": with_payload(summary="s" * 1025),
    "source missing": without_payload_field("source"),
    "severity missing": without_payload_field("severity"),
    "severity not in enum": with_payload(severity="fatal"),
    "timestamp not ISO 8601": with_payload(timestamp="yesterday"),
    "custom_details not an object": with_payload(custom_details=["x"]),
    "link without href": trigger(links=[{"text": "Grafana"}]),
    "link href not a URL": trigger(links=[{"href": "grafana"}]),
    "image over http": trigger(images=[{"src": "http://grafana.example/p.png"}]),
    "unknown top-level field": trigger(routingkey=KEY),
    "unknown payload field": with_payload(custom_detail={}),
    "not an object": ["trigger"],
}


@pytest.mark.parametrize("case", sorted(INVALID_EVENTS))
async def test_invalid_events_are_refused_with_pagerdutys_error_body(
    fake_pd: FakePagerDuty, case: str
) -> None:
    resp = await post(fake_pd, "/v2/enqueue", INVALID_EVENTS[case])
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert body["errors"], "the reason is part of the contract"
    assert fake_pd.incidents == []


async def test_invalid_json_and_oversized_payloads_are_refused(fake_pd: FakePagerDuty) -> None:
    resp = await post(fake_pd, "/v2/enqueue", b"{not json")
    assert resp.status_code == 400
    assert resp.json()["errors"] == ["JSON parse error"]
    big = trigger()
    big["payload"]["custom_details"] = {"blob": "x" * (512 * 1024)}
    resp = await post(fake_pd, "/v2/enqueue", big)
    assert resp.status_code == 400
    assert "512 KB" in resp.json()["errors"][0]
    assert fake_pd.incidents == []


async def test_change_events_are_validated_separately(fake_pd: FakePagerDuty) -> None:
    ok = await post(fake_pd, "/v2/change/enqueue", change())
    assert ok.status_code == 202
    assert ok.json()["status"] == "success"
    bad_cases = [
        change(routing_key="R" + "a" * 31),  # ruleset keys cannot take change events
        change(payload={"source": "shop/checkout"}),  # summary required
        change(event_action="trigger"),  # not a change-event field
        change(payload={"summary": "x" * 1025}),
        change(links=[{"text": "no href"}]),
    ]
    for bad in bad_cases:
        resp = await post(fake_pd, "/v2/change/enqueue", bad)
        assert resp.status_code == 400, bad
        assert resp.json()["message"] == "Event object is invalid"
    assert len(fake_pd.change_events) == 1
    assert fake_pd.incidents == []  # change events never open incidents


@pytest.mark.parametrize("status", [400, 429, 500])
async def test_scripted_answers_come_first_then_normal_processing(
    fake_pd: FakePagerDuty, status: int
) -> None:
    fake_pd.script(status, times=2, retry_after=3)
    for _ in range(2):
        resp = await post(fake_pd, "/v2/enqueue", trigger())
        assert resp.status_code == status
        assert resp.headers["Retry-After"] == "3"
    assert fake_pd.incidents == []  # a scripted answer is not ingested
    resp = await post(fake_pd, "/v2/enqueue", trigger())
    assert resp.status_code == 202
    assert len(fake_pd.incidents) == 1


async def test_dedup_semantics_follow_pagerduty(fake_pd: FakePagerDuty) -> None:
    dedup = trigger()["dedup_key"]
    for _ in range(3):
        assert (await post(fake_pd, "/v2/enqueue", trigger())).status_code == 202
    assert len(fake_pd.incidents) == 1
    assert len(fake_pd.incidents[0].events) == 3
    # same dedup key under another routing key is another service's alert
    await post(fake_pd, "/v2/enqueue", trigger(routing_key="b" * 32))
    assert len(fake_pd.incidents) == 2
    resolve = {"routing_key": KEY, "event_action": "resolve", "dedup_key": dedup}
    assert (await post(fake_pd, "/v2/enqueue", resolve)).status_code == 202
    assert [i.status for i in fake_pd.incidents] == ["resolved", "triggered"]
    # resolving again is accepted and dropped
    assert (await post(fake_pd, "/v2/enqueue", resolve)).status_code == 202
    assert len(fake_pd.incidents) == 2
    # after a resolve, a trigger opens a new incident
    await post(fake_pd, "/v2/enqueue", trigger())
    assert len(fake_pd.incidents_for(dedup)) == 3
    assert len(fake_pd.open_incidents(dedup)) == 2


async def test_a_trigger_without_dedup_key_gets_one(fake_pd: FakePagerDuty) -> None:
    body = trigger()
    del body["dedup_key"]
    resp = await post(fake_pd, "/v2/enqueue", body)
    assert resp.status_code == 202
    assert resp.json()["dedup_key"] == fake_pd.incidents[0].dedup_key
