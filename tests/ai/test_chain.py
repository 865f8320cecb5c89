"""ProviderChain: a remote model, then a local one, each on its own server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from connectors.ai.base import (
    AIInvalidAnswer,
    AIProvider,
    AIProviderUnavailable,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    FieldSpec,
    LabelSpec,
    Provenance,
    SummarizeRequest,
    Summary,
)
from connectors.ai.chain import ProviderChain
from connectors.ai.openai_compat import OpenAICompatProvider
from tests.fakes.openai_server import Content, Delay, Fail, FakeOpenAI

from .conftest import provider_config

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local_server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    async with fake.running():
        yield fake


@pytest.fixture
def remote(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


@pytest.fixture
def local(local_server: FakeOpenAI) -> FakeOpenAI:
    local_server.reset()
    return local_server


@pytest_asyncio.fixture(loop_scope="module")
async def chain(remote: FakeOpenAI, local: FakeOpenAI) -> AsyncIterator[ProviderChain]:
    chain = ProviderChain(
        [
            OpenAICompatProvider(
                provider_config(remote, name="openai", timeout_s=0.3, max_retries=1)
            ),
            OpenAICompatProvider(
                provider_config(local, name="ollama", model="llama3.1:8b", max_retries=0)
            ),
        ]
    )
    yield chain
    await chain.aclose()


class Stub:
    """A hand-written AIProvider for what a real server cannot do (raise a bug, count closes)."""

    def __init__(self, name: str, error: Exception | None = None) -> None:
        self._name = name
        self.error = error
        self.calls = 0
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    def _provenance(self) -> Provenance:
        return Provenance(provider=self._name, model="stub", prompt_version="stub@1")

    async def classify(self, request: ClassifyRequest) -> Classification:
        self.calls += 1
        if self.error is not None:
            raise self.error
        label = request.labels[0].name
        return Classification(label=label, confidence=0.5, provenance=self._provenance())

    async def extract(self, request: ExtractRequest) -> Extraction:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Extraction(values={}, method="rules", provenance=self._provenance())

    async def summarize(self, request: SummarizeRequest) -> Summary:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Summary(text=request.text, method="extractive", provenance=self._provenance())

    async def aclose(self) -> None:
        self.closed = True


LABELS = [LabelSpec(name="billing"), LabelSpec(name="access")]


async def test_stub_is_a_provider() -> None:
    provider: AIProvider = Stub("x")  # checked by mypy; the chain accepts any AIProvider
    assert provider.name == "x"


async def test_first_provider_answers_and_the_rest_are_not_asked(
    chain: ProviderChain, remote: FakeOpenAI, local: FakeOpenAI
) -> None:
    result = await chain.classify(ClassifyRequest(text="access please", labels=LABELS))
    assert result.label == "access"
    assert result.provenance.provider == "openai"
    assert len(remote.requests) == 1
    assert local.requests == []


async def test_unavailable_remote_falls_through_to_local(
    chain: ProviderChain, remote: FakeOpenAI, local: FakeOpenAI
) -> None:
    remote.default = Fail(500, retry_after_ms=10)
    result = await chain.classify(ClassifyRequest(text="billing run", labels=LABELS))
    assert result.label == "billing"
    assert result.provenance.provider == "ollama"
    assert result.provenance.model == "llama3.1:8b"
    assert len(remote.requests) == 2  # one attempt and the client's one retry
    assert len(local.requests) == 1


async def test_timed_out_remote_falls_through_to_local(
    chain: ProviderChain, remote: FakeOpenAI, local: FakeOpenAI
) -> None:
    remote.default = Delay(5.0)
    started = time.monotonic()
    result = await chain.summarize(SummarizeRequest(text="One. Two. Three."))
    assert result.provenance.provider == "ollama"
    assert result.text == "One. Two."
    assert time.monotonic() - started < 3.0


async def test_invalid_answer_falls_through_to_local(
    chain: ProviderChain, remote: FakeOpenAI, local: FakeOpenAI
) -> None:
    remote.script(Content("not json at all"))
    result = await chain.extract(
        ExtractRequest(text="vendor: Acme", fields=[FieldSpec(name="vendor")])
    )
    assert result.values == {"vendor": "Acme"}
    assert result.provenance.provider == "ollama"


async def test_all_failing_raises_the_last_error(
    chain: ProviderChain, remote: FakeOpenAI, local: FakeOpenAI
) -> None:
    remote.default = Fail(503, retry_after_ms=10)
    local.script(Content('{"label": "root"}'))
    with pytest.raises(AIInvalidAnswer, match="ollama"):
        await chain.classify(ClassifyRequest(text="x", labels=LABELS))

    local.default = Fail(502)
    with pytest.raises(AIProviderUnavailable, match="ollama: HTTP 502"):
        await chain.classify(ClassifyRequest(text="x", labels=LABELS))


async def test_other_exceptions_are_bugs_and_propagate_at_once() -> None:
    first, second = Stub("broken", RuntimeError("bug")), Stub("spare")
    chain = ProviderChain([first, second])
    with pytest.raises(RuntimeError, match="bug"):
        await chain.classify(ClassifyRequest(text="x", labels=LABELS))
    assert second.calls == 0


async def test_chain_of_stubs_falls_through_in_order() -> None:
    a = Stub("a", AIProviderUnavailable("a down"))
    b = Stub("b", AIInvalidAnswer("b nonsense"))
    c = Stub("c")
    chain = ProviderChain([a, b, c])
    assert chain.name == "a>b>c"
    result = await chain.summarize(SummarizeRequest(text="hi"))
    assert result.provenance.provider == "c"
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)
    extraction = await chain.extract(ExtractRequest(text="hi", fields=[]))
    assert extraction.provenance.provider == "c"


async def test_aclose_closes_every_provider() -> None:
    stubs = [Stub("a"), Stub("b")]
    await ProviderChain(stubs).aclose()
    assert all(s.closed for s in stubs)


async def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ProviderChain([])
