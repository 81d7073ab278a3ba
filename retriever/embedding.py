"""Dense embeddings through sentence-transformers, with each model's query/passage prefixes.

Questions and passages are encoded by separate calls because E5 and BGE prefix them
differently; a model that is asked with the wrong prefix loses several points of recall.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from retriever.default_model import DEFAULT_MODEL_NAME, ensure_default_model

logger = logging.getLogger(__name__)

# Prefixes the model cards ask for, keyed by a fragment of the model name. A model that
# carries its own "query"/"document" prompts in its sentence-transformers config uses those.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge-small-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-base-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-large-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
}

# Per model, as cosines are on a different scale for every model: (the nearest passage's
# cosine at which the corpus counts as answering, the lower cosine that counts when the top
# passage also holds most of the question's words). Calibrated on the evaluation sets
# (python -m bench.tune): for the default model, the pair answered 98.5% of questions whose
# corpus holds the answer and refused 96.6% of the other set's questions; 0.88 alone
# answered 96.3%.
CALIBRATED_THRESHOLDS: dict[str, tuple[float, float]] = {DEFAULT_MODEL_NAME: (0.88, 0.86)}

# Up to this many questions in one call are embedded on a single thread (see encode_queries).
FEW_QUERIES = 8

# Texts per forward pass: larger batches pad more on uneven Chinese passages, smaller
# ones lose matrix efficiency; 32 was fastest on a 2-core CPU.
BATCH_SIZE = 32


@contextlib.contextmanager
def thread_limit(
    get_count: Callable[[], int], set_count: Callable[[int], None], count: int
) -> Iterator[None]:
    """Run a library (torch, FAISS) on `count` threads, then restore its previous setting.

    The setting is process-wide: a build running at the same time in another thread is
    slowed while it holds, never made wrong.
    """
    previous = get_count()
    set_count(count)
    try:
        yield
    finally:
        set_count(previous)


class Embedder(Protocol):
    """What the retriever needs of an embedding model. Vectors are L2-normalised float32."""

    name: str
    dim: int

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Prefixes:
    query: str
    passage: str


def resolve_prefixes(name: str, model_prompts: dict[str, str]) -> Prefixes:
    """The model's own prompts first, then the known model cards, then none."""
    query = model_prompts.get("query")
    passage = model_prompts.get("document", model_prompts.get("passage"))
    if query is not None or passage is not None:
        return Prefixes(query or "", passage or "")
    lowered = name.lower()
    for fragment, (query, passage) in KNOWN_PREFIXES.items():
        if fragment in lowered:
            return Prefixes(query, passage)
    return Prefixes("", "")


class SentenceTransformerEmbedder:
    """A sentence-transformers model by name or local path; the default one is built offline."""

    def __init__(self, name: str, model, prefixes: Prefixes) -> None:
        self.name = name
        self.model = model
        self.prefixes = prefixes
        self.dim = int(model.get_embedding_dimension())

    @classmethod
    def load(
        cls,
        name: str = DEFAULT_MODEL_NAME,
        *,
        cache_dir: Path,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> SentenceTransformerEmbedder:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # A "Loading weights" bar on every start is noise to someone waiting for an answer.
        transformers_logging.disable_progress_bar()

        location = str(ensure_default_model(cache_dir)) if name == DEFAULT_MODEL_NAME else name
        try:
            model = SentenceTransformer(location, device="cpu")
        except OSError as error:
            raise OSError(
                f"cannot load embedding model {name!r}: {error}. This machine may have no "
                "access to the Hugging Face hub: pass a local folder with --model, or use "
                f"the default {DEFAULT_MODEL_NAME!r}, which is built offline."
            ) from error
        prefixes = resolve_prefixes(name, dict(getattr(model, "prompts", {}) or {}))
        prefixes = Prefixes(
            prefixes.query if query_prefix is None else query_prefix,
            prefixes.passage if passage_prefix is None else passage_prefix,
        )
        logger.info("embedding model %s, prefixes %r / %r", name, *vars(prefixes).values())
        return cls(name, model, prefixes)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        prefixed = [self.prefixes.query + text for text in texts]
        if len(texts) > FEW_QUERIES:
            return self._encode(prefixed, progress=False)
        # One short question is too little work to split across cores: the threads mostly
        # wait for each other, and when other requests or processes hold the cores they
        # stall. Measured here under load: 17 ms a question on one thread, 268 ms on two.
        import torch

        with thread_limit(torch.get_num_threads, torch.set_num_threads, 1):
            return self._encode(prefixed, progress=False)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self._encode([self.prefixes.passage + text for text in texts], progress=progress)

    def _encode(self, texts: list[str], *, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
