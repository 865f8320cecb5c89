"""A provider that tries several providers in order: e.g. a remote model, then the local one.

``ProviderChain`` moves to the next provider when one raises ``AIProviderUnavailable``
or ``AIInvalidAnswer``; if every provider fails it raises the last error. Any other
exception is a bug and propagates at once. The answer's ``Provenance`` names the
provider that actually produced it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .base import (
    AIInvalidAnswer,
    AIProvider,
    AIProviderUnavailable,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    SummarizeRequest,
    Summary,
)

log = logging.getLogger(__name__)

_R = TypeVar("_R")


class ProviderChain:
    """``AIProvider`` that falls through its providers in order."""

    def __init__(self, providers: Sequence[AIProvider]) -> None:
        if not providers:
            raise ValueError("ProviderChain needs at least one provider")
        self._providers = tuple(providers)

    @property
    def name(self) -> str:
        return ">".join(p.name for p in self._providers)

    @property
    def providers(self) -> tuple[AIProvider, ...]:
        return self._providers

    async def classify(self, request: ClassifyRequest) -> Classification:
        return await self._first("classify", lambda p: p.classify(request))

    async def extract(self, request: ExtractRequest) -> Extraction:
        return await self._first("extract", lambda p: p.extract(request))

    async def summarize(self, request: SummarizeRequest) -> Summary:
        return await self._first("summarize", lambda p: p.summarize(request))

    async def aclose(self) -> None:
        # The exit stack closes every provider even when one of them fails to close.
        async with contextlib.AsyncExitStack() as stack:
            for provider in reversed(self._providers):
                stack.push_async_callback(provider.aclose)

    async def _first(self, task: str, call: Callable[[AIProvider], Awaitable[_R]]) -> _R:
        *fallible, last = self._providers
        for i, provider in enumerate(fallible):
            try:
                return await call(provider)
            except (AIProviderUnavailable, AIInvalidAnswer) as exc:
                log.warning(
                    "AI provider %s failed to %s (%s: %s); trying %s",
                    provider.name,
                    task,
                    type(exc).__name__,
                    exc,
                    self._providers[i + 1].name,
                )
        # The last provider's error, if any, is the chain's error.
        return await call(last)
