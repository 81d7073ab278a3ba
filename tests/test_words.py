"""The words matching sees: jieba's cut of normalised text, and the function words left out."""

from __future__ import annotations

from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.words import content_words, tokenize


def test_search_mode_emits_the_words_inside_compounds() -> None:
    words = tokenize("辦公室主任，")  # traditional characters, full-width comma
    assert {"办公", "办公室", "主任"} <= set(words) and "，" not in words


def test_content_words_leave_out_function_words() -> None:
    words = content_words("我们的办公室主任在哪里")
    assert {"办公室", "主任"} <= words and not words & {"我们", "的", "在", "哪里"}


def test_the_stopword_list_is_bm25s_own() -> None:
    """Copied so that answering needs no lexical engine; checked while bm25s is installed."""
    from bm25s.stopwords import STOPWORDS_CHINESE

    assert frozenset(STOPWORDS_CHINESE) == STOPWORDS_ZH
