"""The words matching sees: jieba's cut of normalised text, and the function words left out."""

from __future__ import annotations

import pytest

from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.words import content_words, load_dictionary, tokenize


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


@pytest.fixture(scope="module")
def reference_jieba():
    """A jieba tokenizer loaded jieba's own way, to compare with."""
    import jieba

    reference = jieba.Tokenizer()
    reference.initialize()
    return reference


def test_jiebas_dictionary_is_kept_and_read_back_the_same(reference_jieba, tmp_path) -> None:
    import jieba

    stem = tmp_path / "jieba" / "jieba-test"
    first = jieba.Tokenizer()
    load_dictionary(first, stem)  # made from jieba's own, then kept
    assert stem.with_suffix(".words").is_file() and stem.with_suffix(".npy").is_file()
    second = jieba.Tokenizer()
    load_dictionary(second, stem)  # read back
    for loaded in (first, second):
        assert loaded.initialized and loaded.total == reference_jieba.total
        assert loaded.FREQ == reference_jieba.FREQ
    text = "办公室主任和行政主管哪个大？工龄满10年不满20年的，年休假10天。"
    assert second.lcut_for_search(text) == reference_jieba.lcut_for_search(text)
    assert second.lcut(text) == reference_jieba.lcut(text)


def test_a_damaged_dictionary_cache_is_made_again(reference_jieba, tmp_path) -> None:
    import jieba

    stem = tmp_path / "jieba-test"
    load_dictionary(jieba.Tokenizer(), stem)
    words = stem.with_suffix(".words")
    words.write_bytes(words.read_bytes()[:1000])  # cut short: fewer words than counts
    again = jieba.Tokenizer()
    load_dictionary(again, stem)
    assert again.FREQ == reference_jieba.FREQ
    fresh = jieba.Tokenizer()
    load_dictionary(fresh, stem)  # the cache was written whole again
    assert fresh.FREQ == reference_jieba.FREQ


def test_a_tokenizer_with_its_own_dictionary_loads_it_jiebas_way(tmp_path) -> None:
    import jieba

    own = tmp_path / "own.txt"
    own.write_text("行政助理 5 n\n办公室主任 5 n\n", encoding="utf-8")
    tokenizer = jieba.Tokenizer(str(own))
    tokenizer.tmp_dir = str(tmp_path)  # jieba's cache of it, not the system's temp folder
    load_dictionary(tokenizer, tmp_path / "kept")
    assert tokenizer.total == 10 and not (tmp_path / "kept.words").exists()
