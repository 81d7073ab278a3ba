"""Lexical retrieval: jieba tokens of normalised text, scored with BM25 (bm25s), built once.

jieba's search mode emits the short words inside long compounds as well as the compound
("办公室主任" → 办公室, 主任, 办公室主任), so a question that phrases a term differently
from the text still shares tokens with it: plain word cuts were the usual cause of Chinese
keyword search that misses.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from retriever.config import LexicalSettings
from retriever.corpus import normalize

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str, *, search_mode: bool = True) -> list[str]:
    """Words of the normalised text; punctuation and whitespace dropped."""
    jieba = _jieba()
    normalized = normalize(text)
    words = jieba.lcut_for_search(normalized) if search_mode else jieba.lcut(normalized)
    return [word for word in words if any(ch.isalnum() for ch in word)]


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_CHINESE

    return frozenset(STOPWORDS_CHINESE)


def content_words(text: str) -> set[str]:
    """The distinct words of the text that carry meaning: function words left out."""
    return set(tokenize(text)) - _stopwords()


class LexicalIndex:
    """BM25 over chunk tokens. Saved as bm25s's plain .npy and .json files (no pickle)."""

    def __init__(self, bm25, settings: LexicalSettings) -> None:
        self._bm25 = bm25
        self.settings = settings

    @classmethod
    def build(cls, texts: list[str], settings: LexicalSettings) -> LexicalIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        tokens = [tokenize(text, search_mode=settings.search_mode) for text in texts]
        bm25 = bm25s.BM25(k1=settings.k1, b=settings.b)
        bm25.index(tokens, show_progress=False)
        return cls(bm25, settings)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, settings: LexicalSettings) -> LexicalIndex:
        import bm25s

        return cls(bm25s.BM25.load(str(folder), load_corpus=False), settings)

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every chunk for the question (zeros when no word is known)."""
        token_ids = self._bm25.get_tokens_ids(
            tokenize(question, search_mode=self.settings.search_mode)
        )
        if not token_ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(token_ids), dtype=np.float32)
