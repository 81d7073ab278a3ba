"""How a base's index is built and opened: the Opener that opens every index with the app's
one model, and the state of a background rebuild that the page's progress bar shows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever import Retriever
from retriever.answer import Answering
from retriever.config import DEFAULT_CACHE
from retriever.embedding import Embedder
from retriever.rerank import Reranker

logger = logging.getLogger(__name__)

# Passages per progress step while embedding: small enough for a lively progress bar,
# large enough to keep the model's batches full (16 or 32 texts at a time).
PROGRESS_BATCH = 64


@dataclass(frozen=True)
class BuildState:
    """Where the background rebuild is, for the page's progress bar and index line."""

    running: bool
    stage: str  # what the build is doing, in words for the page
    # 0 to 1: 0 while the files are read, then in step with the passages embedded (nearly
    # all of a build's time) up to EMBEDDED, then LOADING while the new index loads.
    fraction: float
    error: str | None  # why the last build failed, if it did


READING = BuildState(True, "读取文档", 0.0, None)  # how every build starts
EMBEDDED = 0.9
LOADING = BuildState(True, "加载新索引", 0.95, None)  # once the new index is written


class ProgressEmbedder:
    """Passes an embedder through, reporting how many passages a build has embedded.

    Only builds use it: the served Retriever keeps the plain embedder, so encoding answer
    sentences at question time reports nothing.
    """

    def __init__(self, inner: Embedder, report: Callable[[int, int], None]) -> None:
        self.inner = inner
        self.report = report
        self.name = inner.name
        self.dim = inner.dim
        self.kernel = inner.kernel

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        parts = []
        self.report(0, len(texts))  # reading and chunking are done: say so at once
        for start in range(0, len(texts), PROGRESS_BATCH):
            parts.append(self.inner.encode_passages(texts[start : start + PROGRESS_BATCH]))
            self.report(min(start + PROGRESS_BATCH, len(texts)), len(texts))
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)


@dataclass(frozen=True)
class Opener:
    """How the app opens every index it serves: its one model, its cache folder, and the
    same reranker and answerer, whichever knowledge base and however often it is rebuilt."""

    embedder: Embedder
    cache_dir: Path = DEFAULT_CACHE
    reranker: Reranker | None = None
    answerer: Answering | None = None

    @classmethod
    def like(cls, retriever: Retriever) -> Opener:
        """Open other indexes as `retriever` was opened."""
        return cls(
            retriever.embedder,
            retriever.cache_dir or DEFAULT_CACHE,
            retriever.searcher.reranker,
            retriever.answerer,
        )

    def open(self, index_dir: Path) -> Retriever:
        return Retriever.load(
            index_dir,
            embedder=self.embedder,
            cache_dir=self.cache_dir,
            reranker=self.reranker,
            answerer=self.answerer,
        )


def embedded_state(done: int, total: int) -> BuildState:
    """The state of a build that has embedded `done` of its `total` passages."""
    if done < total:
        return BuildState(True, f"计算向量 {done}/{total}", EMBEDDED * done / total, None)
    return BuildState(True, "写入索引", EMBEDDED, None)


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    opener: Opener,
    *,
    embedded: Callable[[int, int], None],
    loading: Callable[[], None],
) -> Retriever:
    """Build `corpus_dir` into `index_dir` (as an update of the index there) and open the new
    index as `opener` opens every index; `embedded(done, total)` follows the passages
    embedded, `loading()` is called once the index is written."""
    report = Retriever.build(
        corpus_dir, index_dir, embedder=ProgressEmbedder(opener.embedder, embedded)
    )
    loading()
    fresh = opener.open(index_dir)
    logger.info(
        "now serving %s: %d documents, %d chunks (%d embedded, %d reused)",
        index_dir,
        report.index.documents,
        report.index.chunks,
        report.embedded,
        report.reused,
    )
    return fresh
