"""The local AI provider: the embedded default, no key, no network, no download at run time.

``classify`` fits a few-shot classifier from the examples in the request (see
``local_classifier``) and caches it per label set on the instance; ``extract`` and
``summarize`` are rule-based and extractive (``local_rules``). All CPU work runs in a
worker thread so the event loop never stalls.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from connectors.ai.base import (
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
from connectors.ai.local_classifier import (
    METHOD_VERSION,
    FewShotClassifier,
    Prediction,
    training_set,
)
from connectors.ai.local_embed import MODEL_NAME, MiniLMEmbedder
from connectors.ai.local_rules import extract_fields, extractive_summary
from connectors.ai.model_cache import REFIT_WAIT_S, ModelCache

PROVIDER = "local"
EXTRACT_VERSION = "local-rules-v1"
SUMMARY_VERSION = "local-extractive-v1"
# How many candidates a classification lists (the triage buttons).
MAX_CANDIDATES = 5
# Characters of the label-set digest a prediction's provenance names its model by.
VERSION_CHARS = 16


def label_set_key(labels: list[LabelSpec]) -> str:
    """Stable hash of everything the fitted model depends on (names, descriptions, examples).

    Hand-rolled rather than a JSON dump: it runs on every request, over every example.
    """
    digest = hashlib.sha256(METHOD_VERSION.encode())
    for label in labels:
        parts = [label.name, label.description, *label.examples]
        for group in sorted(label.example_groups):
            parts += ["\x1d" + group, *label.example_groups[group]]
        # Length-prefixed, so no choice of text can make two label sets collide.
        digest.update("".join(f"{len(p)}:{p}" for p in parts).encode() + b"\x1e")
    return digest.hexdigest()


class LocalProvider:
    """``AIProvider`` running entirely in-process on the CPU."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        threads: int = 2,
        max_cached_models: int = 32,
        refit_wait_s: float | None = REFIT_WAIT_S,
    ) -> None:
        self._embedder = MiniLMEmbedder(model_path=model_path, threads=threads)
        # ``refit_wait_s=None``: a changed family waits for its new model (benchmarks).
        self._cache: ModelCache[FewShotClassifier] = ModelCache(
            max_models=max_cached_models, refit_wait_s=refit_wait_s
        )

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def fits(self) -> int:
        """How many models this instance has fitted (cache misses)."""
        return self._cache.fits

    @property
    def model_load_seconds(self) -> float | None:
        return self._embedder.load_seconds

    async def load(self) -> None:
        """Load and verify the model now instead of on the first request (e.g. at start-up)."""
        await asyncio.to_thread(self._embedder.load)

    def fitted(self, labels: list[LabelSpec]) -> FewShotClassifier:
        """The model for ``labels``, fitted on first use (synchronous: call from a thread)."""
        return self.versioned(labels)[1]

    def versioned(
        self, labels: list[LabelSpec], family: str | None = None
    ) -> tuple[str, FewShotClassifier]:
        """(model version, model) answering for ``labels``: see ``model_cache``. The version
        is the label-set digest of the model used (the family's previous one while a refit
        is under way)."""
        key = label_set_key(labels)
        digest, model = self._cache.get(
            key, lambda: FewShotClassifier(labels, self._embedder.embed), family
        )
        return digest[:VERSION_CHARS], model

    def score(self, labels: list[LabelSpec], texts: list[str]) -> Prediction:
        """Label probabilities, nearest-example similarity and confidences for many texts at
        once (synchronous): the evaluation path, same model and numbers as ``classify``."""
        return self._predict(self.fitted(labels), texts)

    def _predict(self, model: FewShotClassifier, texts: list[str]) -> Prediction:
        return model.predict(self._embedder.embed(texts, cache=False), texts)

    def _classify_sync(self, request: ClassifyRequest) -> Classification:
        started = time.perf_counter()
        version, model = self.versioned(request.labels, request.model_family)
        confidences = self._predict(model, [request.text]).confidences()[0]
        order = confidences.argsort()[::-1][:MAX_CANDIDATES]
        candidates = [
            Candidate(label=model.labels[i], confidence=round(float(confidences[i]), 4))
            for i in order
        ]
        best = candidates[0]
        return Classification(
            label=best.label,
            confidence=best.confidence,
            rationale="nearest label by example similarity (local few-shot model)",
            candidates=candidates,
            provenance=Provenance(
                provider=PROVIDER,
                model=MODEL_NAME,
                prompt_version=METHOD_VERSION,
                latency_ms=(time.perf_counter() - started) * 1000,
                model_version=version,
            ),
        )

    def neighbours(
        self, labels: list[LabelSpec], text: str
    ) -> tuple[list[Candidate], list[tuple[str, str, float]]]:
        """For ``text`` (synchronous): the top candidates, and every written example as
        (label, example, cosine similarity). Raises ``AIProviderUnavailable`` without the
        model. A label without examples has none (its name stands in only for fitting)."""
        model = self.fitted(labels)
        vector = self._embedder.embed([text], cache=False)
        confidences = self._predict(model, [text]).confidences()[0]
        order = confidences.argsort()[::-1][:MAX_CANDIDATES]
        candidates = [
            Candidate(label=model.labels[i], confidence=round(float(confidences[i]), 4))
            for i in order
        ]
        texts, _, owners = training_set(labels)
        written = {label.name for label in labels if label.examples or label.example_groups}
        similarity = model.similarities(vector)[0]
        examples = [
            (owner, example, float(similarity[i]))
            for i, (example, owner) in enumerate(zip(texts, owners, strict=True))
            if owner in written
        ]
        return candidates, examples

    async def classify(self, request: ClassifyRequest) -> Classification:
        if not request.labels:
            raise ValueError("classify needs at least one label")
        return await asyncio.to_thread(self._classify_sync, request)

    async def extract(self, request: ExtractRequest) -> Extraction:
        started = time.perf_counter()
        values, missing = await asyncio.to_thread(extract_fields, request.text, request.fields)
        return Extraction(
            values=values,
            missing=missing,
            method="rules",
            provenance=Provenance(
                provider=PROVIDER,
                model="rules",
                prompt_version=EXTRACT_VERSION,
                latency_ms=(time.perf_counter() - started) * 1000,
            ),
        )

    async def summarize(self, request: SummarizeRequest) -> Summary:
        started = time.perf_counter()
        text = await asyncio.to_thread(
            extractive_summary, request.text, max(1, request.max_sentences)
        )
        return Summary(
            text=text,
            method="extractive",
            provenance=Provenance(
                provider=PROVIDER,
                model="tfidf-centrality",
                prompt_version=SUMMARY_VERSION,
                latency_ms=(time.perf_counter() - started) * 1000,
            ),
        )

    async def aclose(self) -> None:
        self._cache.clear()
        self._embedder.close()
