"""Fixtures for the AI provider tests: a fake OpenAI-compatible server on loopback and
providers pointed at it with timeouts small enough to keep the suite fast.

One server serves a whole test module (uvicorn takes a fifth of a second to stop,
which per test would dominate the suite), so modules using these fixtures run their
tests in the module's event loop::

    pytestmark = pytest.mark.asyncio(loop_scope="module")

``fake_openai`` resets the server's script and records before each test. Nothing
here is autouse, so other test modules in this folder are unaffected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from connectors.ai.base import LabelSpec
from connectors.ai.openai_compat import ModelPrice, OpenAICompatConfig, OpenAICompatProvider
from tests.fakes.openai_server import FakeOpenAI

PRICES = {"gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60)}

LABELS = [
    LabelSpec(name="billing", description="Invoices, payments, refunds"),
    LabelSpec(name="access", description="Accounts, passwords, permissions"),
    LabelSpec(name="hardware", description="Laptops, monitors, phones"),
]

ProviderFactory = Callable[..., OpenAICompatProvider]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    async with fake.running():
        yield fake


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


def provider_config(fake: FakeOpenAI, **overrides: Any) -> OpenAICompatConfig:
    settings: dict[str, Any] = {
        "name": "openai",
        "api_key": "sk-test-0000",
        "base_url": f"{fake.root_url}/v1",
        "model": "gpt-4o-mini",
        "timeout_s": 2.0,
        "max_retries": 2,
        "prices": PRICES,
    }
    settings.update(overrides)
    return OpenAICompatConfig(**settings)


@pytest_asyncio.fixture(loop_scope="module")
async def make_provider(fake_openai: FakeOpenAI) -> AsyncIterator[ProviderFactory]:
    """Build providers against ``fake_openai``; keyword arguments override the config."""
    made: list[OpenAICompatProvider] = []

    def make(**overrides: Any) -> OpenAICompatProvider:
        provider = OpenAICompatProvider(provider_config(fake_openai, **overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _shared_provider(openai_server: FakeOpenAI) -> AsyncIterator[OpenAICompatProvider]:
    # Providers are stateless between calls, and building one costs an SSL context.
    provider = OpenAICompatProvider(provider_config(openai_server))
    yield provider
    await provider.aclose()


@pytest.fixture
def provider(
    _shared_provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> OpenAICompatProvider:
    """The default provider (2 s timeout, 2 retries) against a freshly reset server."""
    return _shared_provider


@pytest.fixture
def labels() -> list[LabelSpec]:
    return [spec.model_copy() for spec in LABELS]
