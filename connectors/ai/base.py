"""The one interface every AI provider implements, and the shapes it speaks.

Providers answer three questions: which label fits a text (``classify``), which
typed fields a text contains (``extract``) and what a text says in brief
(``summarize``). Every answer carries the provider, model and prompt version
that produced it, so a result stored on a step can always be traced back.

Exceptions::

    AIError                      base; never raised bare
    ├── AIProviderUnavailable    timed out, refused, 5xx/429 after retries: next provider
    └── AIInvalidAnswer          the provider answered, but not with something we can use
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field


class AIError(Exception):
    """Base of every error an AI provider raises."""


class AIProviderUnavailable(AIError):
    """The provider could not be reached or kept failing after its retries."""


class AIInvalidAnswer(AIError):
    """The provider answered with something that does not validate."""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Provenance(BaseModel):
    """Who produced an answer; stored with every AI result and in the audit trail."""

    provider: str
    model: str
    prompt_version: str
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    redactions: list[str] = Field(default_factory=list)
    """Kinds of data removed before the text left the process (e.g. ``email``)."""
    model_version: str | None = None
    """Which fitted model answered: a digest of its method and every label and example it
    was fitted on (the local provider), so a prediction names the examples it was made with."""


class LabelSpec(BaseModel):
    name: str
    description: str = ""
    examples: list[str] = Field(default_factory=list)
    example_groups: dict[str, list[str]] = Field(default_factory=dict)
    """Optional: more examples, grouped by kind of request within this label (a team's
    label covering several intents). The local provider learns each group as its own class
    and adds their probabilities up per label: measured on CLINC150 (10-shot, domains as
    labels) that routes better than one flat example list."""


class ClassifyRequest(BaseModel):
    text: str
    labels: list[LabelSpec]
    model: str | None = None
    model_family: str | None = None
    """A stable name for a label set that changes as it learns (``workflow:step``). With it,
    the local provider refits a changed set in the background and keeps answering with the
    family's previous model until the new one is ready (after a short, bounded wait)."""


class Candidate(BaseModel):
    label: str
    confidence: float = Field(ge=0.0, le=1.0)


class Classification(BaseModel):
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str = ""
    candidates: list[Candidate] = Field(default_factory=list)
    """Best first, the chosen label included; used for triage buttons."""
    provenance: Provenance


FieldType = Literal["str", "int", "float", "bool", "date", "email", "money"]


class FieldSpec(BaseModel):
    name: str
    type: FieldType = "str"
    description: str = ""
    pattern: str | None = None
    """A regular expression with one group: the offline extractor's rule for this field."""
    required: bool = True


class ExtractRequest(BaseModel):
    text: str
    fields: list[FieldSpec]
    model: str | None = None


class Extraction(BaseModel):
    values: dict[str, str | int | float | bool | None]
    missing: list[str] = Field(default_factory=list)
    """Required fields the text did not contain: reported, never invented."""
    method: Literal["model", "rules"] = "model"
    provenance: Provenance


class SummarizeRequest(BaseModel):
    text: str
    max_sentences: int = 3
    model: str | None = None


class Summary(BaseModel):
    text: str
    method: Literal["model", "extractive"] = "model"
    provenance: Provenance


class AIProvider(Protocol):
    """What the workflow engine needs from an AI provider."""

    @property
    def name(self) -> str: ...

    async def classify(self, request: ClassifyRequest) -> Classification: ...

    async def extract(self, request: ExtractRequest) -> Extraction: ...

    async def summarize(self, request: SummarizeRequest) -> Summary: ...

    async def aclose(self) -> None: ...
