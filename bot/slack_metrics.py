"""The Slack Web API, metered: every call by method and outcome, and every 429.

``MeteredWebClient`` times and counts each call; ``CountingRateLimitHandler`` counts
the 429s slack_sdk sees, also those it retried successfully (callers never see them).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

if TYPE_CHECKING:  # bot.metrics imports this module to export its adapters
    from bot.metrics import Metrics


def _method_of(url: str) -> str:
    """``https://slack.com/api/chat.postMessage`` -> ``chat.postMessage``."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"


class CountingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (honours Retry-After) that also counts every 429 it sees."""

    def __init__(self, metrics: Metrics, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._metrics = metrics

    async def can_retry_async(self, **arguments: Any) -> bool:
        # slack_sdk passes state, request, response and error by keyword; they go on whole.
        # Asked once per failed response, also when retries are exhausted: one count per 429.
        response: HttpResponse | None = arguments.get("response")
        if response is not None and response.status_code == 429:
            request: HttpRequest = arguments["request"]
            self._metrics.slack_rate_limited.labels(_method_of(request.url)).inc()
        result: bool = await super().can_retry_async(**arguments)
        return result


class MeteredWebClient(AsyncWebClient):
    """The Web API client, timing and counting each call by method and outcome."""

    def __init__(
        self, *args: Any, metrics: Metrics, tracer: trace.Tracer | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics
        self._tracer = tracer or trace.NoOpTracer()

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        with self._tracer.start_as_current_span(f"slack {api_method}") as span:
            started = time.perf_counter()
            outcome = "ok"
            try:
                response: AsyncSlackResponse = await super().api_call(api_method, **kwargs)
                return response
            except SlackApiError as exc:
                outcome = str(exc.response.get("error") or "error")[:40]
                raise
            except BaseException:
                outcome = "transport_error"
                raise
            finally:
                self._metrics.slack_call(api_method, outcome, time.perf_counter() - started)
                span.set_attribute("switchboard.outcome", outcome)
