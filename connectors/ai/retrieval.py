"""What a remote model is shown to classify a request: the nearest examples and the local
model's top candidates, within a token budget, instead of every example.

A label set of 150 labels with 10 examples each is some 15,000 prompt tokens per request
when every example goes in; most of them are about other things. The local model (MiniLM
embeddings, in-process) ranks the written examples by similarity to the request and
proposes its top labels; the remote model then sees:

1. every label (name and description: it must be able to pick any of them);
2. the local model's top candidates with their confidences (a hint, not the answer);
3. examples in this order until the budget is used: the nearest example of each top
   candidate (so each is illustrated), then the nearest examples overall, at most
   ``per_label`` per label and ``max_examples`` in all.

Tokens are estimated as one per four characters (the usual rule for English text with
OpenAI tokenizers); the budget covers the system instructions, not the response schema.
Without the local model (its file missing or altered), the caller falls back to the
prompt with every example.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .base import Candidate, LabelSpec

if TYPE_CHECKING:  # the model's module loads numpy; prompts import this one
    from .local import LocalProvider

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Neighbour:
    label: str
    text: str
    similarity: float


@dataclass(frozen=True)
class Shortlist:
    candidates: list[Candidate]
    """The local model's best labels, best first."""
    neighbours: list[Neighbour]
    """Every written example with its similarity to the request, in any order."""


@dataclass(frozen=True)
class RetrievalLimits:
    prompt_tokens: int = 2000
    """Budget for the whole system prompt of a classify call."""
    per_label: int = 4
    max_examples: int = 12
    candidates: int = 3


class ExampleRetriever(Protocol):
    async def shortlist(self, text: str, labels: list[LabelSpec]) -> Shortlist:
        """Raises ``AIError`` when it cannot (the caller then shows every example)."""
        ...


class LocalRetriever:
    """``ExampleRetriever`` over the local provider's model (shared with it: one fit per
    label set serves both local classification and retrieval)."""

    def __init__(self, local: LocalProvider) -> None:
        self._local = local

    async def shortlist(self, text: str, labels: list[LabelSpec]) -> Shortlist:
        candidates, examples = await asyncio.to_thread(self._local.neighbours, labels, text)
        return Shortlist(
            candidates=candidates,
            neighbours=[Neighbour(label, example, sim) for label, example, sim in examples],
        )


def ranked(shortlist: Shortlist, limits: RetrievalLimits) -> list[Neighbour]:
    """Examples in the order they earn a place (see the module docstring), capped."""
    nearest = sorted(shortlist.neighbours, key=lambda n: -n.similarity)
    best_of: dict[str, Neighbour] = {}
    for neighbour in nearest:
        best_of.setdefault(neighbour.label, neighbour)
    order = [
        best_of[c.label] for c in shortlist.candidates[: limits.candidates] if c.label in best_of
    ]
    order += [n for n in nearest if n not in order]
    taken: list[Neighbour] = []
    per_label: dict[str, int] = {}
    for neighbour in order:
        if len(taken) >= limits.max_examples:
            break
        if per_label.get(neighbour.label, 0) < limits.per_label:
            per_label[neighbour.label] = per_label.get(neighbour.label, 0) + 1
            taken.append(neighbour)
    return taken
