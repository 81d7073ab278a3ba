"""Dense embeddings, with each model's query/passage prefixes.

Two kinds of model behind one protocol: the default model runs as an int8 ONNX Runtime graph
(retriever.onnx_embedder: about three times torch's speed on a CPU, for a retrieval quality
within 0.01 of R@10), and any other sentence-transformers model, the default's fp32 form
included, runs through sentence-transformers. `load_embedder` picks by name.

The default model's folders are built once, offline, by retriever.modelbuild. Loading imports
that code only when a folder is missing or stale (a fresh clone's first run), never to serve.

Questions and passages are encoded by separate calls because E5 and BGE prefix them
differently; a model that is asked with the wrong prefix loses several points of recall.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from retriever.models import (
    DEFAULT_MODEL_NAME,
    INT8_MODEL_NAME,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    default_model_dir,
    default_model_is_built,
    int8_model_dir,
    int8_model_is_ready,
)
from retriever.onnx_embedder import OnnxEmbedder
from retriever.threads import FEW_PASSAGES, FEW_QUERIES, thread_limit

logger = logging.getLogger(__name__)

# Prefixes the model cards ask for, keyed by a fragment of the model name. A model that
# carries its own "query"/"document" prompts in its sentence-transformers config uses those.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge-small-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-base-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-large-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
}

# The model an index is built with when none is named: the default model, int8, ONNX Runtime.
DEFAULT_EMBEDDER = INT8_MODEL_NAME

# Texts per forward pass: larger batches pad more on uneven Chinese passages, smaller ones
# lose matrix efficiency. On a 2-core CPU torch was fastest at 32.
BATCH_SIZE = 32


class ModelLoadError(ValueError):
    """An embedding model that cannot be loaded: no such folder, not a model, or a hub name
    the hub cannot be asked about. The message names the model and the reason."""


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


def load_embedder(
    name: str = DEFAULT_EMBEDDER,
    *,
    cache_dir: Path,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
) -> Embedder:
    """The embedder called `name`: the default int8 model, or a sentence-transformers model
    by name or local folder (the default model's fp32 form is `DEFAULT_MODEL_NAME`)."""
    if name == DEFAULT_EMBEDDER:
        return OnnxEmbedder(
            _built_int8_model(cache_dir),
            name,
            query_prefix=QUERY_PREFIX if query_prefix is None else query_prefix,
            passage_prefix=PASSAGE_PREFIX if passage_prefix is None else passage_prefix,
        )
    if name.startswith(("/", ".")) and not Path(name).is_dir():
        # No hub name starts so: say it now, not after importing torch (seconds).
        raise ModelLoadError(f"no model named {name!r}: there is no such folder")
    return SentenceTransformerEmbedder.load(
        name, cache_dir=cache_dir, query_prefix=query_prefix, passage_prefix=passage_prefix
    )


def _built_int8_model(cache_dir: Path) -> Path:
    """The default model's int8 folder; built first (about a minute) if it is not ready."""
    if int8_model_is_ready(cache_dir):
        return int8_model_dir(cache_dir)
    from retriever.modelbuild.onnx_export import ensure_int8_model

    return ensure_int8_model(cache_dir)


def _built_default_model(cache_dir: Path) -> Path:
    """The default model's fp32 folder; built first (about 10 s) if it is not ready."""
    if default_model_is_built(default_model_dir(cache_dir)):
        return default_model_dir(cache_dir)
    from retriever.modelbuild.default_model import ensure_default_model

    return ensure_default_model(cache_dir)


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

        location = str(_built_default_model(cache_dir)) if name == DEFAULT_MODEL_NAME else name
        try:
            model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as error:  # no such folder or hub name, or not a model
            reason = " ".join(str(error).split()).rstrip(".")  # the hub's messages span lines
            raise ModelLoadError(
                f"no model named {name!r}: {reason}. This machine may have no access to the "
                "Hugging Face hub: pass a local folder with --model, or use the default "
                f"{DEFAULT_MODEL_NAME!r}, which is built offline."
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
        return self._encode_few(prefixed, few=len(texts) <= FEW_QUERIES, progress=False)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        prefixed = [self.prefixes.passage + text for text in texts]
        return self._encode_few(prefixed, few=len(texts) <= FEW_PASSAGES, progress=progress)

    def _encode_few(self, texts: list[str], *, few: bool, progress: bool) -> np.ndarray:
        if not few:
            return self._encode(texts, progress=progress)
        # A few short texts run on one thread (retriever.threads says why).
        import torch

        with thread_limit(torch.get_num_threads, torch.set_num_threads, 1):
            return self._encode(texts, progress=progress)

    def _encode(self, texts: list[str], *, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
