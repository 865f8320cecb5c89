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

import datetime as dt
import functools
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model

from . import prompts
from .base import (
    AIInvalidAnswer,
    AIProviderUnavailable,
    Candidate,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    FieldSpec,
    FieldType,
    LabelSpec,
    Provenance,
    SummarizeRequest,
    Summary,
    Usage,
)
from .redact import Redacted, redact

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client refuses to start without one and,
# given none, would go looking in the environment.
_KEYLESS_PLACEHOLDER = "not-needed"
_MAX_RATIONALE_CHARS = 300
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_million: float = Field(default=0.0, ge=0.0)
    output_per_million: float = Field(default=0.0, ge=0.0)


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


# ---------------------------------------------------------------------------
# Answer models: the JSON schemas sent to the server and the validators of replies.


class _CandidateAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    confidence: float


class _ClassifyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The best label, exactly as listed.")
    confidence: float = Field(description="Probability from 0 to 1 that the label is right.")
    rationale: str = Field(description="One short sentence.")
    candidates: list[_CandidateAnswer] = Field(description="Up to three labels, best first.")


@functools.lru_cache(maxsize=256)
def _classify_answer_model(labels: tuple[str, ...]) -> type[_ClassifyAnswer]:
    # Literal over the allowed labels: the schema carries them as an enum, and the
    # same model rejects any other label in the reply.
    allowed: Any = Literal[labels]
    candidate = create_model(
        "Candidate",
        __base__=_CandidateAnswer,
        label=(allowed, ...),
    )
    return create_model(
        "Classification",
        __base__=_ClassifyAnswer,
        label=(allowed, Field(description="The best label, exactly as listed.")),
        candidates=(list[candidate], Field(description="Up to three labels, best first.")),
    )


_FIELD_TYPES: dict[FieldType, tuple[Any, str]] = {
    "str": (str, ""),
    "int": (int, "A whole number."),
    "float": (float, "A number."),
    "bool": (bool, "true or false."),
    "date": (dt.date, "A date, YYYY-MM-DD."),
    # Checked after placeholders are restored, so a redacted address still counts.
    "email": (str, "An e-mail address."),
    "money": (float, "The amount as a plain number, without currency."),
}


@functools.lru_cache(maxsize=256)
def _extract_answer_model(fields: tuple[tuple[str, FieldType, str], ...]) -> type[BaseModel]:
    # Python names f0, f1, … with the declared names as aliases: a field may be
    # called anything a workflow author likes ("PO number", "class", …).
    definitions: dict[str, Any] = {}
    for i, (name, ftype, description) in enumerate(fields):
        py_type, hint = _FIELD_TYPES[ftype]
        text = " ".join(part for part in (description, hint) if part) or None
        definitions[f"f{i}"] = (py_type | None, Field(alias=name, description=text))
    model: type[BaseModel] = create_model(
        "Extraction",
        __config__=ConfigDict(extra="forbid", coerce_numbers_to_str=True),
        **definitions,
    )
    return model


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the subset strict structured outputs accept.

    Every object closed (``additionalProperties: false``) with every property
    required (optional values are nullable instead), references inlined, and
    titles and defaults dropped.
    """
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "default"):
                continue
            if key == "properties":
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key == "const":
                out["enum"] = [value]
            else:
                out[key] = walk(value)
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        return out

    result: dict[str, Any] = walk(schema)
    return result


# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    content: str
    usage: Usage
    latency_ms: float


_T = TypeVar("_T", bound=BaseModel)


class OpenAICompatProvider:
    """``AIProvider`` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, config: OpenAICompatConfig) -> None:
        self._config = config
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
        labels = _unique_labels(request.labels)
        if not labels:
            raise ValueError("classify needs at least one label")
        model = request.model or self._config.model
        text = self._redact(request.text)
        kinds = set(text.kinds)
        # Examples come from the workflow definition, but may quote real requests.
        shown: list[LabelSpec] = []
        for spec in labels:
            examples = [self._redact(e) for e in spec.examples]
            kinds.update(k for e in examples for k in e.kinds)
            shown.append(spec.model_copy(update={"examples": [e.text for e in examples]}))

        answer_type = _classify_answer_model(tuple(spec.name for spec in labels))
        answer, call = await self._structured(
            model=model,
            system=prompts.classify_system(shown),
            user=text.text,
            schema_name="classification",
            answer_type=answer_type,
        )
        confidence = _clamp(answer.confidence)
        scores: dict[str, float] = {}
        for cand in answer.candidates:
            scores[cand.label] = max(scores.get(cand.label, 0.0), _clamp(cand.confidence))
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
            provenance=self._provenance(model, prompts.CLASSIFY, call, sorted(kinds)),
        )

    async def extract(self, request: ExtractRequest) -> Extraction:
        fields = _unique_fields(request.fields)
        model = request.model or self._config.model
        text = self._redact(request.text)
        answer_type = _extract_answer_model(tuple((f.name, f.type, f.description) for f in fields))
        answer, call = await self._structured(
            model=model,
            system=prompts.extract_system(fields),
            user=text.text,
            schema_name="extraction",
            answer_type=answer_type,
            restore=text,
        )
        raw = answer.model_dump(by_alias=True)
        values: dict[str, str | int | float | bool | None] = {}
        missing: list[str] = []
        for spec in fields:
            value = _clean_value(spec, raw.get(spec.name))
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
        self,
        *,
        model: str,
        system: str,
        user: str,
        schema_name: str,
        answer_type: type[_T],
        restore: Redacted | None = None,
    ) -> tuple[_T, _Call]:
        schema = strict_json_schema(answer_type)
        response_format: ResponseFormat
        if self._config.structured_output == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        else:
            response_format = {"type": "json_object"}
            system += prompts.json_object_suffix(schema)
        call = await self._chat(
            model=model, system=system, user=user, response_format=response_format
        )
        try:
            data = json.loads(_strip_code_fence(call.content))
        except ValueError as exc:
            raise AIInvalidAnswer(f"{self.name}: answer is not valid JSON") from exc
        if restore is not None:
            data = _restore_strings(data, restore)
        try:
            answer = answer_type.model_validate(data)
        except ValidationError as exc:
            # Without the input values: they may echo request text.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise AIInvalidAnswer(
                f"{self.name}: answer does not match the schema ({problems})"
            ) from exc
        return answer, call

    async def _chat(
        self,
        *,
        model: str,
        system: str,
        user: str,
        response_format: ResponseFormat | None,
    ) -> _Call:
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
        return _Call(
            content=self._content(completion),
            usage=self._usage(model, completion),
            latency_ms=latency_ms,
        )

    def _unavailable(self, what: str, exc: Exception) -> AIProviderUnavailable:
        log.warning("AI provider %s unavailable: %s (%s)", self.name, what, type(exc).__name__)
        retries = self._config.max_retries
        return AIProviderUnavailable(f"{self.name}: {what} (after up to {retries} retries)")

    def _content(self, completion: ChatCompletion) -> str:
        choices = completion.choices or []
        if not choices:
            raise AIInvalidAnswer(f"{self.name}: response has no choices")
        choice = choices[0]
        if choice.message.refusal:
            raise AIInvalidAnswer(f"{self.name}: the model refused")
        if choice.finish_reason == "length":
            raise AIInvalidAnswer(f"{self.name}: answer cut off at the token limit")
        if choice.finish_reason == "content_filter":
            raise AIInvalidAnswer(f"{self.name}: answer withheld by a content filter")
        content = choice.message.content
        if not content or not content.strip():
            raise AIInvalidAnswer(f"{self.name}: empty answer")
        return content

    def _usage(self, model: str, completion: ChatCompletion) -> Usage:
        if completion.usage is None:
            return Usage()
        prompt_tokens = completion.usage.prompt_tokens or 0
        completion_tokens = completion.usage.completion_tokens or 0
        prices = self._config.prices
        # Servers often answer with a dated model name (gpt-4o-mini-2024-07-18).
        price = prices.get(model) or prices.get(completion.model or "")
        cost = 0.0
        if price is not None:
            cost = (
                prompt_tokens * price.input_per_million
                + completion_tokens * price.output_per_million
            ) / 1_000_000
        return Usage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost
        )

    def _provenance(
        self, model: str, prompt: prompts.Prompt, call: _Call, redactions: list[str]
    ) -> Provenance:
        return Provenance(
            provider=self.name,
            model=model,
            prompt_version=prompt.version,
            usage=call.usage,
            latency_ms=call.latency_ms,
            redactions=list(redactions),
        )


# ---------------------------------------------------------------------------


def _unique_labels(labels: list[LabelSpec]) -> list[LabelSpec]:
    seen: set[str] = set()
    out = []
    for spec in labels:
        if spec.name and spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def _unique_fields(fields: list[FieldSpec]) -> list[FieldSpec]:
    seen: set[str] = set()
    out = []
    for spec in fields:
        if spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def _clamp(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def _strip_code_fence(content: str) -> str:
    # Some local models wrap JSON in a markdown fence despite being told not to.
    stripped = content.strip()
    match = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    return match.group(1) if match else stripped


def _restore_strings(data: Any, redacted: Redacted) -> Any:
    if isinstance(data, str):
        return redacted.restore(data)
    if isinstance(data, dict):
        return {key: _restore_strings(value, redacted) for key, value in data.items()}
    if isinstance(data, list):
        return [_restore_strings(value, redacted) for value in data]
    return data


def _clean_value(spec: FieldSpec, value: Any) -> str | int | float | bool | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        if spec.type == "email" and not _EMAIL_RE.match(stripped):
            # Not an address (or a placeholder that may not be restored): not found.
            return None
        return stripped
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float):
        return value
    return None
