"""Comparison questions (X和Y哪个大, X与Y有什么区别): the passages that speak of each side.

A comparison is answered only from evidence about both sides. Asked 行政助理和行政专员有什么
区别 of a corpus that never names 行政专员, the nearest passages compare two other things, and
quoting them would answer a different question; the answer must say what is missing instead.
A side counts as present when one passage holds every word of it (words of two characters or
more, compared on the normalised text, so traditional and simplified forms match). The two
sides are read from the question by the query stage (retriever.query.compared).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from retriever.index import Index
from retriever.query import Query
from retriever.store import StoredChunk
from retriever.text import normalize
from retriever.words import tokenize

CANDIDATES_PER_SIDE = 20


@dataclass(frozen=True)
class Side:
    """One side of a comparison, its words, and the best passage that speaks of it (None: no
    passage)."""

    text: str
    words: tuple[str, ...]
    evidence: StoredChunk | None

    def mentioned_in(self, text: str) -> bool:
        """Whether a text speaks of this side: it holds every word of it."""
        plain = normalize(text)
        return bool(self.words) and all(word in plain for word in self.words)


def _words(text: str) -> list[str]:
    words = tokenize(text, search_mode=False)
    long = [w for w in words if len(w) >= 2]
    return long or words


def find_sides(index: Index, query: Query) -> list[Side] | None:
    """Each side the query compares (Query.sides, retriever.query.compared) with the
    best-matching passage that holds all of its words."""
    sides = query.sides
    if sides is None:
        return None
    found = []
    for text in sides:
        side = Side(text, tuple(_words(text)), None)
        chunks = (
            index.by_id[chunk_id]
            for chunk_id, _ in index.lexical.search(normalize(text), CANDIDATES_PER_SIDE)
        )
        evidence = next(
            (chunk for chunk in chunks if side.mentioned_in(f"{chunk.heading}\n{chunk.text}")),
            None,
        )
        found.append(replace(side, evidence=evidence))
    return found
