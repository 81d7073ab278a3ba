"""Searching, in stages: candidates, fusion, an optional reranker, then dropping repeats.

1. Candidates (`Searcher.candidates`): the question is embedded and each backend gives its
   top `depth` chunks; each candidate of one side gets its exact score from the other
   (`scores` for given ids), so fusion never guesses, and the share of the question's words
   it holds. This is the costly stage: one query embedding and the index look-ups.
2. `rank`: fusion (retriever.fusion, with the weights fitted for the embedding model), the
   reranker if there is one (retriever.rerank), then the passages that repeat a higher one
   are dropped and the first k become Hits.

`search`, `ask`, `python -m retriever eval`, bench.fit_fusion and bench.quality all run these same
stages; the evaluation keeps the candidates of each question and ranks them again per mode
or fusion setting, which costs only the second stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from retriever.config import FusionWeights, SearchSettings
from retriever.embedding import Embedder
from retriever.fusion import Candidates, Mode, fitted_weights, fuse
from retriever.index import Index
from retriever.passages import duplicate_key
from retriever.query import Query, as_query
from retriever.rerank import Candidate, Reranker
from retriever.store import StoredChunk
from retriever.words import telling_words

# Imported from here by callers written before the query stage had a module of its own.
__all__ = ["Hit", "Searcher", "title_words"]


@dataclass(frozen=True)
class Hit:
    """One retrieved passage, best first. `text` is source_text[start:end] of file `source`."""

    rank: int
    score: float
    text: str
    source: str
    doc_id: str
    title: str
    heading: str
    start: int
    end: int
    dense_score: float | None
    bm25_score: float | None
    chunk_id: int

    @classmethod
    def of(
        cls,
        chunk: StoredChunk,
        *,
        rank: int,
        score: float,
        dense_score: float | None,
        bm25_score: float | None,
    ) -> Hit:
        """An indexed passage as a hit with these scores."""
        assert chunk.id is not None  # only indexed passages are found by a search
        return cls(
            rank=rank,
            score=score,
            text=chunk.text,
            source=chunk.source,
            doc_id=chunk.doc_id,
            title=chunk.title,
            heading=chunk.heading,
            start=chunk.start,
            end=chunk.end,
            dense_score=dense_score,
            bm25_score=bm25_score,
            chunk_id=chunk.id,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Searcher:
    """Ranks an index's passages for questions: an index, the model that embeds questions,
    search settings, and an optional reranker."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        settings: SearchSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self.weights = settings.fusion or fitted_weights(embedder.name) or FusionWeights()

    def with_settings(self, **changes: Any) -> Searcher:
        return Searcher(self.index, self.embedder, replace(self.settings, **changes), self.reranker)

    def search_batch(self, questions: Sequence[str | Query], k: int, mode: Mode) -> list[list[Hit]]:
        """The k best passages for each question, best first."""
        return [self.rank(found, k, mode) for found in self.candidates(questions, k, mode)]

    def candidates(
        self, questions: Sequence[str | Query], k: int, mode: Mode, *, progress: bool = False
    ) -> list[Candidates]:
        """Stage 1 for many questions (plain ones are read as Queries: retriever.query), with
        one embedding call for all of them.

        One call, as search_batch makes it: the int8 model quantises each batch's activations
        on their own scale, so a question's vector moves slightly with the batch it is
        embedded in (by a cosine of 0.003 on average, 0.005 at most, on cmrc2018_dev).
        """
        from tqdm import tqdm

        check_k(k)
        queries = [as_query(question) for question in questions]
        vectors = (
            self.embedder.encode_queries([query.searched for query in queries])
            if mode != "bm25"
            else None
        )
        depth = max(self.settings.candidates, 2 * k)
        searched = tqdm(queries, "searching", len(queries), disable=not progress)
        return [
            self._candidates(query, None if vectors is None else vectors[i], depth)
            for i, query in enumerate(searched)
        ]

    def _candidates(self, query: Query, vector: np.ndarray | None, depth: int) -> Candidates:
        normalized = query.searched
        top = self.index.lexical.search(normalized, depth)
        candidates = {chunk_id for chunk_id, _ in top}
        dense: dict[int, float] = {}
        if vector is not None:
            dense = dict(self.index.dense.search(vector, depth))
            dense.update(self.index.dense.scores(vector, sorted(candidates - dense.keys())))
            candidates |= dense.keys()
        bm25 = dict(top)
        bm25.update(self.index.lexical.scores(normalized, candidates - bm25.keys()))
        lexical = {i: bm25.get(i, 0.0) for i in candidates}
        # The question's words, cut once for both shares, as BM25 cuts (retriever.words).
        search_mode = self.index.manifest.lexical.search_mode
        words = (
            set(query.telling)
            if search_mode
            else telling_words(normalized, search_mode=search_mode)
        )
        coverage = self.index.lexical.coverage(words, candidates)
        chunks = self.index.by_id
        titles = {
            i: len(words & title_words(chunks[i].title, search_mode)) / len(words) if words else 0.0
            for i in candidates
        }
        return Candidates(query.text.strip(), vector, dense, lexical, coverage, titles)

    def rank(self, candidates: Candidates, k: int, mode: Mode) -> list[Hit]:
        """Stage 2: fuse, rerank, and keep the first k passages that repeat none above."""
        chunks = self.index.by_id
        fused = fuse(candidates, self.weights, mode)
        ranked = [Candidate(chunks[chunk_id], score) for chunk_id, score in fused]
        if self.reranker is not None:
            ranked = self.reranker.rerank(candidates.question, ranked)
        hits: list[Hit] = []
        kept: list[str] = []
        for candidate in ranked:
            chunk = candidate.chunk
            key = duplicate_key(chunk.text)
            if any(_repeats(key, other) for other in kept):
                continue
            kept.append(key)
            assert chunk.id is not None  # only indexed passages are candidates
            hits.append(
                Hit.of(
                    chunk,
                    rank=len(hits) + 1,
                    score=round(candidate.score, 6),
                    dense_score=candidates.dense.get(chunk.id),
                    bm25_score=candidates.lexical.get(chunk.id),
                )
            )
            if len(hits) == k:
                break
        return hits


def _repeats(key: str, other: str) -> bool:
    """Same passage, or one a truncated copy of the other (scraped pages repeat summaries)."""
    shorter, longer = sorted((key, other), key=len)
    return shorter == longer or (len(shorter) >= 20 and shorter in longer)


@lru_cache(maxsize=100_000)
def title_words(title: str, search_mode: bool) -> frozenset[str]:
    """A document title's telling words, cut once per title: every chunk shares them."""
    return frozenset(telling_words(title, search_mode=search_mode))


def check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
