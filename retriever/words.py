"""The words of Chinese text, as matching sees them: jieba's cut of the normalised text.

jieba's search mode emits the short words inside long compounds as well as the compound
("办公室主任" → 办公室, 主任, 办公室主任), so a question that phrases a term differently
from the text still shares words with it: plain word cuts were the usual cause of Chinese
keyword search that misses. BM25 (retriever.backends.bm25s_lexical) and answers
(retriever.answer) both count words this way.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from retriever.corpus import normalize
from retriever.stopwords_zh import STOPWORDS_ZH


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


def content_words(text: str) -> set[str]:
    """The distinct words of the text that carry meaning: function words left out."""
    return set(tokenize(text)) - STOPWORDS_ZH
