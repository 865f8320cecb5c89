"""Which AI provider the engine uses: built once from the settings.

No ``OPENAI_API_KEY`` and no ``OPENAI_BASE_URL``: the local provider alone (no
network, no key, no download). Otherwise the OpenAI-compatible provider first
and the local one behind it, so an outage or a malformed answer degrades to
the offline model instead of to nothing.
"""

from __future__ import annotations

from bot.settings import Settings
from connectors.ai.base import AIProvider
from connectors.ai.chain import ProviderChain
from connectors.ai.local import LocalProvider
from connectors.ai.openai_compat import OpenAICompatConfig, OpenAICompatProvider
from connectors.ai.retrieval import LocalRetriever


def build_ai(settings: Settings) -> AIProvider:
    local = LocalProvider()
    if not settings.openai_api_key.get_secret_value() and not settings.openai_base_url:
        return local
    remote_config = OpenAICompatConfig(
        api_key=settings.openai_api_key,
        model=settings.openai_model,
        redact=settings.ai_redact,
        timeout_s=settings.openai_timeout_s,
        **({"base_url": settings.openai_base_url} if settings.openai_base_url else {}),
    )
    # The remote model sees the nearest examples, ranked by the local model it falls back to.
    remote = OpenAICompatProvider(remote_config, retriever=LocalRetriever(local))
    return ProviderChain([remote, local])
