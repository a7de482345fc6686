"""A local PagerDuty Events API v2 receiver for tests and demos (127.0.0.1 only).

Who uses it: the sink contract tests, the router tests and the end-to-end tests, in-process
(``async with FakePagerDuty() as pd: ... pd.url``) or as a process
(``python -m rollback.sinks.fake_pagerduty --port 8080``).

What it promises:

- every request to ``/v2/enqueue`` and ``/v2/change/enqueue`` is checked against the published
  contract (:func:`event_errors`, :func:`change_errors`): required fields, enums, lengths,
  routing key of 32 characters, payload <= 512 KB, ``links[].href`` required, images over HTTPS,
  ``dedup_key`` required for acknowledge and resolve. It is *stricter* than PagerDuty in one way:
  unknown fields are refused, so a typo in our own sink fails a test instead of being ignored.
  Invalid: ``400`` with PagerDuty's error body. Valid: ``202`` with
  ``{"status": "success", "message": "Event processed", "dedup_key": ...}``;
- :meth:`FakePagerDuty.script` queues answers (400, 429, 500...) given instead of processing;
- it keeps the incidents PagerDuty would have opened, with its dedup semantics: a trigger with
  the same routing key and ``dedup_key`` as an open incident folds into it; after a resolve, a
  new trigger opens a new incident; acknowledge and resolve of nothing open are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

MAX_BODY = 512 * 1024
KEY_LENGTH = 32
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
_EVENT_FIELDS = {
    "routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links",
    "images",
}  # fmt: skip
_PAYLOAD_FIELDS = {
    "summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details",
}  # fmt: skip
_CHANGE_FIELDS = {"routing_key", "payload", "links"}
_CHANGE_PAYLOAD_FIELDS = {"summary", "source", "timestamp", "custom_details"}


def _is_url(v: Any, *, https_only: bool = False) -> bool:
    if not isinstance(v, str):
        return False
    parts = urlsplit(v)
    schemes = ("https",) if https_only else ("http", "https")
    return parts.scheme in schemes and bool(parts.netloc)


def _key_errors(body: dict[str, Any]) -> list[str]:
    key = body.get("routing_key")
    if not isinstance(key, str) or not key:
        return ["'routing_key' is missing or blank"]
    if len(key) != KEY_LENGTH:
        return [f"Length of 'routing_key' is incorrect (should be {KEY_LENGTH} characters)"]
    return []


def _links_errors(body: dict[str, Any]) -> list[str]:
    errs: list[str] = []
    links = body.get("links")
    if links is not None:
        if not isinstance(links, list):
            return ["'links' must be an array"]
        for i, ln in enumerate(links):
            if not isinstance(ln, dict) or "href" not in ln:
                errs.append(f"'links[{i}].href' is missing")
            elif not _is_url(ln["href"]):
                errs.append(f"'links[{i}].href' is not a URL")
            elif "text" in ln and not isinstance(ln["text"], str):
                errs.append(f"'links[{i}].text' must be a string")
            elif set(ln) - {"href", "text"}:
                errs.append(f"'links[{i}]' has unknown fields {sorted(set(ln) - {'href', 'text'})}")
    return errs


def _timestamp_errors(payload: dict[str, Any]) -> list[str]:
    ts = payload.get("timestamp")
    if ts is None:
        return []
    try:
        if not isinstance(ts, str):
            raise ValueError
        datetime.fromisoformat(ts)
    except ValueError:
        return ["'payload.timestamp' is not an ISO 8601 date-time"]
    return []


def _summary_errors(payload: dict[str, Any]) -> list[str]:
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        return ["'payload.summary' is missing or blank"]
    if len(summary) > 1024:
        return ["'payload.summary' is longer than 1024 characters"]
    return []


def event_errors(body: Any) -> list[str]:
    """What is wrong with an ``/v2/enqueue`` body (empty: valid)."""
    if not isinstance(body, dict):
        return ["Event object must be a JSON object"]
    errs = [f"unknown field '{k}'" for k in sorted(set(body) - _EVENT_FIELDS)]
    errs += _key_errors(body)
    action = body.get("event_action")
    if action not in ACTIONS:
        errs.append(f"'event_action' must be one of {list(ACTIONS)}")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errs.append("'dedup_key' must be a non-empty string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errs.append(f"'dedup_key' is required for event_action '{action}'")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errs.append("'payload' is missing or not an object")
        else:
            errs += [f"unknown field 'payload.{k}'" for k in sorted(set(payload) - _PAYLOAD_FIELDS)]
            errs += _summary_errors(payload)
            src = payload.get("source")
            if not isinstance(src, str) or not src.strip():
                errs.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errs.append(f"'payload.severity' must be one of {list(SEVERITIES)}")
            errs += _timestamp_errors(payload)
            for k in ("component", "group", "class"):
                if k in payload and not isinstance(payload[k], str):
                    errs.append(f"'payload.{k}' must be a string")
            if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
                errs.append("'payload.custom_details' must be an object")
    for k in ("client", "client_url"):
        if k in body and not isinstance(body[k], str):
            errs.append(f"'{k}' must be a string")
    if "client_url" in body and not _is_url(body["client_url"]):
        errs.append("'client_url' is not a URL")
    errs += _links_errors(body)
    images = body.get("images")
    if images is not None:
        if not isinstance(images, list):
            errs.append("'images' must be an array")
        else:
            for i, im in enumerate(images):
                if not isinstance(im, dict) or not _is_url(im.get("src"), https_only=True):
                    errs.append(f"'images[{i}].src' is missing or not an https URL")
                elif "href" in im and not _is_url(im["href"]):
                    errs.append(f"'images[{i}].href' is not a URL")
    return errs


def change_errors(body: Any) -> list[str]:
    """What is wrong with a ``/v2/change/enqueue`` body (empty: valid)."""
    if not isinstance(body, dict):
        return ["Change event object must be a JSON object"]
    errs = [f"unknown field '{k}'" for k in sorted(set(body) - _CHANGE_FIELDS)]
    errs += _key_errors(body)
    key = body.get("routing_key")
    if isinstance(key, str) and key.startswith("R"):
        errs.append("ruleset routing keys cannot receive change events")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        errs.append("'payload' is missing or not an object")
    else:
        errs += [
            f"unknown field 'payload.{k}'" for k in sorted(set(payload) - _CHANGE_PAYLOAD_FIELDS)
        ]
        errs += _summary_errors(payload)
        if "source" in payload and not isinstance(payload["source"], str):
            errs.append("'payload.source' must be a string")
        errs += _timestamp_errors(payload)
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errs.append("'payload.custom_details' must be an object")
    errs += _links_errors(body)
    return errs


@dataclass
class Incident:
    """An alert PagerDuty would have opened; ``events`` are the accepted bodies acting on it."""

    routing_key: str
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"  # triggered, acknowledged, resolved
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status != "resolved"

    def __repr__(self) -> str:  # the routing key stays out of test failure output
        return f"Incident(dedup_key={self.dedup_key!r}, status={self.status!r})"


@dataclass
class Received:
    """One request as received: path, the answer given, the parsed body (``None`` if invalid
    JSON) and the validation errors."""

    path: str
    status: int
    body: Any
    errors: list[str]


_DEFAULT_BODIES: dict[int, dict[str, Any]] = {
    400: {"status": "invalid event", "message": "Event object is invalid", "errors": ["scripted"]},
    429: {
        "status": "throttle event",
        "message": "Requests for this service are arriving too quickly. Please retry later.",
    },
    500: {"status": "error", "message": "Internal Server Error"},
}


class FakePagerDuty:
    """The receiver. ``url`` is its base URL once started."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[Received] = []
        self.incidents: list[Incident] = []
        self.change_events: list[dict[str, Any]] = []
        self._script: deque[tuple[int, Any, dict[str, str]]] = deque()
        self._runner: web.AppRunner | None = None
        self.received = asyncio.Event()  # set after every request

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(
        self, status: int, body: Any = None, *, times: int = 1, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``body``, default PagerDuty's
        usual body for it) without processing them."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        answer = body if body is not None else _DEFAULT_BODIES.get(status, {"status": "error"})
        for _ in range(times):
            self._script.append((status, answer, headers))

    def open_incidents(self, dedup_key: str | None = None) -> list[Incident]:
        return [i for i in self.incidents if i.open and dedup_key in (None, i.dedup_key)]

    def incidents_for(self, dedup_key: str) -> list[Incident]:
        return [i for i in self.incidents if i.dedup_key == dedup_key]

    async def start(self) -> str:
        app = web.Application(client_max_size=4 * MAX_BODY)
        app.router.add_post("/v2/enqueue", self._enqueue)
        app.router.add_post("/v2/change/enqueue", self._change)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePagerDuty:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _read(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        if len(raw) > MAX_BODY:
            return None, self._invalid(request.path, None, ["Payload exceeds 512 KB"])
        try:
            return json.loads(raw), None
        except ValueError:
            body = {
                "status": "Unrecognized object",
                "message": "Event object format is unrecognized",
                "errors": ["JSON parse error"],
            }
            self.requests.append(Received(request.path, 400, None, ["JSON parse error"]))
            return None, web.json_response(body, status=400)

    def _scripted(self, path: str, body: Any) -> web.Response | None:
        if not self._script:
            return None
        status, answer, headers = self._script.popleft()
        self.requests.append(Received(path, status, body, []))
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    def _invalid(self, path: str, body: Any, errors: list[str]) -> web.Response:
        self.requests.append(Received(path, 400, body, errors))
        return web.json_response(
            {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            status=400,
        )

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            return await self._handle_enqueue(request)
        finally:
            self.received.set()

    async def _handle_enqueue(self, request: web.Request) -> web.Response:
        body, bad = await self._read(request)
        if bad is not None:
            return bad
        if (scripted := self._scripted(request.path, body)) is not None:
            return scripted
        errors = event_errors(body)
        if errors:
            return self._invalid(request.path, body, errors)
        self.requests.append(Received(request.path, 202, body, []))
        dedup = self._apply(body)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup}, status=202
        )

    def _apply(self, body: dict[str, Any]) -> str:
        key, action = body["routing_key"], body["event_action"]
        dedup = body.get("dedup_key") or uuid.uuid4().hex
        current = next(
            (i for i in self.incidents if i.open and i.routing_key == key and i.dedup_key == dedup),
            None,
        )
        if action == "trigger":
            if current is None:
                payload = body["payload"]
                current = Incident(key, dedup, payload["summary"], payload["severity"])
                self.incidents.append(current)
            current.events.append(body)
        elif current is not None:  # ack / resolve of nothing open are dropped
            current.status = "acknowledged" if action == "acknowledge" else "resolved"
            current.events.append(body)
        return str(dedup)

    async def _change(self, request: web.Request) -> web.Response:
        try:
            body, bad = await self._read(request)
            if bad is not None:
                return bad
            if (scripted := self._scripted(request.path, body)) is not None:
                return scripted
            errors = change_errors(body)
            if errors:
                return self._invalid(request.path, body, errors)
            self.requests.append(Received(request.path, 202, body, []))
            self.change_events.append(body)
            return web.json_response(
                {"status": "success", "message": "Change event processed"}, status=202
            )
        finally:
            self.received.set()


async def _serve(port: int) -> None:
    async with FakePagerDuty(port=port) as pd:
        print(pd.url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local PagerDuty Events API v2 receiver.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
