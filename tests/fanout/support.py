"""What the fan-out tests share: a stand-in data API that fails on request, and its connection.

``Sources`` answers ``GET /sources/{name}`` and ``GET /items/{value}`` like a small
reporting API; a name or value can be told to fail its first N requests with a 503
(retryable) or always with a 422 (final), and every delivery is counted with its
``Idempotency-Key``, so a test sees retries and repeats as the server saw them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.registry import ConnectorRegistry


class Sources:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.fail_first: dict[str, int] = {}
        self.always_fail: set[str] = set()
        self.deliveries: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.log: list[str] = []
        """Every delivery's Idempotency-Key, in the order the requests arrived."""
        self.on_delivery: Callable[[str], None] | None = None

    @property
    def asgi_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/sources/{name}", self._answer, methods=["GET"]),
                Route("/items/{name}", self._answer, methods=["GET", "POST"]),
            ]
        )

    async def _answer(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.deliveries[name] += 1
        key = request.headers.get("idempotency-key", "")
        self.keys[key] += 1
        self.log.append(key)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.on_delivery is not None:
            self.on_delivery(key)  # e.g. kill the caller before it gets the answer
        if name in self.always_fail:
            return JSONResponse({"error": f"{name} is not valid"}, status_code=422)
        if self.fail_first.get(name, 0) > 0:
            self.fail_first[name] -= 1
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"name": name, "rows": len(name)})


def registry(url: str, **extra: Any) -> ConnectorRegistry:
    """An http connection ``data`` to ``url`` that leaves retrying to the workflow."""
    config = {"type": "http", "base_url": url, "retry": {"attempts": 1}, "timeout_s": 5} | extra
    return ConnectorRegistry.build({"data": config}, {})
