"""Comparison questions (X和Y哪个大, X与Y有什么区别): the passages that speak of each side.

A comparison is answered only from evidence about both sides. Asked 行政助理和行政专员有什么
区别 of a corpus that never names 行政专员, the nearest passages compare two other things, and
quoting them would answer a different question; the answer must say what is missing instead.
A side counts as present when one passage holds every word of it (words of two characters or
more, compared on the normalised text, so traditional and simplified forms match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from retriever.index import Index
from retriever.store import StoredChunk
from retriever.text import normalize
from retriever.words import tokenize

# X和Y / X与Y / X跟Y / X同Y, then what is asked about them. Sides are short noun phrases: a
# "和" inside a long clause is rarely a comparison.
_COMPARED = re.compile(
    r"(?P<x>[^，,。？?！!；;和与跟同]{1,20}?)(?:和|与|跟|同|vs\.?|VS)(?P<y>[^，,。？?！!；;和与跟同]{1,20}?)"
    r"(?:的|之间)?(?:哪个|哪個|哪一个|哪一個|哪種|哪种|谁|誰|有什么|有什麼|有何|的区别|的區別|区别|區別|"
    r"不同|差别|差別|比较|比較|相比|一样|一樣|更)"
)
_LEAD = re.compile(r"^(?:请问|請問|想问|想問|问一下|那么|那麼)")
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


def compared(question: str) -> tuple[str, str] | None:
    """The two sides a question compares, as written, or None if it compares nothing."""
    match = _COMPARED.search(question.strip())
    if match is None:
        return None
    x = _LEAD.sub("", match["x"].strip())
    y = match["y"].strip()
    return (x, y) if x and y and x != y else None


def _words(text: str) -> list[str]:
    words = tokenize(text, search_mode=False)
    long = [w for w in words if len(w) >= 2]
    return long or words


def find_sides(index: Index, question: str) -> list[Side] | None:
    """Each compared side with the best-matching passage that holds all of its words."""
    sides = compared(question)
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
