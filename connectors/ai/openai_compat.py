"""An AI provider for any server that speaks the OpenAI chat-completions API.

``OpenAICompatProvider`` answers classify and extract with *structured outputs*
(``response_format={"type": "json_schema", "strict": true, ...}``) whose schemas are
generated from pydantic models; for classify the label is an enum of exactly the
allowed labels. Every reply is validated again with pydantic here, so a server that
ignores the schema cannot smuggle an unknown label or a malformed value through.
Summaries are plain text.

The request text is redacted (see ``redact.py``; on by default) and sent as its own
user message, never formatted into the system instructions.

Errors (see ``base.py``)::

    connection refused / reset, timeout          -> AIProviderUnavailable
    429, 408, 409, 5xx after the client's retries -> AIProviderUnavailable
    other HTTP errors (401, 403, 404, 400, ...)   -> AIProviderUnavailable (provider cannot serve)
    refusal, truncated or empty answer           -> AIInvalidAnswer
    content not JSON, or not matching the schema -> AIInvalidAnswer
    a label outside the allowed set              -> AIInvalidAnswer

Retries are the ``openai`` client's own: ``max_retries`` attempts after the first,
exponential back-off, and ``Retry-After`` / ``retry-after-ms`` honoured on 429/5xx.

Settings (the application reads them from the environment and passes
``OpenAICompatConfig`` in; nothing here reads ``os.environ``):

OpenAI::

    OpenAICompatConfig(api_key="sk-…", model="gpt-4o-mini")   # base_url defaults to api.openai.com

Azure OpenAI, v1 endpoint (key as bearer, no api-version)::

    OpenAICompatConfig(name="azure", api_key=AZURE_KEY, model="<deployment name>",
                       base_url="https://<resource>.openai.azure.com/openai/v1/")

Azure OpenAI, deployment endpoint (api-version as a query parameter, key in ``api-key``)::

    OpenAICompatConfig(name="azure", api_key=AZURE_KEY, model="<deployment name>",
                       base_url="https://<resource>.openai.azure.com/openai/deployments/<deployment>",
                       default_query={"api-version": "2024-10-21"},
                       default_headers={"api-key": AZURE_KEY})

Ollama (``ollama serve``; no key needed, one is sent anyway because the client insists)::

    OpenAICompatConfig(name="ollama", base_url="http://localhost:11434/v1", model="llama3.1:8b",
                       timeout_s=120)
    # Ollama releases before JSON-schema support: structured_output="json_object"

vLLM (``vllm serve <model> --api-key …``; guided decoding enforces the schema)::

    OpenAICompatConfig(name="vllm", base_url="http://gpu-host:8000/v1", api_key="…",
                       model="Qwen/Qwen2.5-7B-Instruct")

llama.cpp server (``llama-server -m model.gguf --port 8080``; schema → grammar)::

    OpenAICompatConfig(name="llama.cpp", base_url="http://localhost:8080/v1", model="local")

Cost is estimated from ``prices`` (USD per million tokens, keyed by model name);
a model without a price costs 0.0, as local servers do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from . import prompts
from .base import (
    AIError,
    AIInvalidAnswer,
    AIProviderUnavailable,
    Candidate,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    LabelSpec,
    Provenance,
    SummarizeRequest,
    Summary,
)
from .openai_parse import (
    Answer,
    Call,
    ModelPrice,
    answer_content,
    clamp,
    clean_value,
    parse_answer,
    unique_fields,
    unique_labels,
    usage_of,
)
from .openai_schema import (
    classify_answer_model,
    extract_answer_model,
    response_format,
    strict_json_schema,
)
from .redact import Redacted, redact
from .retrieval import ExampleRetriever, RetrievalLimits

# Callers (bot/ai.py, tests) import the price model from here, with the config it belongs to.
__all__ = ["ModelPrice", "OpenAICompatConfig", "OpenAICompatProvider"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client refuses to start without one and,
# given none, would go looking in the environment.
_KEYLESS_PLACEHOLDER = "not-needed"
_MAX_RATIONALE_CHARS = 300


class OpenAICompatConfig(BaseModel):
    """Everything the provider needs; built from the settings by the caller."""

    model_config = ConfigDict(frozen=True)

    name: str = "openai"
    """Provider name recorded in Provenance (``openai``, ``azure``, ``ollama``, …)."""
    api_key: SecretStr = SecretStr("")
    base_url: str = DEFAULT_BASE_URL
    model: str = "gpt-4o-mini"
    """Default model; a request may name another."""
    timeout_s: float = Field(default=30.0, gt=0.0)
    """Per attempt; the client retries a timed-out attempt like a 5xx."""
    max_retries: int = Field(default=2, ge=0)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    redact: bool = True
    """Redact secrets and personal data from text before it is sent."""
    temperature: float | None = 0.0
    """``None`` sends no temperature (some reasoning models accept only their default)."""
    structured_output: Literal["json_schema", "json_object"] = "json_schema"
    """``json_object`` for servers without JSON-schema support: the schema then goes
    into the instructions, and the reply is validated the same way."""
    default_headers: dict[str, str] = Field(default_factory=dict)
    default_query: dict[str, str] = Field(default_factory=dict)
    prompt_tokens: int = Field(default=2000, ge=100)
    """With a retriever: budget of a classify call's instructions (labels, candidates,
    the nearest examples); see ``retrieval.py``."""
    examples_per_label: int = Field(default=4, ge=1)
    max_examples: int = Field(default=12, ge=1)


# ---------------------------------------------------------------------------


class OpenAICompatProvider:
    """``AIProvider`` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self, config: OpenAICompatConfig, retriever: ExampleRetriever | None = None
    ) -> None:
        """``retriever``: picks the examples a classify call shows (the nearest ones and
        the local model's candidates); without one, or when it fails, every example."""
        self._config = config
        self._retriever = retriever
        self._limits = RetrievalLimits(
            prompt_tokens=config.prompt_tokens,
            per_label=config.examples_per_label,
            max_examples=config.max_examples,
        )
        self._client = AsyncOpenAI(
            api_key=config.api_key.get_secret_value() or _KEYLESS_PLACEHOLDER,
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            default_headers=config.default_headers or None,
            default_query=config.default_query or None,
        )

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> OpenAICompatConfig:
        return self._config

    async def aclose(self) -> None:
        await self._client.close()

    # -- AIProvider -----------------------------------------------------------

    async def classify(self, request: ClassifyRequest) -> Classification:
        labels = unique_labels(request.labels)
        if not labels:
            raise ValueError("classify needs at least one label")
        model = request.model or self._config.model
        text = self._redact(request.text)
        kinds = set(text.kinds)

        # Examples come from the workflow definition, but may quote real requests.
        def clean(example: str) -> str:
            redacted = self._redact(example)
            kinds.update(redacted.kinds)
            return redacted.text

        prompt, system = await self._classify_prompt(request.text, labels, clean)
        answer_type = classify_answer_model(tuple(spec.name for spec in labels))
        answer, call = await self._structured(model, system, text, answer_type, restore=False)
        confidence = clamp(answer.confidence)
        scores: dict[str, float] = {}
        for cand in answer.candidates:
            scores[cand.label] = max(scores.get(cand.label, 0.0), clamp(cand.confidence))
        scores.pop(answer.label, None)
        others = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        candidates = [Candidate(label=answer.label, confidence=confidence)] + [
            Candidate(label=label, confidence=score) for label, score in others
        ]
        return Classification(
            label=answer.label,
            confidence=confidence,
            rationale=" ".join(answer.rationale.split())[:_MAX_RATIONALE_CHARS],
            candidates=candidates,
            provenance=self._provenance(model, prompt, call, sorted(kinds)),
        )

    async def _classify_prompt(
        self, text: str, labels: list[LabelSpec], clean: Callable[[str], str]
    ) -> tuple[prompts.Prompt, str]:
        """The nearest examples when the retriever can rank them, else every example."""
        if self._retriever is not None:
            try:
                # The local model runs in this process: it may see the unredacted text.
                shortlist = await self._retriever.shortlist(text, labels)
            except AIError as exc:
                log.warning("example retrieval unavailable, sending every example: %s", exc)
            else:
                system = prompts.classify_retrieved_system(labels, shortlist, self._limits, clean)
                return prompts.CLASSIFY_RETRIEVED, system
        shown = [
            spec.model_copy(update={"examples": [clean(e) for e in spec.examples]})
            for spec in labels
        ]
        return prompts.CLASSIFY, prompts.classify_system(shown)

    async def extract(self, request: ExtractRequest) -> Extraction:
        fields = unique_fields(request.fields)
        model = request.model or self._config.model
        text = self._redact(request.text)
        answer_type = extract_answer_model(tuple((f.name, f.type, f.description) for f in fields))
        system = prompts.extract_system(fields)
        answer, call = await self._structured(model, system, text, answer_type, restore=True)
        raw = answer.model_dump(by_alias=True)
        values: dict[str, str | int | float | bool | None] = {}
        missing: list[str] = []
        for spec in fields:
            value = clean_value(spec, raw.get(spec.name))
            values[spec.name] = value
            if value is None and spec.required:
                missing.append(spec.name)
        return Extraction(
            values=values,
            missing=missing,
            method="model",
            provenance=self._provenance(model, prompts.EXTRACT, call, text.kinds),
        )

    async def summarize(self, request: SummarizeRequest) -> Summary:
        model = request.model or self._config.model
        text = self._redact(request.text)
        call = await self._chat(
            model=model,
            system=prompts.summarize_system(request.max_sentences),
            user=text.text,
            response_format=None,
        )
        summary = " ".join(text.restore(call.content).split())
        if not summary:
            raise AIInvalidAnswer(f"{self.name}: empty summary")
        return Summary(
            text=summary,
            method="model",
            provenance=self._provenance(model, prompts.SUMMARIZE, call, text.kinds),
        )

    # -- the call -------------------------------------------------------------

    def _redact(self, text: str) -> Redacted:
        return redact(text) if self._config.redact else Redacted(text=text, kinds=[])

    async def _structured(
        self, model: str, system: str, text: Redacted, answer_type: type[Answer], *, restore: bool
    ) -> tuple[Answer, Call]:
        """Ask for JSON matching ``answer_type``; ``restore`` puts redacted values back in it."""
        schema = strict_json_schema(answer_type)
        mode = self._config.structured_output
        form, system = response_format(mode, answer_type.__name__.lower(), schema, system)
        call = await self._chat(model=model, system=system, user=text.text, response_format=form)
        answer = parse_answer(self.name, call.content, answer_type, text if restore else None)
        return answer, call

    async def _chat(
        self,
        *,
        model: str,
        system: str,
        user: str,
        response_format: ResponseFormat | None,
    ) -> Call:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        options: dict[str, Any] = {}
        if response_format is not None:
            options["response_format"] = response_format
        if self._config.temperature is not None:
            options["temperature"] = self._config.temperature
        started = time.perf_counter()
        try:
            # Typed as object: the client hands back a bare string when a 200 reply is
            # not JSON (a proxy's HTML page, say), whatever its annotations promise.
            completion: object = await self._client.chat.completions.create(
                model=model, messages=messages, **options
            )
        except openai.APITimeoutError as exc:
            raise self._unavailable(f"timed out after {self._config.timeout_s:g}s", exc) from exc
        except openai.APIConnectionError as exc:
            raise self._unavailable("could not connect", exc) from exc
        except openai.APIStatusError as exc:
            raise self._unavailable(f"HTTP {exc.status_code}", exc) from exc
        except openai.APIResponseValidationError as exc:
            raise AIInvalidAnswer(f"{self.name}: malformed response body") from exc
        except openai.APIError as exc:
            raise self._unavailable(type(exc).__name__, exc) from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not isinstance(completion, ChatCompletion):
            raise AIInvalidAnswer(f"{self.name}: response is not a chat completion")
        return Call(
            content=answer_content(self.name, completion),
            usage=usage_of(model, completion, self._config.prices),
            latency_ms=latency_ms,
        )

    def _unavailable(self, what: str, exc: Exception) -> AIProviderUnavailable:
        log.warning("AI provider %s unavailable: %s (%s)", self.name, what, type(exc).__name__)
        retries = self._config.max_retries
        return AIProviderUnavailable(f"{self.name}: {what} (after up to {retries} retries)")

    def _provenance(
        self, model: str, prompt: prompts.Prompt, call: Call, redactions: list[str]
    ) -> Provenance:
        return Provenance(
            provider=self.name,
            model=model,
            prompt_version=prompt.version,
            usage=call.usage,
            latency_ms=call.latency_ms,
            redactions=list(redactions),
        )
