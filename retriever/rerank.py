"""The optional stage between fusion and the final list: a reranker reorders the candidates.

There is none by default. A reranker (a cross-encoder, say) gets the question and the fused
candidates, best first, each with its passage, and returns them in its own order with its
own scores; passages that repeat a higher one are dropped after it. `search`, `ask` and the
evaluation all run it (retriever.searcher), so its effect shows in every figure. To add one,
implement `Reranker` and pass it to `Retriever.load(..., reranker=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from retriever.store import StoredChunk


@dataclass(frozen=True)
class Candidate:
    """A passage in a ranking, with the score that puts it there."""

    chunk: StoredChunk
    score: float


class Reranker(Protocol):
    def rerank(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        """`candidates` (best first) in the reranker's order, best first, with its scores.

        It may leave out candidates, never add any.
        """
        ...
