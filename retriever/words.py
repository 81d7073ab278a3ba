"""The words of Chinese text, as matching sees them: jieba's cut of the normalised text.

jieba's search mode emits the short words inside long compounds as well as the compound
("办公室主任" → 办公室, 主任, 办公室主任), so a question that phrases a term differently
from the text still shares words with it: plain word cuts were the usual cause of Chinese
keyword search that misses. BM25 (retriever.backends.bm25s_lexical) and answers
(retriever.answer) both count words this way.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from retriever.corpus import normalize
from retriever.stopwords_zh import STOPWORDS_ZH

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


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


def content_words(text: str, *, search_mode: bool = True) -> set[str]:
    """The distinct words of the text that carry meaning: function words left out."""
    return set(tokenize(text, search_mode=search_mode)) - STOPWORDS_ZH


def telling_words(text: str, *, search_mode: bool = True) -> set[str]:
    """The content words that tell passages apart: single Chinese characters (做, 事, 人)
    left out too, as alone they are the most ambiguous words, and a passage holding one says
    little about what it means. Digits and Latin letters stay, even alone (第3条)."""
    return {
        word
        for word in content_words(text, search_mode=search_mode)
        if len(word) > 1 or not _HAN.fullmatch(word)
    }
