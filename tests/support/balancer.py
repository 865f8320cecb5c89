"""A round-robin reverse proxy on loopback: what a load balancer in front of replicas does.

Each request goes to the next upstream in turn (whatever its path), with its method,
path, query, headers and body unchanged, so Slack's signature and a webhook's
signature still verify at the replica. One exception makes the worst case certain:
a Slack retry (``X-Slack-Retry-Num``) of an event goes to another upstream than the
event's previous delivery, so a replica that kept anything in memory would be caught.
Every forwarded request is logged with the upstream that handled it.

``lose_answers(n, when)`` makes the next ``n`` answers to requests whose body
``when`` accepts disappear on the way back: the replica handled the request, the
caller gets a 502. That is how an ack lost to a network blip or a slow proxy looks
to Slack, which then re-delivers the event.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Hop-by-hop and framing headers: each leg of the trip sets its own.
_DROPPED = {"host", "content-length", "connection", "transfer-encoding", "content-encoding"}


@dataclass(frozen=True)
class Forwarded:
    path: str
    upstream: int
    status: int
    """What the replica answered (before any lost answer)."""
    answer_lost: bool
    retry_num: int
    event_id: str | None


class RoundRobinBalancer:
    def __init__(self, upstreams: list[str], timeout: float = 10.0) -> None:
        if not upstreams:
            raise ValueError("a balancer needs at least one upstream")
        self.upstreams = [url.rstrip("/") for url in upstreams]
        self.log: list[Forwarded] = []
        self._turn = itertools.cycle(range(len(self.upstreams)))
        self._answers_to_lose = 0
        self._lose_when: Callable[[bytes], bool] = lambda _body: False
        self._last_upstream_of_event: dict[str, int] = {}
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    @property
    def asgi_app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", self._forward, methods=methods)])

    def lose_answers(self, count: int, when: Callable[[bytes], bool]) -> None:
        self._answers_to_lose = count
        self._lose_when = when

    def handled_by(self, upstream: int) -> list[Forwarded]:
        return [entry for entry in self.log if entry.upstream == upstream]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _forward(self, request: Request) -> Response:
        # Taken before the first await: concurrent requests still alternate strictly.
        turn = next(self._turn)
        body = await request.body()
        retry_num = int(request.headers.get("x-slack-retry-num", "0"))
        event_id = _event_id(body)
        upstream = self._pick(turn, event_id, retry_num)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        url = f"{self.upstreams[upstream]}{request.url.path}"
        if request.url.query:
            url = f"{url}?{request.url.query}"
        answer = await self._http.request(request.method, url, content=body, headers=headers)
        lost = self._answers_to_lose > 0 and self._lose_when(body)
        if lost:
            self._answers_to_lose -= 1
        self.log.append(
            Forwarded(
                path=request.url.path,
                upstream=upstream,
                status=answer.status_code,
                answer_lost=lost,
                retry_num=retry_num,
                event_id=event_id,
            )
        )
        if lost:
            return Response("upstream answer lost", status_code=502)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    def _pick(self, turn: int, event_id: str | None, retry_num: int) -> int:
        previous = self._last_upstream_of_event.get(event_id) if event_id else None
        upstream = turn
        if retry_num > 0 and previous is not None and len(self.upstreams) > 1:
            upstream = (previous + 1) % len(self.upstreams)
        if event_id:
            self._last_upstream_of_event[event_id] = upstream
        return upstream


def _event_id(body: bytes) -> str | None:
    """The Events API envelope's ``event_id``, if the body is one."""
    if not body.startswith(b"{"):
        return None
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    event_id = envelope.get("event_id") if isinstance(envelope, dict) else None
    return str(event_id) if event_id else None
