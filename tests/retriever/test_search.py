"""Search and answers over a small corpus, with the stand-in embedder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from retriever import Candidate, QuestionError, Retriever
from retriever.config import FusionWeights
from retriever.corpus import extract_text
from retriever.fusion import Candidates, fitted_weights, fuse
from retriever.models import DEFAULT_MODEL_NAME


@pytest.fixture
def retriever(small_corpus: Path, tmp_path: Path, hashing_embedder) -> Retriever:
    Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder)
    return Retriever.load(tmp_path / "index", embedder=hashing_embedder)


def test_hits_are_ranked_and_cite_exact_offsets(retriever: Retriever, small_corpus: Path) -> None:
    hits = retriever.search("苹果有什么好处", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].source == "fruit.md" and hits[0].heading == "苹果"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        # Offsets point into the file's text as read: a Markdown file's is the rendered text.
        path = small_corpus / hit.source
        source, _ = extract_text(path.read_bytes(), path.suffix, hit.source)
        assert source[hit.start : hit.end] == hit.text


def test_traditional_full_width_question_finds_simplified_text(retriever: Retriever) -> None:
    hits = retriever.search("辦公室主任和行政主管哪個大？", k=1, mode="bm25")
    assert hits[0].heading == "办公室主任和行政主管哪个大?"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_mode_returns_hits(retriever: Retriever, mode: str) -> None:
    hits = retriever.search("行政助理负责考勤吗", k=2, mode=mode)
    assert hits and hits[0].source == "jobs.txt"


def test_repeated_passages_do_not_fill_the_results(tmp_path: Path, hashing_embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    passage = "行政助理负责员工的考勤,于次月第一个工作日提供考勤报表并存档。"
    (corpus / "a.txt").write_text(passage + "\n", encoding="utf-8")
    (corpus / "b.txt").write_text("转载:\n" + passage + "\n", encoding="utf-8")
    (corpus / "c.txt").write_text(passage[:30] + "...\n", encoding="utf-8")  # a truncated copy
    (corpus / "d.txt").write_text("办公用品采购计划由行政助理制定。\n", encoding="utf-8")
    Retriever.build(corpus, tmp_path / "index", embedder=hashing_embedder)
    hits = Retriever.load(tmp_path / "index", embedder=hashing_embedder).search("考勤报表", k=5)
    texts = [h.text for h in hits]
    assert sum("考勤" in t for t in texts) == 1, texts
    assert len(hits) == 2


@pytest.mark.parametrize(
    ("question", "message"), [("", "empty"), ("   \n", "empty"), ("问" * 5000, "limit")]
)
def test_bad_questions_get_clear_errors(retriever: Retriever, question: str, message: str) -> None:
    with pytest.raises(QuestionError, match=message):
        retriever.search(question)


@pytest.mark.parametrize("method", ["search", "ask"])
def test_k_below_one_is_refused_by_search_and_ask(retriever: Retriever, method: str) -> None:
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        getattr(retriever, method)("考勤", k=0)


def test_question_with_no_known_word_still_answers(retriever: Retriever) -> None:
    assert retriever.search("qwxyz", k=2)


def candidates(
    cosines: dict[int, float],
    bm25: dict[int, float],
    coverage: dict[int, float] | None = None,
    title: dict[int, float] | None = None,
) -> Candidates:
    return Candidates("q", None, cosines, bm25, coverage or {}, title or {})


def test_keywords_decide_only_where_the_model_is_unsure() -> None:
    weights = FusionWeights(bm25=0.03, lead=0.0)
    bm25 = {1: 0.0, 2: 1.0, 3: 4.0}
    unsure = fuse(candidates({1: 0.861, 2: 0.860, 3: 0.855}, bm25), weights, "hybrid")
    assert [i for i, _ in unsure] == [3, 2, 1]
    sure = fuse(candidates({1: 0.95, 2: 0.86, 3: 0.85}, bm25), weights, "hybrid")
    assert [i for i, _ in sure] == [1, 3, 2]
    assert fuse(candidates({1: 0.9}, {1: 0.0, 2: 3.0}), weights, "bm25") == [(2, 3.0)]


def test_the_share_of_question_words_held_breaks_a_near_tie() -> None:
    cosines, bm25 = {1: 0.861, 2: 0.855}, {1: 2.0, 2: 2.0}
    by_text = fuse(
        candidates(cosines, bm25, coverage={1: 0.25, 2: 1.0}),
        FusionWeights(bm25=0.0, lead=0.0, coverage=0.03),
        "hybrid",
    )
    assert [i for i, _ in by_text] == [2, 1]
    assert by_text[0][1] == pytest.approx(0.855 + 0.03)
    by_title = fuse(
        candidates(cosines, bm25, title={2: 0.5}),
        FusionWeights(bm25=0.0, lead=0.0, title=0.02),
        "hybrid",
    )
    assert by_title == [(2, pytest.approx(0.865)), (1, pytest.approx(0.861))]


def test_the_default_model_is_ranked_with_its_fitted_weights(
    retriever: Retriever, hashing_embedder
) -> None:
    fitted = fitted_weights(DEFAULT_MODEL_NAME)
    assert fitted is not None and fitted.coverage > 0  # bench.fit_fusion's choice is shipped
    assert fitted_weights("a-model-nobody-fitted") is None
    assert retriever.searcher.weights == FusionWeights()  # the stand-in model has no fit
    chosen = FusionWeights(bm25=0.5)
    assert retriever.with_settings(fusion=chosen).searcher.weights == chosen


def test_answer_markers_match_citation_numbers(retriever: Retriever) -> None:
    answer = retriever.ask("办公室主任和行政主管哪个大?")
    assert answer.found
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers and markers == {c.number for c in answer.citations if c.quotes}
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    first = answer.citations[0]
    assert first.quotes and first.hit.heading == "办公室主任和行政主管哪个大?"
    for quote in first.quotes:
        assert quote.text in answer.answer
        assert (
            first.hit.text[quote.start - first.hit.start : quote.end - first.hit.start]
            == quote.text
        )


def test_unanswerable_question_is_flagged(retriever: Retriever) -> None:
    strict = retriever.with_settings(min_confidence=1.01)
    answer = strict.ask("今天天气怎么样")
    assert not answer.found
    assert answer.citations and not any(c.quotes for c in answer.citations)
    assert "[" not in answer.answer
    data = answer.to_dict()
    assert data["found"] is False and data["citations"][0]["text"]


def test_large_indexes_switch_to_hnsw_with_the_same_results(
    small_corpus: Path, tmp_path: Path, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retriever.backends import faiss_dense

    Retriever.build(small_corpus, tmp_path / "flat", embedder=hashing_embedder)
    monkeypatch.setattr(faiss_dense, "HNSW_THRESHOLD", 2)  # every test corpus counts as large
    Retriever.build(small_corpus, tmp_path / "hnsw", embedder=hashing_embedder)

    flat = Retriever.load(tmp_path / "flat", embedder=hashing_embedder)
    hnsw = Retriever.load(tmp_path / "hnsw", embedder=hashing_embedder)
    assert not flat.index.dense.is_hnsw and hnsw.index.dense.is_hnsw
    for question in ("苹果有什么好处", "行政助理负责考勤吗"):
        expected = flat.search(question)
        assert [h.chunk_id for h in hnsw.search(question)] == [h.chunk_id for h in expected]


class Reverse:
    """A reranker that puts the fused candidates in the opposite order."""

    def rerank(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        return [Candidate(c.chunk, -c.score) for c in reversed(candidates)]


def test_a_reranker_reorders_what_fusion_ranked(
    retriever: Retriever, small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    reranked = Retriever.load(tmp_path / "index", embedder=hashing_embedder, reranker=Reverse())
    fused = retriever.search("苹果有什么好处", k=10)
    reversed_hits = reranked.search("苹果有什么好处", k=10)
    assert [h.chunk_id for h in reversed_hits] == [h.chunk_id for h in fused][::-1]
    assert [h.rank for h in reversed_hits] == list(range(1, len(fused) + 1))
    assert reranked.with_settings(fusion=FusionWeights()).searcher.reranker is not None


def test_answers_reuse_the_sentence_vectors_of_earlier_answers(
    retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[str] = []
    encode = retriever.answerer.embedder.encode_passages

    def counting(texts: list[str], **kwargs):
        embedded.extend(texts)
        return encode(texts, **kwargs)

    monkeypatch.setattr(retriever.answerer.embedder, "encode_passages", counting)
    first = retriever.ask("行政助理负责哪些工作?")
    assert embedded and first.found
    embedded.clear()
    again = retriever.ask("行政助理负责哪些工作?")
    assert embedded == [] and again == first  # the same sentences, none embedded again
    # The cache stays within its bound: the oldest vectors go first.
    monkeypatch.setattr("retriever.answer.KEPT_SENTENCE_VECTORS", 2)
    texts = ["甲句。", "乙句。", "丙句。"]
    vectors = retriever.answerer._sentence_vectors(texts)
    assert all(np.array_equal(v, w) for v, w in zip(vectors, encode(texts), strict=True))
    assert list(retriever.answerer._vectors) == texts[1:]
