"""The query stage (retriever.query): a question read once into the typed Query that the
search, the comparison, the answer check and the answerer all read."""

from __future__ import annotations

from pathlib import Path

import pytest

from retriever import Retriever
from retriever.answer import Answerer
from retriever.answer_rules import asks_list, asks_opinion, numbers_in
from retriever.answerability import AnswerCheck
from retriever.query import Query, QuestionError, as_query, compared, read_query, search_text
from retriever.words import content_words, telling_words, tokenize

DIRECTOR = "办公室主任的直接上级是谁?"


def test_a_plain_question_is_read_once_into_its_fields() -> None:
    query = read_query("  辦公室主任的直接上級是誰？ ")
    assert query.typed == "  辦公室主任的直接上級是誰？ "
    assert query.text == "辦公室主任的直接上級是誰？"  # as typed, less the spaces around it
    assert query.normalized == "办公室主任的直接上级是谁?"  # simplified, width folded
    assert query.searched == "办公室主任的直接上级是谁"  # the trailing mark dropped
    assert {"办公室", "主任", "上级", "的", "谁"} <= set(query.words)
    assert query.content == {"办公", "公室", "办公室", "主任", "上级"}  # 的, 是, 谁 left out
    assert query.telling == query.content  # no single characters among them
    assert (query.numbers, query.sides, query.shift, query.earlier) == ((), None, None, ())
    assert query.kind == "plain"


def test_a_comparison_has_its_two_sides() -> None:
    query = read_query("办公室主任和行政主管哪个大?")
    assert query.sides == ("办公室主任", "行政主管")
    assert query.kind == "comparison"
    assert "大" in query.content and "大" not in query.telling  # one character tells little
    assert read_query("请问行政助理与行政专员有什么区别").sides == ("行政助理", "行政专员")
    assert read_query("行政助理负责什么?").sides is None


def test_the_numbers_are_those_the_bracket_rule_reads() -> None:
    assert read_query("工龄十二年有几天年假？").numbers == (12.0,)
    assert read_query("工龄３年年假几天").numbers == (3.0,)  # width folded
    assert read_query("迟到90分钟扣多少钱?").numbers == (90.0,)
    # 一个半 is no bracket number: a lone 一 is rarely a quantity asked about.
    late = read_query("迟到一个半小时扣多少钱?")
    assert late.numbers == ()
    assert {"迟到", "小时"} <= late.content and "一个半" in late.words


def test_list_and_opinion_questions_are_told_apart() -> None:
    duties = read_query("行政助理每天要做哪些事?")
    assert (duties.asks_list, duties.asks_opinion, duties.kind) == (True, False, "list")
    opinion = read_query("你觉得做行政助理好不好?")
    assert (opinion.asks_list, opinion.asks_opinion, opinion.kind) == (False, True, "opinion")
    both = read_query("你觉得有哪些好的做法?")  # both rules hold, as both are applied
    assert both.asks_list and both.asks_opinion and both.kind == "list"


def test_a_follow_up_is_completed_from_the_conversation() -> None:
    other = read_query("那行政助理呢?", [DIRECTOR])
    assert other.typed == "那行政助理呢?"
    assert other.text == "行政助理的直接上级是谁?"
    assert other.searched == "行政助理的直接上级是谁"
    assert other.shift == ("办公室主任", "行政助理")
    assert other.earlier == (DIRECTOR,)
    assert "行政助理" in other.telling and "办公室" not in other.words
    same = read_query("它的职责有哪些?", [DIRECTOR])
    assert same.text == "办公室主任的职责有哪些?"
    assert same.shift is None and same.kind == "list"
    assert read_query("那行政助理呢?").text == "那行政助理呢?"  # nothing to complete from


@pytest.mark.parametrize(
    "question",
    [
        "办公室主任的直接上级是谁?",
        "辦公室主任的直接上級是誰？",
        "工龄十二年有几天年假 ~",
        "What is version 1.2.",  # jieba joins "." to a number: the searched text is cut alone
        "  v2. ",
        "年假...",
        "迟到一个半小时扣多少钱?",
    ],
)
def test_the_fields_are_what_the_rules_give(question: str) -> None:
    """Derived once, each field is what the rule it replaces gave when asked again."""
    query = read_query(question)
    stripped = question.strip()
    assert query.searched == search_text(stripped)
    assert list(query.words) == tokenize(query.text)
    assert query.content == content_words(query.text)
    assert query.telling == telling_words(search_text(stripped))
    assert list(query.numbers) == numbers_in(query.text)
    assert query.sides == compared(search_text(stripped))
    assert query.asks_list == asks_list(query.text)
    assert query.asks_opinion == asks_opinion(query.text)


@pytest.mark.parametrize("question", ["", "   ", "问" * 1001, "\ud800办公室"])
def test_a_question_that_cannot_be_searched_is_refused(question: str) -> None:
    with pytest.raises(QuestionError):
        read_query(question)


def test_a_query_is_taken_as_it_is() -> None:
    query = read_query("那行政助理呢?", [DIRECTOR])
    assert as_query(query) is query
    assert as_query(DIRECTOR) == read_query(DIRECTOR)


def test_ask_reads_the_question_once_and_every_stage_gets_that_query(
    small_corpus: Path, tmp_path: Path, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retriever.search as search_module

    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    answerer = Answerer(hashing_embedder, AnswerCheck(hashing_embedder, tmp_path, None))
    engine = Retriever.load(index, embedder=hashing_embedder, answerer=answerer)
    read: list[Query] = []

    def reading(question: str, earlier=()) -> Query:
        read.append(query := read_query(question, earlier))
        return query

    monkeypatch.setattr(search_module, "read_query", reading)
    answered: list[Query] = []
    answer = answerer.answer

    def answering(query: Query, *args):
        answered.append(query)
        return answer(query, *args)

    monkeypatch.setattr(answerer, "answer", answering)
    asked = engine.ask("那行政主管呢?", earlier=["办公室主任和行政助理哪个大?"])
    assert len(read) == 1 and answered == read
    assert asked.question == read[0].text
    searched = engine.searched("办公室主任和行政主管哪个大?")
    assert searched.query is read[-1] and searched.sides is not None
    assert [side.text for side in searched.sides] == ["办公室主任", "行政主管"]
    assert engine.search(DIRECTOR) == engine.search(read_query(DIRECTOR))
