"""Generated answers (retriever/generation.py) against a real OpenAI-compatible HTTP server
on 127.0.0.1 that plays scripted replies (tests/model_server_stub.py): what is kept, what is
dropped and why, and when the extractive answer stands instead. No model quality is
claimed here: the replies are written by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_server_stub import Reply, Stub, model_server

from retriever import Retriever
from retriever.answer import Answerer
from retriever.answerability import AnswerCheck
from retriever.generation import (
    Extracted,
    GeneratingAnswerer,
    GenerationFailed,
    GenerationSettings,
    ModelServer,
    Settled,
    check_sentences,
    normalise_markers,
)

QUESTION = "行政助理负责什么?"


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    with model_server() as stub:
        yield stub


@pytest.fixture
def index(small_corpus: Path, hashing_embedder, tmp_path: Path) -> Path:
    Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder)
    return tmp_path / "index"


@pytest.fixture
def extractive(hashing_embedder, tmp_path: Path) -> Answerer:
    return Answerer(hashing_embedder, AnswerCheck(hashing_embedder, tmp_path / "c", 0.0))


@pytest.fixture
def retriever(index: Path, extractive: Answerer, hashing_embedder, stub: Stub) -> Retriever:
    server = ModelServer(
        GenerationSettings(stub.url, "stub", api_key="secret-key", first_token_timeout=1.0)
    )
    generating = GeneratingAnswerer(extractive, server)
    return Retriever.load(index, embedder=hashing_embedder, answerer=generating)


@pytest.fixture
def extracted(index: Path, extractive: Answerer, hashing_embedder) -> str:
    """The extractive answer to QUESTION: what stands whenever generation cannot."""
    plain = Retriever.load(index, embedder=hashing_embedder, answerer=extractive)
    return plain.ask(QUESTION).answer


def test_markers_in_other_forms_are_normalised() -> None:
    assert normalise_markers("甲【1】乙［2］丙[1,2]丁[1、3]") == "甲[1]乙[2]丙[1][2]丁[1][3]"


def test_a_good_answer_is_kept_with_its_markers(retriever: Retriever, stub: Stub) -> None:
    stub.play(Reply(["行政助理负责员工的考勤", "[1]。", "也负责办公用品采购[1]。"]))
    answer = retriever.ask(QUESTION)
    assert answer.kind == "generated" and answer.fallback is None
    assert answer.answer == "行政助理负责员工的考勤[1]。也负责办公用品采购[1]。"
    # The model was given the passages numbered as the citations, and the instructions.
    [request] = stub.requests
    prompt = request["messages"][-1]["content"]
    assert request["stream"] is True and request["model"] == "stub"
    assert "[1]" in prompt and answer.citations[0].hit.text in prompt
    assert "只根据下面编号的资料回答" in request["messages"][0]["content"]


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        (["行政助理负责考勤[9]。"], "引用了不存在的资料 [9]"),
        (["行政助理每月加班 48 小时[1]。"], "「48」不在所引资料中"),
        (["行政助理负责考勤。"], "没有标出依据的资料"),
        (["行政助理向「行政总监」汇报[1]。"], "「行政总监」不在所引资料中"),
    ],
)
def test_a_sentence_that_fails_the_check_leaves_the_extractive_answer(
    retriever: Retriever, extracted: str, stub: Stub, pieces: list[str], why: str
) -> None:
    stub.play(Reply(pieces))
    answer = retriever.ask(QUESTION)
    assert answer.kind == "extractive" and why in (answer.fallback or "")
    assert answer.answer == extracted


def test_one_bad_sentence_of_several_is_dropped(retriever: Retriever) -> None:
    citations = retriever.ask(QUESTION).citations
    checked = check_sentences(
        "行政助理负责员工的考勤[1]。于次月第一个工作日提供考勤报表[1]。每年涨薪 30%[1]。",
        citations,
    )
    assert [d.why for d in checked.dropped] == ["「30%」不在所引资料中"]
    assert len(checked.kept) == 2


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply(status=500), "HTTP 500"),
        (Reply(["行政助理负责员工的考勤[1]。"], first_delay=3.0), "没有按时回应"),
        (Reply([]), "没有返回内容"),
        (Reply(["行政助理负责"], broken=True), "回应不完整"),
        (Reply(["资料中没有找到答案。"]), "资料不能回答"),
    ],
)
def test_a_failing_server_leaves_the_extractive_answer_and_says_why(
    retriever: Retriever, extracted: str, stub: Stub, reply: Reply, why: str
) -> None:
    stub.play(reply)
    started = time.monotonic()
    answer = retriever.ask(QUESTION)
    assert answer.kind == "extractive" and why in (answer.fallback or ""), answer.fallback
    assert answer.found and answer.answer == extracted
    assert time.monotonic() - started < 10


def test_nothing_is_generated_when_the_documents_do_not_answer(
    index: Path, hashing_embedder, tmp_path: Path, stub: Stub
) -> None:
    strict = Answerer(hashing_embedder, AnswerCheck(hashing_embedder, tmp_path / "c", 1.01))
    server = ModelServer(GenerationSettings(stub.url, "stub"))
    retriever = Retriever.load(
        index, embedder=hashing_embedder, answerer=GeneratingAnswerer(strict, server)
    )
    stub.play(Reply(["不该用到[1]。"]))
    answer = retriever.ask("量子引力的数学基础")
    assert not answer.found and answer.kind == "extractive" and stub.requests == []


def test_the_key_is_never_shown() -> None:
    settings = GenerationSettings("http://127.0.0.1:1/v1", "m", api_key="secret-key")
    assert "secret-key" not in repr(settings)


def test_an_unreachable_server_is_a_generation_failure() -> None:
    server = ModelServer(GenerationSettings("http://127.0.0.1:1/v1", "m", timeout=2.0))
    with pytest.raises(GenerationFailed):
        list(server.stream([{"role": "user", "content": "?"}]))


def test_the_events_give_the_extractive_answer_first_then_pieces_then_the_answer(
    retriever: Retriever, extracted: str, stub: Stub
) -> None:
    stub.play(Reply(["行政助理负责员工的考勤", "[1]。"]))
    history = ["办公室主任和行政主管哪个大?"]
    asked = retriever.searched("那行政助理呢?", earlier=history)
    events = list(retriever.answerer.events(asked))
    assert isinstance(events[0], Extracted) and events[0].answer.kind == "extractive"
    assert [event.text for event in events[1:-1]] == ["行政助理负责员工的考勤", "[1]。"]
    assert isinstance(events[-1], Settled) and events[-1].answer.kind == "generated"
    # The conversation so far reaches the model.
    assert "之前问过：办公室主任和行政主管哪个大?" in stub.requests[0]["messages"][-1]["content"]


def test_the_extractive_answerer_answers_when_asked_to(
    retriever: Retriever, extractive: Answerer, extracted: str, stub: Stub
) -> None:
    stub.play(Reply(["不该用到[1]。"]))
    answer = retriever.ask(QUESTION, answerer=extractive)
    assert answer.answer == extracted and stub.requests == []


def test_settings_come_from_the_environment_and_say_what_is_wrong() -> None:
    assert GenerationSettings.from_env({}) is None
    settings = GenerationSettings.from_env(
        {
            "RETRIEVER_GENERATE_URL": "http://127.0.0.1:11434/v1",
            "RETRIEVER_GENERATE_MODEL": "qwen2.5:7b",
            "RETRIEVER_GENERATE_KEY": "k",
            "RETRIEVER_GENERATE_TIMEOUT": "30",
            "RETRIEVER_GENERATE_MAX_TOKENS": "256",
        }
    )
    assert settings == GenerationSettings(
        "http://127.0.0.1:11434/v1", "qwen2.5:7b", api_key="k", timeout=30.0, max_tokens=256
    )
    for environ, says in (
        ({"RETRIEVER_GENERATE_URL": "http://x/v1"}, "RETRIEVER_GENERATE_MODEL"),
        ({"RETRIEVER_GENERATE_MODEL": "m"}, "RETRIEVER_GENERATE_URL"),
        ({"RETRIEVER_GENERATE_URL": "file:///etc", "RETRIEVER_GENERATE_MODEL": "m"}, "http"),
        (
            {
                "RETRIEVER_GENERATE_URL": "http://x/v1",
                "RETRIEVER_GENERATE_MODEL": "m",
                "RETRIEVER_GENERATE_TIMEOUT": "-1",
            },
            "RETRIEVER_GENERATE_TIMEOUT",
        ),
    ):
        with pytest.raises(ValueError, match=says):
            GenerationSettings.from_env(environ)
