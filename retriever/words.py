"""The words of Chinese text, as matching sees them: jieba's cut of the normalised text.

jieba's search mode emits the short words inside long compounds as well as the compound
("办公室主任" → 办公室, 主任, 办公室主任), so a question that phrases a term differently
from the text still shares words with it: plain word cuts were the usual cause of Chinese
keyword search that misses. BM25 (retriever.backends.bm25s_lexical) and answers
(retriever.answer) both count words this way.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from retriever.config import Environment
from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.text import normalize

logger = logging.getLogger(__name__)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@lru_cache(maxsize=1)
@functools.cache
def posseg():
    """jieba's part-of-speech cutter over the loaded dictionary; its word tags are read on
    first use (about half a second), which only the answer rules ask for."""
    load_jieba()
    import jieba.posseg

    return jieba.posseg.dt


def load_jieba():
    """jieba, its default dictionary loaded (once per process), for whatever cuts words.

    jieba keeps its dictionary (498,113 words and prefixes with their counts) in a marshal
    file in the system's temporary folder; reading it took 1.3-2.5 s on a 2-core AMD EPYC,
    most of a cold start. The same dictionary kept as the words in one UTF-8 text and the
    counts in one numpy array is read in 0.7 s, and nothing in it can run code. It is made
    from jieba's own the first time, in the cache folder (RETRIEVER_CACHE, or .cache/).
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    cache = Environment.read().cache / "jieba"
    load_dictionary(jieba.dt, cache / f"jieba-{jieba.__version__}")
    return jieba


def load_dictionary(tokenizer, stem: Path) -> None:
    """Load jieba `tokenizer`'s default dictionary from `stem`.words and `stem`.npy, made
    from jieba's own loading when they are missing or unreadable. A tokenizer given another
    dictionary loads it jieba's way."""
    if tokenizer.initialized:
        return
    if tokenizer.dictionary is not None:
        tokenizer.initialize()
        return
    words_file, counts_file = stem.with_suffix(".words"), stem.with_suffix(".npy")
    try:
        words = words_file.read_bytes().decode("utf-8").split("\n")
        counts = np.load(counts_file, allow_pickle=False)
        if counts.ndim != 1 or len(counts) != len(words) + 1:
            raise ValueError(f"{stem}: {len(words)} words but {len(counts) - 1} counts")
    except (OSError, ValueError) as error:
        logger.debug("making jieba's dictionary cache in %s (%s)", stem.parent, error)
        tokenizer.initialize()
        _write_dictionary(tokenizer, words_file, counts_file)
        return
    with tokenizer.lock:
        # What jieba.Tokenizer.initialize sets (jieba is pinned: requirements.txt).
        tokenizer.FREQ = dict(zip(words, counts[:-1].tolist(), strict=True))
        tokenizer.total = int(counts[-1])
        tokenizer.initialized = True


def _write_dictionary(tokenizer, words_file: Path, counts_file: Path) -> None:
    """Keep the loaded dictionary for the next process: written whole, then renamed, so a
    reader never sees half; a folder that cannot be written only costs the next start."""
    words = list(tokenizer.FREQ)
    counts = np.array([*(tokenizer.FREQ[word] for word in words), tokenizer.total], np.int64)
    try:
        words_file.parent.mkdir(parents=True, exist_ok=True)
        # Named per process: two starting at once each write their own, then rename.
        partial_words = words_file.with_suffix(f".{os.getpid()}.partial")
        partial_counts = counts_file.with_suffix(f".{os.getpid()}.partial.npy")
        partial_words.write_bytes("\n".join(words).encode("utf-8"))
        np.save(partial_counts, counts)
        partial_counts.replace(counts_file)
        partial_words.replace(words_file)
    except OSError as error:
        logger.warning("cannot keep jieba's dictionary in %s: %s", words_file.parent, error)


def tokenize(text: str, *, search_mode: bool = True) -> list[str]:
    """Words of the normalised text; punctuation and whitespace dropped."""
    return cut(normalize(text), search_mode=search_mode)


def cut(normalized: str, *, search_mode: bool = True) -> list[str]:
    """tokenize's words of a text already normalised (retriever.query reads a question once)."""
    jieba = load_jieba()
    words = jieba.lcut_for_search(normalized) if search_mode else jieba.lcut(normalized)
    return [word for word in words if any(ch.isalnum() for ch in word)]


def content_words(text: str, *, search_mode: bool = True) -> set[str]:
    """The distinct words of the text that carry meaning: function words left out."""
    return set(tokenize(text, search_mode=search_mode)) - STOPWORDS_ZH


def telling_words(text: str, *, search_mode: bool = True) -> set[str]:
    """The content words that tell passages apart: single Chinese characters (做, 事, 人)
    left out too, as alone they are the most ambiguous words, and a passage holding one says
    little about what it means. Digits and Latin letters stay, even alone (第3条)."""
    return telling(content_words(text, search_mode=search_mode))


def telling(content: set[str]) -> set[str]:
    """telling_words' choice among content words already cut."""
    return {word for word in content if len(word) > 1 or not _HAN.fullmatch(word)}
