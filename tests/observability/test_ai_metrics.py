"""AI calls, tokens and cost reach /metrics through ``MeteredAI`` around a real provider."""

from __future__ import annotations

import pytest

from bot.metrics import MeteredAI, Metrics
from connectors.ai.base import AIError, ClassifyRequest, LabelSpec, SummarizeRequest
from connectors.ai.openai_compat import ModelPrice, OpenAICompatConfig, OpenAICompatProvider
from tests.fakes.openai_server import FakeOpenAI

LABELS = [LabelSpec(name="billing"), LabelSpec(name="access")]


def config(base_url: str) -> OpenAICompatConfig:
    return OpenAICompatConfig(
        name="openai",
        api_key="sk-test-0000",
        base_url=base_url,
        model="gpt-4o-mini",
        timeout_s=2.0,
        max_retries=0,
        prices={"gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60)},
    )


async def test_calls_tokens_and_cost_are_counted() -> None:
    metrics = Metrics()
    fake = FakeOpenAI()
    async with fake.running():
        ai = MeteredAI(OpenAICompatProvider(config(f"{fake.root_url}/v1")), metrics)
        try:
            answer = await ai.classify(ClassifyRequest(text="refund my invoice", labels=LABELS))
            await ai.summarize(SummarizeRequest(text="A long story. With two sentences."))
        finally:
            await ai.aclose()
    sample = metrics.registry.get_sample_value
    model = {"provider": "openai", "model": "gpt-4o-mini"}
    assert (
        sample("switchboard_ai_calls_total", model | {"operation": "classify", "outcome": "ok"})
        == 1
    )
    assert (
        sample("switchboard_ai_calls_total", model | {"operation": "summarize", "outcome": "ok"})
        == 1
    )
    prompt = sample("switchboard_ai_tokens_total", model | {"direction": "prompt"})
    assert prompt is not None and prompt >= answer.provenance.usage.prompt_tokens > 0
    cost = sample("switchboard_ai_cost_usd_total", model)
    assert cost is not None and cost >= answer.provenance.usage.cost_usd > 0
    seconds = sample(
        "switchboard_ai_call_duration_seconds_count",
        {"provider": "openai", "operation": "classify"},
    )
    assert seconds == 1


async def test_a_failed_call_is_counted_as_an_error() -> None:
    metrics = Metrics()
    ai = MeteredAI(OpenAICompatProvider(config("http://127.0.0.1:9/v1")), metrics)
    try:
        with pytest.raises(AIError):
            await ai.classify(ClassifyRequest(text="x", labels=LABELS))
    finally:
        await ai.aclose()
    labels = {"provider": "openai", "model": "", "operation": "classify", "outcome": "error"}
    assert metrics.registry.get_sample_value("switchboard_ai_calls_total", labels) == 1
