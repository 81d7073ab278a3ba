"""Dense embeddings, with each model's query/passage prefixes.

Two backends behind one protocol: the default model runs as an int8 ONNX Runtime graph
(onnx_model.py: about three times torch's speed on a CPU, for a retrieval quality within 0.01
of R@10), and any other sentence-transformers model, the default's fp32 form included, runs
through sentence-transformers. `load_embedder` picks by name.

Questions and passages are encoded by separate calls because E5 and BGE prefix them
differently; a model that is asked with the wrong prefix loses several points of recall.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from retriever.default_model import (
    DEFAULT_MODEL_NAME,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    ensure_default_model,
)
from retriever.onnx_model import (
    INT8_MODEL_NAME,
    MAX_TOKENS,
    MODEL_FILE,
    TOKENIZER_FILE,
    OnnxModelError,
    ensure_int8_model,
)

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
# (python -m bench.tune). Default model, int8: the pair answered 98.6% of 3,337 questions
# whose corpus holds the answer and refused 95.0% of 696 of the other set's questions (0.88
# alone: 96.2%); fp32 on torch: 98.5% and 96.6%.
CALIBRATED_THRESHOLDS: dict[str, tuple[float, float]] = {
    INT8_MODEL_NAME: (0.88, 0.86),
    DEFAULT_MODEL_NAME: (0.88, 0.86),
}

# Up to this many questions in one call are embedded on a single thread (see encode_queries).
FEW_QUERIES = 8

# The model an index is built with when none is named: the default model, int8, ONNX Runtime.
DEFAULT_EMBEDDER = INT8_MODEL_NAME

# Texts per forward pass: larger batches pad more on uneven Chinese passages, smaller ones
# lose matrix efficiency. On a 2-core CPU torch was fastest at 32, ONNX Runtime at 16.
BATCH_SIZE = 32
ONNX_BATCH_SIZE = 16


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
            ensure_int8_model(cache_dir),
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


class OnnxEmbedder:
    """A sentence-embedding ONNX graph (input_ids, attention_mask → unit vectors) run by ONNX
    Runtime, with the model's tokenizer.json. Imports neither torch nor sentence-transformers.

    Texts are sorted by length before batching so that a batch pads to similar lengths (as
    sentence-transformers does), then put back in order.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        query_prefix: str = QUERY_PREFIX,
        passage_prefix: str = PASSAGE_PREFIX,
    ) -> None:
        from tokenizers import Tokenizer

        if not (folder / MODEL_FILE).is_file() or not (folder / TOKENIZER_FILE).is_file():
            raise OnnxModelError(f"{folder} lacks {MODEL_FILE} or {TOKENIZER_FILE}")
        self.name = name
        self.folder = folder
        self.prefixes = Prefixes(query_prefix, passage_prefix)
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._sessions: dict[int, object] = {}
        self.dim = int(self._session(1).get_outputs()[0].shape[-1])

    def _session(self, threads: int):
        """One session per thread count: ONNX Runtime fixes a session's threads at creation.

        A server only ever opens the one-thread session (questions); a build opens the other.
        """
        if threads not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # The graph is fused at build time; the remaining optimisations are cheap.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sessions[threads] = ort.InferenceSession(
                str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        # Few short questions run on one thread, for the reason given in
        # SentenceTransformerEmbedder.encode_queries.
        threads = 1 if len(texts) <= FEW_QUERIES else os.cpu_count() or 1
        return self._encode([self.prefixes.query + text for text in texts], threads)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        prefixed = [self.prefixes.passage + text for text in texts]
        return self._encode(prefixed, os.cpu_count() or 1, progress=progress)

    def _encode(self, texts: list[str], threads: int, *, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        session = self._session(threads)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), ONNX_BATCH_SIZE)
        for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
            batch = order[start : start + ONNX_BATCH_SIZE]
            encodings = self.tokenizer.encode_batch([texts[i] for i in batch])
            width = max(len(encoding.ids) for encoding in encodings)
            ids = np.ones((len(batch), width), dtype=np.int64)  # 1 is XLM-R's <pad>
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            (output,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            vectors[batch] = output
        return vectors


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
