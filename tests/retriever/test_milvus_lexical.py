"""The lexical backend on Milvus Lite's BM25 (retriever.backends.milvus_lexical) in whole
indexes: built, searched, updated (a document added, one removed), loaded again from the
folder, and asked through the hybrid path; and chosen on the command line. On a Milvus
server (milvus-lite's), the same and the collections' ownership are
tests/e2e/test_milvus_server.py's; here, which server versions are refused.

Its contract (search, scores, coverage, delete, save and load, updates ending where a fresh
build starts) is tests/retriever/test_backends.py's, which runs over it too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from retriever import Retriever
from retriever.backends import milvus_lexical, milvus_text
from retriever.config import BackendSettings
from retriever.index import Index
from retriever.store import LEXICAL_FOLDER, MANIFEST
from retriever.words import tokenize

WORDS = BackendSettings(lexical="milvus")
QUESTIONS = ("行政助理的考勤报表", "苹果富含维生素", "办公室主任和行政主管", "热带水果香蕉")


def bm25(retriever: Retriever, question: str) -> list[tuple[str, float]]:
    return [(hit.text, hit.score) for hit in retriever.search(question, k=10, mode="bm25")]


def built(corpus: Path, index: Path, embedder, backends: BackendSettings) -> Retriever:
    Retriever.build(corpus, index, embedder=embedder, backends=backends)
    return Retriever.load(index, embedder=embedder, cache_dir=index.parent / "cache")


def test_a_build_keeps_its_words_in_milvus_and_scores_as_bm25s(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    milvus = built(small_corpus, tmp_path / "milvus", hashing_embedder, WORDS)
    bm25s = built(small_corpus, tmp_path / "bm25s", hashing_embedder, BackendSettings())
    manifest = json.loads((tmp_path / "milvus" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["backends"] == {"dense": "faiss", "lexical": "milvus"}
    assert (tmp_path / "milvus" / LEXICAL_FOLDER / "milvus.db").is_dir()
    assert isinstance(milvus.index.lexical, milvus_lexical.MilvusLexical)
    found = milvus.search("考勤报表什么时候交", k=1, mode="bm25")
    assert "考勤报表" in found[0].text
    assert milvus.search("量子计算", k=3, mode="bm25") == []
    # The same words and formula: the same passages, the same scores as bm25s's.
    same_bm25(milvus, bm25s, QUESTIONS)


def test_updates_add_and_remove_documents_and_reload_as_a_fresh_build(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    index = tmp_path / "index"
    built(small_corpus, index, hashing_embedder, WORDS)
    (small_corpus / "seal.txt").write_text(
        "印章管理\n公司印章由行政部统一保管，使用印章必须填写用印申请单。\n", encoding="utf-8"
    )
    report = Retriever.build(small_corpus, index, embedder=hashing_embedder)  # no option
    assert report.reused > 0 and report.read == ("seal.txt",)
    added = Retriever.load(index, embedder=hashing_embedder, cache_dir=tmp_path / "cache")
    assert "用印申请单" in added.search("用印申请单", k=1, mode="bm25")[0].text
    # Scores depend on the whole collection: after an update they are a fresh build's.
    # (Without the backend's rebuild, Milvus Lite scored the added passages by the
    # statistics of their own segment alone.)
    same_as_fresh(added, small_corpus, tmp_path / "fresh_added", hashing_embedder)
    (small_corpus / "fruit.md").unlink()
    report = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert report.removed == ("fruit.md",)
    updated = Retriever.load(index, embedder=hashing_embedder, cache_dir=tmp_path / "cache")
    assert updated.index.manifest.backends == WORDS
    assert updated.search("香蕉热带", k=3, mode="bm25") == []
    assert updated.index.lexical.count == len(updated.index.chunks)
    same_as_fresh(updated, small_corpus, tmp_path / "fresh_removed", hashing_embedder)


def same_as_fresh(updated: Retriever, corpus: Path, folder: Path, embedder) -> None:
    """The updated index's BM25 rankings and scores are those of a fresh build of `corpus`."""
    fresh = built(shutil.copytree(corpus, folder / "corpus"), folder / "index", embedder, WORDS)
    same_bm25(updated, fresh, (*QUESTIONS, "印章由谁保管"))


def same_bm25(ours: Retriever, theirs: Retriever, questions: tuple[str, ...]) -> None:
    """Both give each question the same BM25 passages in the same order, with equal scores."""
    for question in questions:
        got, expected = bm25(ours, question), bm25(theirs, question)
        assert [text for text, _ in got] == [text for text, _ in expected]
        assert [score for _, score in got] == pytest.approx([s for _, s in expected], rel=1e-4)


def test_the_hybrid_search_and_ask_run_over_milvus_bm25(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    retriever = built(small_corpus, tmp_path / "index", hashing_embedder, WORDS)
    bm25s = built(small_corpus, tmp_path / "bm25s", hashing_embedder, BackendSettings())
    question = "行政助理负责什么?"
    hits = retriever.search(question, k=3)
    assert "考勤" in hits[0].text
    assert hits[0].bm25_score is not None and hits[0].bm25_score > 0
    # Fusion sees the scores bm25s gives, so the hybrid ranking and the answer are bm25s's.
    theirs = bm25s.search(question, k=3)
    assert [(hit.text, hit.score) for hit in hits] == [(hit.text, hit.score) for hit in theirs]
    answer = retriever.ask(question)
    assert answer.found and "考勤" in answer.citations[0].hit.text
    assert answer.answer == bm25s.ask(question).answer


def test_the_command_line_puts_the_whole_index_in_milvus(small_corpus: Path, tmp_path) -> None:
    index = tmp_path / "index"
    result = run_cli(
        "build", "--corpus", str(small_corpus), "--index", str(index),
        "--backend", "milvus", "--lexical", "milvus", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["backends"] == {"dense": "milvus", "lexical": "milvus"}
    loaded = Index.load(index)  # two Milvus Lite databases open side by side
    assert isinstance(loaded.lexical, milvus_lexical.MilvusLexical)
    top = loaded.lexical.search("考勤报表", 1)[0][0]
    assert "考勤报表" in loaded.by_id[top].text
    assert loaded.dense.count == loaded.lexical.count == len(loaded.chunks)


def test_each_word_is_spelled_as_one_ascii_token_and_read_back() -> None:
    for word in ("考勤", "中华人民共和国", "covid19", "第3条", "𠀋"):  # 𠀋: beyond U+FFFF
        token = milvus_text.spelled(word)
        assert token.isascii() and token.isalnum() and milvus_text.unspelled(token) == word
    held = milvus_text.stored("行政助理负责考勤。", "words", search_mode=True)
    words = [milvus_text.unspelled(token) for token in held.split()]
    assert words == tokenize("行政助理负责考勤。")  # search mode: 行政, 助理, 行政助理, …
    assert "行政助理" in words and "。" not in words


def test_a_server_older_than_2_5_is_refused_naming_its_version_and_the_fix() -> None:
    for version in ("v2.3.5", "v2.4.17", "2.4.0"):
        with pytest.raises(ValueError, match=rf"{version}, which has no BM25.*--lexical bm25s"):
            milvus_text.check_bm25(version, "http://127.0.0.1:19530")
    for version in ("v2.5.4", "v2.6.0", "v3.0.0", "milvus_lite-3.2.2", ""):
        milvus_text.check_bm25(version, "http://127.0.0.1:19530")  # BM25 there (or unknown)
