"""Every setting of an index and of a search, in one place, as frozen dataclasses, and the
engine's settings that come from the process environment (`Environment`).

Index settings are saved in the manifest: an index is searched with the settings it was
built with. Search settings can change per load without a rebuild. The web app's own
settings are web/settings.py's, generated answers' retriever/generation.py's; every one is
listed with its default in docs/settings.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Models, evaluation indexes and jieba's dictionary are kept here (RETRIEVER_CACHE moves it).
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache"
# The variables whose names the command line's help and errors say.
KERNEL_ENV = "RETRIEVER_KERNEL"
MILVUS_TOKEN_VARIABLE = "RETRIEVER_MILVUS_TOKEN"


@dataclass(frozen=True)
class ChunkSettings:
    """How text is cut into passages."""

    max_chars: int = 300
    heading_max_chars: int = 40

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError(f"max_chars must be at least 20, got {self.max_chars}")


@dataclass(frozen=True)
class LexicalSettings:
    """BM25 parameters and jieba's mode (search mode also emits the words inside compounds)."""

    k1: float = 1.5
    b: float = 0.75
    search_mode: bool = True


@dataclass(frozen=True)
class BackendSettings:
    """Which engine holds each side of an index, by the names retriever.backends registers.

    Saved in the manifest, so an index is always searched by the engines that built it.
    """

    dense: str = "faiss"
    lexical: str = "bm25s"


@dataclass(frozen=True)
class FusionWeights:
    """How a hybrid score is made from a candidate's evidence, in units of cosine similarity:
    its cosine, plus `bm25` times its BM25 score over the best candidate's, plus `lead` times
    the best BM25 match's lead over the runner-up (over the best score), plus `coverage`
    times the share of the question's content words its text holds, plus `title` times the
    share its document's title holds (retriever.fusion).

    These defaults are the rule for a model without a fit; the default model's weights are
    fitted on evaluation splits by bench.fit_fusion and shipped in retriever/data/fusion.json.
    """

    bm25: float = 0.015
    lead: float = 0.04
    coverage: float = 0.0
    title: float = 0.0


@dataclass(frozen=True)
class SearchSettings:
    """How the dense and BM25 rankings are fused, and when an answer counts as found."""

    candidates: int = 50
    # None: the weights fitted for the index's model (retriever/data/fusion.json), or
    # FusionWeights() for a model without a fit.
    fusion: FusionWeights | None = None
    # The confidence (retriever.answerability) at which the corpus counts as answering a
    # question. None: the cut fitted for the index's model.
    min_confidence: float | None = None


MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class Environment:
    """The engine's RETRIEVER_* variables, read in this one place.

    | variable | default | what |
    | --- | --- | --- |
    | RETRIEVER_CACHE | .cache | models, jieba's dictionary, evaluation indexes |
    | RETRIEVER_BASES | bases | the knowledge bases besides the default (retriever.bases) |
    | RETRIEVER_KERNEL | measured | what runs the default model (retriever.kernels) |
    | RETRIEVER_MILVUS_TOKEN | (none) | a Milvus server's token, for `build`; never saved |
    """

    cache: Path = DEFAULT_CACHE
    bases: Path | None = None  # None: retriever.bases.DEFAULT_ROOT
    kernel: str | None = None  # None: the one measured fastest on this machine
    milvus_token: str = field(default="", repr=False)

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        bases = environ.get("RETRIEVER_BASES", "").strip()
        return cls(
            cache=Path(environ.get("RETRIEVER_CACHE") or DEFAULT_CACHE),
            bases=Path(bases) if bases else None,
            kernel=environ.get(KERNEL_ENV, "").strip() or None,
            milvus_token=environ.get(MILVUS_TOKEN_VARIABLE, ""),
        )
