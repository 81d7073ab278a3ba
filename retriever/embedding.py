"""Dense embeddings, with each model's query/passage prefixes.

The default model (multilingual-e5-small, built offline by retriever.modelbuild) runs on the
kernel this machine is fastest at (retriever.kernels): the int8 ONNX graph on ONNX Runtime
(retriever.onnx_embedder), or its fp32 weights on torch in bf16 or fp32. Any other
sentence-transformers model runs on torch. `load_embedder` picks by name and kernel.

The default model's folders are built once, offline. Loading imports that code only when a
folder is missing or stale (a fresh clone's first run), never to serve.

Questions and passages are encoded by separate calls because E5 and BGE prefix them
differently; a model that is asked with the wrong prefix loses several points of recall.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from retriever.background import background_passages
from retriever.config import Environment
from retriever.kernels import (
    Cpu,
    KernelChoice,
    RecallCheck,
    available,
    check_kernel,
    fastest,
    measure,
    read_choice,
    sample_texts,
    with_recall,
    write_choice,
)
from retriever.models import (
    DEFAULT_MODEL_NAME,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    canonical_model_name,
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

# The model an index is built with when none is named, on this machine's kernel.
DEFAULT_EMBEDDER = DEFAULT_MODEL_NAME
# A model folder holds one of these (sentence-transformers' or transformers' own file): a
# folder without either is refused before torch is imported.
MODEL_MARKS = ("modules.json", "config.json")

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
    kernel: str  # what runs it (retriever.kernels), recorded in the index it builds

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
    kernel: str | None = None,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
) -> Embedder:
    """The embedder called `name`: the default model, or a sentence-transformers model by
    name or local folder.

    `kernel` (or the environment's RETRIEVER_KERNEL) forces what runs it; by default the
    default model runs on the kernel chosen for this machine (measured on first use), any
    other model on torch fp32.
    """
    kernel = check_kernel(kernel) if kernel else None
    if canonical_model_name(name) == DEFAULT_MODEL_NAME:
        env = Environment.read().kernel
        kernel = kernel or (check_kernel(env) if env else machine_kernel(cache_dir).kernel)
        if kernel == "onnx-int8":
            return OnnxEmbedder(
                _built_int8_model(cache_dir),
                DEFAULT_MODEL_NAME,
                query_prefix=QUERY_PREFIX if query_prefix is None else query_prefix,
                passage_prefix=PASSAGE_PREFIX if passage_prefix is None else passage_prefix,
            )
        name = DEFAULT_MODEL_NAME  # its torch kernels load it as any other model
    elif kernel == "onnx-int8":
        raise ModelLoadError(f"the onnx-int8 kernel runs only the default model, not {name!r}")
    elif name.startswith(("/", ".")) and not Path(name).is_dir():
        # No hub name starts so: say it now, not after importing torch (seconds).
        raise ModelLoadError(f"no model named {name!r}: there is no such folder")
    elif Path(name).is_dir() and not any((Path(name) / f).is_file() for f in MODEL_MARKS):
        raise ModelLoadError(
            f"no model named {name!r}: the folder holds no {' or '.join(MODEL_MARKS)}, so it "
            "is not a sentence-transformers or transformers model"
        )
    return SentenceTransformerEmbedder.load(
        name,
        cache_dir=cache_dir,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        bf16=kernel == "torch-bf16",
    )


def machine_kernel(
    cache_dir: Path, *, force: str | None = None, remeasure: bool = False
) -> KernelChoice:
    """The default model's kernel on this machine: the one recorded for this processor, or
    measured now (seconds, once per machine) and recorded. `force` records that kernel
    instead of the fastest, with the timings beside it."""
    cpu = Cpu.this_machine()
    model_dir = _built_default_model(cache_dir)
    recorded = None if remeasure or force else read_choice(model_dir, cpu)
    if recorded is not None:
        return recorded
    kernels = available(cpu)
    if force and force not in kernels:
        kernels = (*kernels, check_kernel(force))
    logger.warning("timing %s on this machine's CPU (%s), once", ", ".join(kernels), cpu.model)
    embedders = {k: load_embedder(cache_dir=cache_dir, kernel=k) for k in kernels}
    encoders = {k: e.encode_passages for k, e in embedders.items()}
    measured = measure(encoders, sample_texts(background_passages()))
    measurements = with_recall(measured, RecallCheck.load().recalls(embedders))
    choice = KernelChoice(
        force or fastest(measurements), cpu, forced=bool(force), measurements=tuple(measurements)
    )
    write_choice(model_dir, choice)
    timings = (
        f"{m.kernel} {m.passages_per_second}/s, cos {m.min_cosine}, R@10 {m.recall_at_10}"
        for m in measurements
    )
    logger.warning("kernel %s chosen (%s)", choice.kernel, "; ".join(timings))
    return choice


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

    def __init__(self, name: str, model, prefixes: Prefixes, *, bf16: bool = False) -> None:
        self.name = name
        self.model = model
        self.prefixes = prefixes
        self.dim = int(model.get_embedding_dimension())
        self.bf16 = bf16
        self.kernel = "torch-bf16" if bf16 else "torch-fp32"

    @classmethod
    def load(
        cls,
        name: str = DEFAULT_MODEL_NAME,
        *,
        cache_dir: Path,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        bf16: bool = False,
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
        return cls(name, model, prefixes, bf16=bf16)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        prefixed = [self.prefixes.query + text for text in texts]
        return self._encode_few(prefixed, few=len(texts) <= FEW_QUERIES, progress=False)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        prefixed = [self.prefixes.passage + text for text in texts]
        return self._encode_few(prefixed, few=len(texts) <= FEW_PASSAGES, progress=progress)

    def _encode_few(self, texts: list[str], *, few: bool, progress: bool) -> np.ndarray:
        if not few:
            return self._encode(texts, batch_size=BATCH_SIZE, progress=progress)
        # A few short texts run on one thread (retriever.threads says why), one by one: a
        # batch would pad the sentences an answer is chosen from to the longest (a dozen
        # dureader sentences: 620 ms in one batch, 465 ms one by one; AMD EPYC Zen 3).
        import torch

        with thread_limit(torch.get_num_threads, torch.set_num_threads, 1):
            return self._encode(texts, batch_size=1, progress=progress)

    def _encode(self, texts: list[str], *, batch_size: int, progress: bool) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        # Normalised in bf16 a vector's length is off by up to 0.4%: scores must be cosines.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
