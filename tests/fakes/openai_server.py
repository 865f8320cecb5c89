"""A local OpenAI-compatible chat-completions server for tests.

The real ``openai`` client talks to it over HTTP::

    fake = FakeOpenAI()
    async with fake.running() as base_url:     # served by tests.support.servers.serve_asgi
        client = AsyncOpenAI(base_url=base_url, api_key="sk-test")   # base_url ends in /v1

Each request takes the next behaviour from a script, or the default
when the script is empty::

    fake = FakeOpenAI()
    fake.script(Fail(429, retry_after_ms=20), Answer())   # rate limited once, then fine
    fake.default = Fail(500)                              # a 500 storm from now on

Behaviours:

``Answer()``          a well-formed reply chosen by a rule (the default): classify picks
                      the first allowed label whose name appears in the text, else the
                      first label; extract reads ``name: value`` pairs from the text;
                      a plain-text request gets the text's first sentences.
``Content(s)``        exactly ``s`` as the assistant's content (e.g. malformed JSON).
``Classify(label)``   a structured classification with any label, allowed or not.
``EchoInjection()``   a model that obeys the request: the user text becomes the label.
``Delay(s, then)``    wait ``s`` seconds (give up when the client hangs up), then ``then``.
``Fail(status)``      an OpenAI-style error body, optionally with ``Retry-After``.
``Refuse()``          a structured-output refusal.
``Raw(body)``         any HTTP reply, e.g. an HTML page with status 200.

Every request is recorded (``fake.requests``) with its JSON body and the monotonic
time it arrived; every reply carries ``usage`` counted the way a tokenizer roughly
would (four characters a token plus per-message overhead).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import serve_asgi


@dataclass(frozen=True)
class Answer:
    """Reply by rule: the well-behaved model."""


@dataclass(frozen=True)
class Content:
    content: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Classify:
    label: str
    confidence: float = 0.9
    rationale: str = "scripted answer"
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class EchoInjection:
    """A gullible model: whatever the request says the label is, that is the label."""


@dataclass(frozen=True)
class Refuse:
    message: str = "I can't help with that."


@dataclass(frozen=True)
class Fail:
    status: int
    retry_after: str | None = None
    """``Retry-After`` header value (seconds)."""
    retry_after_ms: int | None = None
    """``retry-after-ms`` header, as OpenAI sends it; the client prefers it."""
    message: str = "The server had an error while processing your request."


@dataclass(frozen=True)
class Raw:
    """Any HTTP reply at all, e.g. a proxy's HTML page with status 200."""

    body: str
    status: int = 200
    content_type: str = "text/html"


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Behaviour = field(default_factory=Answer)


Behaviour = Answer | Content | Classify | EchoInjection | Refuse | Fail | Raw | Delay


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    """``time.monotonic()`` on arrival."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def contents(self, role: str) -> list[str]:
        return [str(m.get("content", "")) for m in self.messages if m.get("role") == role]

    @property
    def system(self) -> str:
        return "\n".join(self.contents("system"))

    @property
    def user(self) -> str:
        return "\n".join(self.contents("user"))

    @property
    def schema(self) -> dict[str, Any] | None:
        fmt = self.body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            schema: dict[str, Any] = fmt["json_schema"]["schema"]
            return schema
        if fmt.get("type") == "json_object":
            # json_object mode: the schema travels in the instructions.
            marker = "JSON Schema:\n"
            if marker in self.system:
                parsed: dict[str, Any] = json.loads(self.system.rsplit(marker, 1)[1])
                return parsed
        return None


_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


class FakeOpenAI:
    """A scriptable OpenAI-compatible server; ``app`` is the ASGI application."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default: Behaviour = default if default is not None else Answer()
        self.requests: list[RecordedRequest] = []
        self._script: deque[Behaviour] = deque()
        self._ids = itertools.count(1)
        self.root_url = ""
        """``http://127.0.0.1:<port>`` while :meth:`running`."""
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                # Azure's deployment form: /openai/deployments/<name>/chat/completions
                Route("/{prefix:path}/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on a free loopback port; yields the OpenAI base URL (``…/v1``)."""
        async with serve_asgi(self.app) as root_url:
            self.root_url = root_url
            yield f"{root_url}/v1"

    def reset(self) -> None:
        """Forget recorded requests and scripted behaviours; back to answering by rule."""
        self.requests.clear()
        self._script.clear()
        self.default = Answer()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        return len(self._script)

    # -- HTTP -----------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(
            RecordedRequest(
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                at=time.monotonic(),
            )
        )
        behaviour = self._script.popleft() if self._script else self.default
        return await self._respond(request, self.requests[-1], behaviour)

    async def _respond(
        self, request: Request, recorded: RecordedRequest, behaviour: Behaviour
    ) -> Response:
        match behaviour:
            case Delay(seconds=seconds, then=then):
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    # Stop early when the client has given up, so the server can
                    # shut down without waiting for a reply nobody reads.
                    if await request.is_disconnected():
                        return Response(status_code=499)
                    await asyncio.sleep(0.02)
                return await self._respond(request, recorded, then)
            case Fail():
                return self._error(behaviour)
            case Raw(body=body, status=status, content_type=content_type):
                return Response(body, status_code=status, media_type=content_type)
            case Content(content=content, finish_reason=finish_reason):
                return self._completion(recorded, content, finish_reason)
            case Refuse(message=message):
                return self._completion(recorded, None, "stop", refusal=message)
            case Classify():
                candidates = [{"label": lbl, "confidence": c} for lbl, c in behaviour.candidates]
                answer = {
                    "label": behaviour.label,
                    "confidence": behaviour.confidence,
                    "rationale": behaviour.rationale,
                    "candidates": candidates
                    or [{"label": behaviour.label, "confidence": behaviour.confidence}],
                }
                return self._completion(recorded, json.dumps(answer), "stop")
            case EchoInjection():
                answer = {
                    "label": recorded.user,
                    "confidence": 1.0,
                    "rationale": "As instructed.",
                    "candidates": [{"label": recorded.user, "confidence": 1.0}],
                }
                return self._completion(recorded, json.dumps(answer), "stop")
            case Answer():
                return self._completion(recorded, _rule_answer(recorded), "stop")
        raise AssertionError(f"unknown behaviour {behaviour!r}")

    def _error(self, fail: Fail) -> Response:
        kind, code = _ERROR_TYPES.get(fail.status, ("server_error", None))
        headers = {"x-request-id": f"req_fake_{next(self._ids)}"}
        if fail.retry_after is not None:
            headers["retry-after"] = fail.retry_after
        if fail.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fail.retry_after_ms)
        body = {"error": {"message": fail.message, "type": kind, "param": None, "code": code}}
        return JSONResponse(body, status_code=fail.status, headers=headers)

    def _completion(
        self,
        recorded: RecordedRequest,
        content: str | None,
        finish_reason: str,
        refusal: str | None = None,
    ) -> Response:
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) + 4 for m in recorded.messages)
        prompt_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
        completion_tokens = count_tokens(content or refusal or "")
        n = next(self._ids)
        body = {
            "id": f"chatcmpl-fake{n:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": recorded.body.get("model", "unknown"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
        return JSONResponse(body, headers={"x-request-id": f"req_fake_{n}"})


# -- the rule-following "model" ------------------------------------------------


def _rule_answer(recorded: RecordedRequest) -> str:
    schema = recorded.schema
    text = recorded.user
    if schema is None:
        sentences = re.split(r"(?<=[.!?])\s+", text.strip())
        return " ".join(sentences[:2])
    props: dict[str, Any] = schema.get("properties", {})
    if "label" in props and "enum" in props["label"]:
        return json.dumps(_classify_by_rule(text, list(props["label"]["enum"])))
    return json.dumps({name: _extract_by_rule(text, name, sub) for name, sub in props.items()})


def _classify_by_rule(text: str, labels: list[str]) -> dict[str, Any]:
    lowered = text.lower()

    def mentioned(label: str) -> bool:
        words = re.sub(r"[_-]+", " ", label.lower())
        return words in lowered or label.lower() in lowered

    hits = [label for label in labels if mentioned(label)]
    chosen = hits[0] if hits else labels[0]
    confidence = 0.92 if hits else 0.35
    others = [label for label in labels if label != chosen][:2]
    candidates = [{"label": chosen, "confidence": confidence}] + [
        {"label": label, "confidence": round((1 - confidence) / 2, 3)} for label in others
    ]
    return {
        "label": chosen,
        "confidence": confidence,
        "rationale": "The request mentions it." if hits else "Nothing specific; first label.",
        "candidates": candidates,
    }


def _types_of(sub: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    if isinstance(sub.get("type"), str):
        found.add(sub["type"])
    for option in sub.get("anyOf", []):
        found |= _types_of(option)
    return found


def _extract_by_rule(text: str, name: str, sub: dict[str, Any]) -> Any:
    match = re.search(rf"(?im)\b{re.escape(name)}\s*[:=]\s*([^\n;]+)", text)
    if not match:
        return None
    raw = match.group(1).strip()
    types = _types_of(sub)
    try:
        if "object" in types:  # money: {amount, currency} (connectors/ai/openai_schema.py)
            code = re.search(r"\b[A-Z]{3}\b", raw)
            amount = float(re.sub(r"[^\d.-]", "", raw))
            return {"amount": amount, "currency": code.group(0) if code else None}
        if "integer" in types:
            return int(re.sub(r"[^\d-]", "", raw))
        if "number" in types:
            return float(re.sub(r"[^\d.-]", "", raw))
        if "boolean" in types:
            return raw.lower() in ("yes", "true", "y", "1")
    except ValueError:
        return None
    return raw
