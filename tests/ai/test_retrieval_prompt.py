"""The remote classify prompt carries the nearest examples (ranked by the real local model)
and its top candidates within a token budget; without the local model, every example.

Against the local OpenAI-compatible test server: what the server received is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from connectors.ai.base import ClassifyRequest, LabelSpec
from connectors.ai.local import LocalProvider
from connectors.ai.openai_compat import OpenAICompatProvider
from connectors.ai.retrieval import LocalRetriever
from tests.fakes.openai_server import Classify, FakeOpenAI, count_tokens

from .conftest import provider_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOPICS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my subscription",
        "please refund the duplicate payment on my card",
        "send me a copy of last month's invoice",
        "my card payment was declined at checkout",
        "why is my bill higher than usual",
    ],
    "access": [
        "I forgot my password and cannot log in",
        "please give me access to the finance shared drive",
        "my account is locked after too many attempts",
        "I need admin rights on the build server",
        "the two-factor code is never accepted",
    ],
    "hardware": [
        "my laptop will not turn on",
        "the external monitor keeps flickering",
        "I need a new charger for my phone",
        "the keyboard on my laptop is missing a key",
        "the printer on floor three is jammed",
    ],
    "gardening": [
        "when should I plant tulip bulbs",
        "the tomato leaves are turning yellow",
        "how often do I water a cactus",
        "how do I get rid of moss on the lawn",
        "which roses grow well in shade",
    ],
    "music": [
        "recommend a jazz album for a rainy day",
        "how do I tune a guitar by ear",
        "who composed the moonlight sonata",
        "the drummer keeps rushing the tempo",
        "what scales should a beginner pianist practise",
    ],
    "cooking": [
        "how long do I boil an egg for a runny yolk",
        "what can I use instead of buttermilk",
        "my bread dough did not rise",
        "how do I keep rice from sticking",
        "a quick vegetarian dinner idea please",
    ],
}

REQUEST = "I got billed two times this month, please refund me"


def labels() -> list[LabelSpec]:
    return [LabelSpec(name=name, examples=list(examples)) for name, examples in TOPICS.items()]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[LocalProvider]:
    provider = LocalProvider()
    await provider.load()
    yield provider
    await provider.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def remote(
    fake_openai: FakeOpenAI, local: LocalProvider
) -> AsyncIterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider(provider_config(fake_openai), retriever=LocalRetriever(local))
    yield provider
    await provider.aclose()


async def test_prompt_carries_nearest_examples_and_local_candidates(
    fake_openai: FakeOpenAI, remote: OpenAICompatProvider
) -> None:
    answer = await remote.classify(ClassifyRequest(text=REQUEST, labels=labels()))
    system = fake_openai.requests[-1].system
    assert answer.provenance.prompt_version == "classify@2"
    # Every label can still be chosen.
    for name in TOPICS:
        assert f"- {name}\n" in system or system.endswith(f"- {name}"), name
    assert "likely labels, best first" in system
    hint = system.split("best first", 1)[1].split("\n", 1)[0]
    assert hint.split(": ", 1)[1].startswith("billing ("), hint
    # The nearest examples are there, with their label ...
    assert '"I was charged twice for my subscription" -> billing' in system
    assert '"please refund the duplicate payment on my card" -> billing' in system
    # ... far ones are not (the old prompt sent all 30): unrelated labels' examples, and
    # billing's least like it (four per label at most).
    for far in ("gardening", "music"):
        for example in TOPICS[far]:
            assert example not in system, example
    assert "why is my bill higher than usual" not in system
    shown = [line for line in system.splitlines() if line.startswith('- "')]
    assert len(shown) == 12 and shown[0].endswith("-> billing"), shown
    # The request is its own message, never part of the instructions.
    assert REQUEST not in system and fake_openai.requests[-1].user == REQUEST


async def test_examples_are_redacted_before_they_are_sent(
    fake_openai: FakeOpenAI, remote: OpenAICompatProvider
) -> None:
    secret = f"{REQUEST} to jane.doe@example.com"  # the nearest example of all
    with_pii = labels()
    with_pii[0] = with_pii[0].model_copy(update={"examples": [*TOPICS["billing"], secret]})
    answer = await remote.classify(ClassifyRequest(text=REQUEST, labels=with_pii))
    system = fake_openai.requests[-1].system
    assert "jane.doe@example.com" not in system
    assert "email" in answer.provenance.redactions


def many_labels() -> list[LabelSpec]:
    """150 labels of 10 examples each: numbered topics with distinct vocabulary."""
    words = [f"{a}{b}" for a in ("zor", "quil", "mav", "tren", "sol") for b in ("ax", "ip", "um")]
    specs = []
    for n in range(150):
        topic = f"{words[n % len(words)]} {words[(n // len(words)) % len(words)]} unit {n}"
        examples = [f"question {k} about the {topic} service, case {n * 10 + k}" for k in range(10)]
        specs.append(
            LabelSpec(name=f"topic_{n:03d}", description=f"the {topic}", examples=examples)
        )
    return specs


async def test_token_budget_holds_with_150_labels_of_10_examples(
    fake_openai: FakeOpenAI, local: LocalProvider
) -> None:
    specs = many_labels()
    budget = 1800  # the 150 label lines alone are about 1,680 tokens
    config = provider_config(fake_openai, prompt_tokens=budget)
    provider = OpenAICompatProvider(config, retriever=LocalRetriever(local))
    fake_openai.script(Classify("topic_042", confidence=0.8))
    try:
        request = "question about the " + specs[42].description.removeprefix("the ")
        await provider.classify(ClassifyRequest(text=request, labels=specs))
    finally:
        await provider.aclose()
    system = fake_openai.requests[-1].system
    # Every example would be ~25,000 tokens; the instructions keep to the budget.
    assert count_tokens(system) <= budget, count_tokens(system)
    shown = [line for line in system.splitlines() if line.startswith('- "question')]
    assert 1 <= len(shown) < 12, "the budget, not the 12-example cap, should stop it"
    assert any(line.endswith("-> topic_042") for line in shown)
    assert all(f"- topic_{n:03d}" in system for n in range(150))


async def test_labels_lose_descriptions_before_the_budget_is_broken(
    fake_openai: FakeOpenAI, local: LocalProvider
) -> None:
    specs = many_labels()
    budget = 1500  # below what the 150 described label lines alone take
    provider = OpenAICompatProvider(
        provider_config(fake_openai, prompt_tokens=budget), retriever=LocalRetriever(local)
    )
    try:
        request = "question about the " + specs[42].description.removeprefix("the ")
        await provider.classify(ClassifyRequest(text=request, labels=specs))
    finally:
        await provider.aclose()
    system = fake_openai.requests[-1].system
    assert count_tokens(system) <= budget, count_tokens(system)
    # The best candidate keeps its description; the others are names only.
    assert f"- topic_042: {specs[42].description}\n" in system
    assert "- topic_100\n" in system and specs[100].description not in system
    assert any(line.endswith("-> topic_042") for line in system.splitlines())


async def test_without_the_local_model_every_example_is_sent(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    missing = LocalProvider(model_path=tmp_path / "no-model.onnx")
    provider = OpenAICompatProvider(provider_config(fake_openai), retriever=LocalRetriever(missing))
    try:
        answer = await provider.classify(ClassifyRequest(text=REQUEST, labels=labels()))
    finally:
        await provider.aclose()
        await missing.aclose()
    system = fake_openai.requests[-1].system
    assert answer.provenance.prompt_version == "classify@1"
    assert all(example in system for examples in TOPICS.values() for example in examples)
    assert "likely labels" not in system
