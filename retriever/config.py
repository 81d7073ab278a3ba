"""Every setting of an index and of a search, in one place, as frozen dataclasses.

Index settings are saved in the manifest: an index is searched with the settings it was
built with. Search settings can change per load without a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass


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
class SearchSettings:
    """How the dense and BM25 rankings are fused, and when an answer counts as found."""

    candidates: int = 50
    # The BM25 bonus, in units of cosine similarity: a hit's score is its cosine plus
    # lexical_weight * its BM25 score / the best BM25 score, and the best BM25 match also
    # gets lead_weight * (its BM25 score - the runner-up's) / its BM25 score. Tuned on the
    # evaluation sets for the default model (python -m bench.tune, docs/BENCHMARKS.md).
    lexical_weight: float = 0.015
    lead_weight: float = 0.04
    # The confidence (retriever.answerability) at which the corpus counts as answering a
    # question. None: the cut fitted for the index's model.
    min_confidence: float | None = None


MAX_QUESTION_CHARS = 1000
