"""What every answerer keeps (retriever.answer.Answering, which takes the question as the query
stage read it: retriever.query.Query), and that the app keeps the answerer, the reranker and
the cache folder it was given across rebuilds and knowledge bases.

A new kind of answer (a generated one, say) is one module plus its line in ANSWERERS: the
contract below is then checked for it as for the extractive one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_server_stub import model_server

from retriever import Retriever
from retriever.answer import Answer, Answerer, Answering, Citation
from retriever.answerability import AnswerCheck
from retriever.generation import GeneratingAnswerer, GenerationSettings, ModelServer
from retriever.query import Query
from retriever.searcher import Candidate
from web.builds import Opener
from web.libraries import Libraries
from web.library import Library

QUESTIONS = ["苹果有什么营养?", "行政助理负责什么?", "香蕉产于哪里", "量子引力的数学基础"]


def extractive(embedder, cache: Path, model_url: str = "") -> Answering:
    return Answerer(embedder, AnswerCheck(embedder, cache, None))


def generated(embedder, cache: Path, model_url: str) -> Answering:
    """Written by a model server (a stub that quotes faithfully: tests/model_server_stub.py)."""
    server = ModelServer(GenerationSettings(model_url, "stub"))
    return GeneratingAnswerer(extractive(embedder, cache, model_url), server)


ANSWERERS = {"extractive": extractive, "generated": generated}


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with model_server() as stub:
        yield stub.url


@pytest.fixture(params=ANSWERERS)
def answering(
    request, small_corpus: Path, hashing_embedder, tmp_path: Path, model_url: str
) -> Retriever:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    answerer = ANSWERERS[request.param](hashing_embedder, tmp_path / "cache", model_url)
    return Retriever.load(index, embedder=hashing_embedder, answerer=answerer)


def _check(answer: Answer, retriever: Retriever) -> None:
    """The contract: markers name cited passages; quotes are the passages' own words, at
    their offsets; citations are numbered 1..n; no quote without an answer."""
    numbers = [citation.number for citation in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers <= set(numbers)
    texts = {chunk.doc_id: chunk for chunk in retriever.chunks}
    for citation in answer.citations:
        hit = citation.hit
        assert hit.doc_id in texts
        for quote in citation.quotes:
            assert hit.start <= quote.start < quote.end <= hit.end
            assert hit.text[quote.start - hit.start : quote.end - hit.start] == quote.text
            if answer.kind == "extractive":
                assert quote.text in answer.answer
    quoting = [c for c in answer.citations if c.quotes]
    if answer.found:
        assert quoting and markers
        if answer.kind == "extractive":
            assert markers == {c.number for c in quoting}
    else:
        assert not quoting and not markers
    assert answer.kind in ("extractive", "generated") and 0.0 <= answer.confidence <= 1.0


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_answerer_keeps_the_contract(answering: Retriever, question: str) -> None:
    answer = answering.ask(question)
    assert isinstance(answer, Answer) and all(isinstance(c, Citation) for c in answer.citations)
    _check(answer, answering)


def test_every_answerer_takes_the_question_as_the_query_stage_read_it(
    answering: Retriever,
) -> None:
    """`answer(query, candidates, hits, sides)`: the question read once (retriever.query), a
    follow-up completed and a comparison's sides found before any answerer sees it."""
    searched = answering.searched("那行政助理呢?", earlier=["办公室主任和行政主管哪个大?"])
    query = searched.query
    assert isinstance(query, Query)
    assert query.text == "行政助理和行政主管哪个大?" and query.sides == ("行政助理", "行政主管")
    assert query.shift == ("办公室主任", "行政助理")
    answer = answering.answerer.answer(query, searched.candidates, searched.hits, searched.sides)
    assert answer == answering.answer(searched)
    assert answer.question == query.text
    _check(answer, answering)


class _KeepOrder:
    """A reranker that changes nothing: only its identity matters here."""

    def rerank(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        return candidates


def test_the_app_keeps_its_answerer_reranker_and_cache_across_rebuilds_and_bases(
    small_corpus: Path, hashing_embedder, tmp_path: Path
) -> None:
    index, cache = tmp_path / "index", tmp_path / "elsewhere"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    answerer, reranker = extractive(hashing_embedder, cache), _KeepOrder()
    first = Retriever.load(
        index, embedder=hashing_embedder, cache_dir=cache, reranker=reranker, answerer=answerer
    )
    library = Library(small_corpus, index, first)
    assert library.opener == Opener(hashing_embedder, cache, reranker, answerer)
    (small_corpus / "more.txt").write_text("梨\n梨子清甜多汁，秋天上市。\n", encoding="utf-8")
    library.wait(library.rebuild(), lambda state: None)
    libraries = Libraries(library, tmp_path / "bases")
    libraries.create("人事")
    other = libraries.get("人事")
    for served in (library.retriever, other.opener.open(index)):
        assert served is not first
        assert served.answerer is answerer and served.searcher.reranker is reranker
        assert served.cache_dir == cache
    assert "梨子清甜多汁" in library.retriever.ask("梨子什么时候上市").answer
