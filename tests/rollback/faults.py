"""httpx transports that put faults in front of the real API server, as a flaky network, an
overloaded API server or a concurrent writer would."""

from __future__ import annotations

import json

import httpx


class FaultTransport(httpx.AsyncBaseTransport):
    """Answers the first ``times`` requests (all, if ``None``) with HTTP ``status``, or fails
    them with a connection error when ``status`` is ``0``; later requests reach ``inner``."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, status: int, *, times: int | None = None
    ) -> None:
        self.inner = inner
        self.status = status
        self.remaining = times
        self.faulted = 0
        self.passed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.remaining is None or self.remaining > 0:
            if self.remaining is not None:
                self.remaining -= 1
            self.faulted += 1
            if self.status == 0:
                raise httpx.ConnectError("connection refused (injected)", request=request)
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": self.status,
                "reason": "Injected",
                "message": "injected fault",
            }
            headers = {"Retry-After": "1"} if self.status == 429 else {}
            return httpx.Response(self.status, json=body, headers=headers, request=request)
        self.passed += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class StaleWriteTransport(httpx.AsyncBaseTransport):
    """Adds a stale ``metadata.resourceVersion`` to the first merge patch, so the real API
    server answers with a genuine 409 Conflict; later requests pass unchanged."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stale_resource_version: str) -> None:
        self.inner = inner
        self.stale = stale_resource_version
        self.conflicts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ctype = request.headers.get("Content-Type", "")
        if (
            request.method == "PATCH"
            and ctype == "application/merge-patch+json"
            and not self.conflicts
        ):
            body = json.loads(await request.aread())
            body.setdefault("metadata", {})["resourceVersion"] = self.stale
            content = json.dumps(body).encode()
            headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
            request = httpx.Request(request.method, request.url, headers=headers, content=content,
                                    extensions=request.extensions)  # fmt: skip
            response = await self.inner.handle_async_request(request)
            if response.status_code == 409:
                self.conflicts += 1
            return response
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
