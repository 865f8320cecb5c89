"""The local provider's few-shot classifier: sentence embedding + TF-IDF, multinomial logistic
regression in numpy, and a calibrated confidence.

Why this shape (measured on CLINC150, 10 examples per intent, 10 domains as labels; see
``bench/local_ai_eval.py``):

* One class per *kind of request* inside a label, probabilities added up per label,
  beats one class per label by about four points of accuracy: a label such as
  "banking" covers many unlike requests, and a linear model cannot draw one region
  around all of them. Kinds come from ``LabelSpec.example_groups`` when given; a label
  with many ungrouped examples is split into clusters of about ten by k-means.
* TF-IDF (word uni- and bigrams) next to the embedding adds exact-wording evidence the
  small embedding model blurs; it helps both accuracy and out-of-scope detection.
* Out-of-scope requests are not a class (nobody writes examples of them). The raw score
  is ``p(label) * cosine to the nearest example``: far from every example means
  unsure, however the probabilities split.
* The raw score is mapped through a fixed Platt curve fitted on CLINC150's validation
  split (in-scope + out-of-scope), so 0.7 means roughly "right seven times in ten"
  on that kind of traffic. The map is monotone: it never changes the ranking.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from connectors.ai.base import LabelSpec

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# Bump when anything below changes what a request is classified as or its confidence.
METHOD_VERSION = "local-fewshot-v1"

# Examples per automatic cluster when a label's examples carry no groups.
CLUSTER_SIZE = 10
L2 = 1e-2
ITERATIONS = 200
STEP = 0.5
MOMENTUM = 0.9
# Weight of the (unit-length) TF-IDF row against the standardised 384-d embedding
# (length about 19.6). 0 / 6 / 10 / 14 / 18 measured; 14 separated out-of-scope best.
TFIDF_WEIGHT = 14.0
# raw score = p(label) * nearest-example cosine ** SIMILARITY_POWER (0, 1, 2, 3 measured).
SIMILARITY_POWER = 2.0
# Platt map raw score → confidence: `bench/local_ai_eval.py --fit-calibration` on CLINC150
# val + oos_val (seed 0); i.e. calibrated for traffic with a few per cent out of scope.
CALIBRATION_A = 2.5383
CALIBRATION_B = 5.3926

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


class Tfidf:
    """Word uni/bigram TF-IDF with sublinear term frequency, rows of unit length."""

    def __init__(self, texts: list[str]) -> None:
        doc_freq: dict[str, int] = {}
        for text in texts:
            for term in set(_terms(text)):
                doc_freq[term] = doc_freq.get(term, 0) + 1
        self.vocabulary = {term: i for i, term in enumerate(sorted(doc_freq))}
        n = len(texts)
        self.idf = np.array(
            [np.log((1 + n) / (1 + doc_freq[t])) + 1.0 for t in sorted(doc_freq)], dtype=np.float32
        )

    def sparse_row(self, text: str) -> tuple[IntArray, FloatArray]:
        """(columns, values) of one text's unit-length row; known terms only."""
        counts: dict[int, int] = {}
        for term in _terms(text):
            col = self.vocabulary.get(term)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[cols]
        return cols, (values / max(float(np.linalg.norm(values)), 1e-12)).astype(np.float32)

    def transform(self, texts: list[str]) -> FloatArray:
        out = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float32)
        for row, text in enumerate(texts):
            cols, values = self.sparse_row(text)
            out[row, cols] = values
        return out


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def _kmeans(x: FloatArray, k: int, iterations: int = 20) -> IntArray:
    """Cosine k-means with farthest-point start: deterministic, so a label set always fits alike."""
    centres = [0]
    nearest = x @ x[0]
    for _ in range(1, k):
        centres.append(int(np.argmin(nearest)))
        nearest = np.maximum(nearest, x @ x[centres[-1]])
    c = x[centres].copy()
    assign = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        assign = np.asarray((x @ c.T).argmax(axis=1), dtype=np.int64)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                centre = members.mean(axis=0)
                c[j] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return assign


Group = tuple[str, str | None]
"""(label, group name); ``None``: the label's ungrouped examples."""


def training_set(labels: list[LabelSpec]) -> tuple[list[str], list[Group], list[str]]:
    """(texts, group per text, label per text). A label without examples learns from its
    name and description, so a bare label list still classifies, if weakly."""
    texts: list[str] = []
    groups: list[Group] = []
    owners: list[str] = []
    for label in labels:
        items: list[tuple[Group, str]] = [
            ((label.name, g), t) for g, ex in label.example_groups.items() for t in ex
        ]
        items += [((label.name, None), t) for t in label.examples]
        if not items:
            fallback = f"{label.name.replace('_', ' ').replace('-', ' ')} {label.description}"
            items = [((label.name, None), fallback.strip())]
        for group, text in items:
            texts.append(text)
            groups.append(group)
            owners.append(label.name)
    return texts, groups, owners


@dataclass
class Prediction:
    labels: list[str]
    probabilities: FloatArray
    """Rows: texts; columns: ``labels``; each row sums to 1."""
    nearest: FloatArray
    """Cosine similarity of each text to its nearest example."""

    def confidences(self) -> FloatArray:
        return calibrate(self.raw_scores())

    def raw_scores(self) -> FloatArray:
        closeness = np.clip(self.nearest, 0.0, 1.0) ** SIMILARITY_POWER
        return (self.probabilities * closeness[:, None]).astype(np.float32)


def calibrate(raw: FloatArray, a: float = CALIBRATION_A, b: float = CALIBRATION_B) -> FloatArray:
    p = np.clip(raw, 1e-6, 1 - 1e-6)
    return np.asarray(1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b))), dtype=np.float32)


class FewShotClassifier:
    """A fitted model for one label set; immutable after ``fit``, so threads may share it."""

    def __init__(self, labels: list[LabelSpec], embed: Callable[[list[str]], FloatArray]) -> None:
        texts, groups, owners = training_set(labels)
        self.labels = [label.name for label in labels]
        vectors = embed(texts)
        self._examples = vectors
        classes, class_of = self._classes(vectors, groups)
        label_index = {name: i for i, name in enumerate(self.labels)}
        # class → label, as a 0/1 matrix so per-label probabilities are one matmul.
        self._to_label = np.zeros((len(classes), len(self.labels)), dtype=np.float32)
        for row, owner in enumerate(owners):
            self._to_label[class_of[row], label_index[owner]] = 1.0
        self._mean = vectors.mean(axis=0)
        # The floor keeps a dimension that barely varies over a handful of examples
        # from being blown up into noise.
        self._scale = np.sqrt(vectors.var(axis=0) + 1e-3).astype(np.float32)
        self._tfidf = Tfidf(texts)
        self._fit(self._features(vectors, texts), class_of, len(classes))

    def _classes(self, vectors: FloatArray, groups: list[Group]) -> tuple[list[Group], IntArray]:
        keys: list[Group] = []
        class_of = np.zeros(len(groups), dtype=np.int64)
        for group in dict.fromkeys(groups):
            rows = np.array([i for i, g in enumerate(groups) if g == group])
            k = len(rows) // CLUSTER_SIZE if group[1] is None else 1
            parts = _kmeans(vectors[rows], k) if k > 1 else np.zeros(len(rows), dtype=np.int64)
            for part in range(max(k, 1)):
                class_of[rows[parts == part]] = len(keys)
                keys.append(group)
        return keys, class_of

    def _features(self, vectors: FloatArray, texts: list[str]) -> FloatArray:
        standard = (vectors - self._mean) / self._scale
        return np.hstack([standard, TFIDF_WEIGHT * self._tfidf.transform(texts)]).astype(np.float32)

    def _fit(self, x: FloatArray, y: IntArray, n_classes: int) -> None:
        """L2-regularised softmax regression by Nesterov gradient descent, run in dual form.

        With fewer examples than features, gradient steps on W = Xᵀ·A are exactly steps on
        A with the n-by-n kernel X·Xᵀ, which is much cheaper than the wide TF-IDF matrix.
        """
        n = len(x)
        kernel = x @ x.T
        targets = np.eye(n_classes, dtype=np.float32)[y]
        a = np.zeros((n, n_classes), dtype=np.float32)
        bias = np.zeros(n_classes, dtype=np.float32)
        va = np.zeros_like(a)
        vb = np.zeros_like(bias)
        for _ in range(ITERATIONS):
            ahead_a = a + MOMENTUM * va
            ahead_b = bias + MOMENTUM * vb
            residual = (_softmax(kernel @ ahead_a + ahead_b) - targets) / n
            va = np.asarray(MOMENTUM * va - STEP * (residual + L2 * ahead_a), dtype=np.float32)
            vb = np.asarray(MOMENTUM * vb - STEP * residual.sum(axis=0), dtype=np.float32)
            a += va
            bias += vb
        self._weights = (x.T @ a).astype(np.float32)
        self._bias = bias

    def similarities(self, vectors: FloatArray) -> FloatArray:
        """Cosine similarity of each text (rows) to each training example, in
        ``training_set`` order (columns)."""
        return np.asarray(vectors @ self._examples.T, dtype=np.float32)

    def predict(self, vectors: FloatArray, texts: list[str]) -> Prediction:
        dim = vectors.shape[1]
        logits = ((vectors - self._mean) / self._scale) @ self._weights[:dim] + self._bias
        # Queries have a handful of known terms: add their weight rows, not a V-wide product.
        tfidf_weights = self._weights[dim:]
        for row, text in enumerate(texts):
            cols, values = self._tfidf.sparse_row(text)
            logits[row] += TFIDF_WEIGHT * (values @ tfidf_weights[cols])
        class_p = _softmax(logits.astype(np.float32))
        nearest = (vectors @ self._examples.T).max(axis=1)
        return Prediction(self.labels, class_p @ self._to_label, nearest.astype(np.float32))
