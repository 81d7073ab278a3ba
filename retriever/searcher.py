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

import re
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from retriever.config import MAX_QUESTION_CHARS, FusionWeights, SearchSettings
from retriever.embedding import Embedder
from retriever.fusion import Candidates, Mode, fitted_weights, fuse
from retriever.index import Index
from retriever.passages import duplicate_key
from retriever.rerank import Candidate, Reranker
from retriever.store import StoredChunk
from retriever.text import normalize
from retriever.words import telling_words

# After NFKC, full-width ？！．～ are ? ! . ~; 。 and … stay as they are.
_TRAILING_MARKS = re.compile(r"[\s?!.。…~]+$")


class QuestionError(ValueError):
    """A question that cannot be searched (empty, too long, not text); the message says why."""


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

    def search_batch(self, questions: list[str], k: int, mode: Mode) -> list[list[Hit]]:
        """The k best passages for each question, best first."""
        return [self.rank(found, k, mode) for found in self.candidates(questions, k, mode)]

    def candidates(
        self, questions: list[str], k: int, mode: Mode, *, progress: bool = False
    ) -> list[Candidates]:
        """Stage 1 for many questions, with one embedding call for all of them.

        One call, as search_batch makes it: the int8 model quantises each batch's activations
        on their own scale, so a question's vector moves slightly with the batch it is
        embedded in (by a cosine of 0.003 on average, 0.005 at most, on cmrc2018_dev).
        """
        from tqdm import tqdm

        check_k(k)
        asked = [check_question(question) for question in questions]
        normalized = [search_text(question) for question in asked]
        vectors = self.embedder.encode_queries(normalized) if mode != "bm25" else None
        depth = max(self.settings.candidates, 2 * k)
        searched = tqdm(
            zip(asked, normalized, strict=True), "searching", len(asked), disable=not progress
        )
        return [
            self._candidates(question, text, None if vectors is None else vectors[i], depth)
            for i, (question, text) in enumerate(searched)
        ]

    def _candidates(
        self, question: str, normalized: str, vector: np.ndarray | None, depth: int
    ) -> Candidates:
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
        words = telling_words(normalized, search_mode=search_mode)
        coverage = self.index.lexical.coverage(words, candidates)
        chunks = self.index.by_id
        titles = {
            i: len(words & title_words(chunks[i].title, search_mode)) / len(words) if words else 0.0
            for i in candidates
        }
        return Candidates(question, vector, dense, lexical, coverage, titles)

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


def search_text(question: str) -> str:
    """What is searched for a question: its normalised form (retriever.text.normalize) less
    trailing punctuation and spaces, so that 谁？, 谁? and 谁 find the same passages.

    The model reads a question mark as part of the question (辦公室主任的直接上級是誰？ ranked
    a passage about 上级领导机关交办事情 first, without the mark the right one), so the mark
    the user typed must not decide. Without it, hybrid figures on the three evaluation sets
    stayed within 0.005 of those with the marks as typed; always adding one cost dureader_demo
    0.009 of hybrid R@1, and averaging the two forms' vectors 0.014 of its R@10.
    """
    normalized = normalize(question)
    return _TRAILING_MARKS.sub("", normalized) or normalized


def check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def check_question(question: str) -> str:
    """Refuse questions that cannot be searched, with a message a user can act on."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is "
            f"{MAX_QUESTION_CHARS}: ask about one thing at a time"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate: JSON's "\ud800" escape, or bytes that are not UTF-8 on a command
        # line (Python keeps them as surrogates). The text libraries downstream fail on it.
        raise QuestionError(
            f"the question is not valid Unicode text (character {error.start + 1} is a lone "
            "surrogate, such as bytes that are not UTF-8 become): send it as UTF-8 text"
        ) from None
    return question.strip()
