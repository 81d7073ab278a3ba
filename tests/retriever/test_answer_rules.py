"""Answers a person accepts: opinions, brackets, whole lists and comparisons (unit level);
the example questions of the page and README, answered right by the real model."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from conftest import ROOT

from retriever.answer_rules import (
    Bracket,
    asks_list,
    asks_opinion,
    bracket_fit,
    brackets_in,
    is_item,
    is_opinion,
    is_row,
    needs_subject,
    numbers_in,
)
from retriever.followup import complete_followup
from retriever.query import compared
from retriever.search import Retriever

LEAVE_ROWS = [
    "工龄不满1年：不享受法定年休假；",
    "工龄满1年不满10年：年休假5天；",
    "工龄满10年不满20年：年休假10天；",
    "工龄满20年及以上：年休假15天。",
]


@pytest.mark.parametrize(
    ("question", "row"),
    [("工龄十二年有几天年假?", 2), ("工龄３年年假几天", 1), ("工齡二十五年年假有幾天", 3)],
)
def test_a_number_fits_only_its_own_bracket(question: str, row: int) -> None:
    numbers = numbers_in(question)
    fits = [bracket_fit(numbers, line) for line in LEAVE_ROWS]
    assert fits == [1 if i == row else -1 for i in range(len(LEAVE_ROWS))]


def test_brackets_are_read_in_their_usual_forms() -> None:
    assert brackets_in("12至22公里4元") == [Bracket(12, 22)]
    assert brackets_in("工龄不满1年") == [Bracket(-math.inf, 1)]
    assert Bracket(3, math.inf) in brackets_in("连续工作满3年的，每年增加1天")
    assert bracket_fit([15.0], "没有范围的句子。") == 0
    assert bracket_fit([], LEAVE_ROWS[1]) == 0


def test_chinese_numerals_are_read() -> None:
    assert numbers_in("工龄十二年") == [12.0]
    assert numbers_in("一百零八将") == [108.0]
    assert numbers_in("二十五年") == [25.0]
    assert numbers_in("一个人") == []  # 一 alone is rarely a quantity asked about


def test_opinions_and_the_questions_that_ask_for_them() -> None:
    assert is_opinion("如果是外企就更高了。至少我是这样认为的。")
    assert is_opinion("我觉得这份工作很累")
    assert not is_opinion("行政助理是隶属行政人事部门。")
    assert asks_opinion("你觉得做行政助理好不好?")
    assert not asks_opinion("行政助理每天要做哪些事?")


def test_list_questions_and_items() -> None:
    assert asks_list("行政助理每天要做哪些事?") and asks_list("它的职责包括什么")
    assert not asks_list("办公室主任的直接上级是谁")
    for line in ("1、负责员工的考勤", "（二）发票原件", "三、审批", "(4) 步骤", "⑤ 检查"):
        assert is_item(line), line
    assert not is_item("2017年好书排行榜")


def test_table_rows_as_the_readers_write_them() -> None:
    assert is_row("假别：婚假；天数：3天；工资：全额发放")
    assert is_row("城市：北京、上海；住宿标准：600元/晚")
    for line in (
        "注意：请假须提前申请。",
        "假别：婚假",
        "行政助理的职能是管理人事行政基础行政事务工作",
    ):
        assert not is_row(line), line


@pytest.mark.parametrize(
    ("question", "sides"),
    [
        ("办公室主任和行政主管哪个大?", ("办公室主任", "行政主管")),
        ("行政助理和行政专员有什么区别?", ("行政助理", "行政专员")),
        ("请问办公室主任与行政助理有何不同", ("办公室主任", "行政助理")),
        ("秈稻和粳稻有什麼區別", ("秈稻", "粳稻")),
        ("澄海大學和臺大圖書館哪個可以借比較多本", ("澄海大學", "臺大圖書館")),
        ("办公室主任和行政助理的职责", None),
        ("行政助理每天要做哪些事?", None),
    ],
)
def test_comparisons_and_their_sides(question: str, sides) -> None:
    assert compared(question) == sides


# Each example a user is shown (the page's buttons, the README), with what a right answer
# holds and what it must not.
EXAMPLE_ANSWERS = {
    "办公室主任和行政主管哪个大?": ("在没有特定公司的前提下,根本无法进行比较", None),
    "行政助理每天要做哪些事?": ("8、负责办公用品采购计划", "至少我是这样认为的"),
    "办公室主任为什么适合给领导当参谋?": ("参谋", None),
    "辦公室主任的直接上級是誰？": ("直接上级是公司高层总经理或副总", None),
}


def _page_examples() -> list[str]:
    from web.server import EXAMPLES  # importing it builds nothing: create_app does

    return EXAMPLES


def test_every_example_a_user_is_shown_is_checked() -> None:
    examples = _page_examples()
    assert len(examples) >= 3
    readme = (ROOT / "README.md").read_text("utf-8")
    in_readme = set(re.findall(r'ask\("([^"]+)"\)|retriever ask "([^"]+)"', readme))
    in_readme = {a or b for a, b in in_readme}
    assert set(examples) | in_readme <= EXAMPLE_ANSWERS.keys()


@pytest.mark.model
@pytest.mark.parametrize("question", EXAMPLE_ANSWERS)
def test_the_examples_are_answered_right(real_retriever: Retriever, question: str) -> None:
    holds, never = EXAMPLE_ANSWERS[question]
    answer = real_retriever.ask(question)
    assert answer.found and holds in answer.answer, answer.answer
    assert never is None or never not in answer.answer, answer.answer


@pytest.mark.model
def test_a_list_question_gets_the_whole_list(real_retriever: Retriever) -> None:
    answer = real_retriever.ask(complete_followup("它的职责有哪些?", ["行政助理是做什么的"]))
    for item in range(1, 9):
        assert f"{item}、" in answer.answer, answer.answer
    # One item a line, each with its marker, and nothing added to what is quoted.
    lines = answer.answer.split("\n")
    assert len(lines) == 8 and all(re.fullmatch(r"\d、.+\[\d\]", line) for line in lines)
    assert all(quote.text in answer.answer for c in answer.citations for quote in c.quotes)


@pytest.mark.model
def test_a_follow_up_about_another_subject_is_answered_of_it_only(
    real_retriever: Retriever,
) -> None:
    answer = real_retriever.ask("那行政助理呢?", earlier=["办公室主任和行政主管哪个大?"])
    assert answer.question == "行政助理和行政主管哪个大?" and answer.found
    quoted = [quote.text for citation in answer.citations for quote in citation.quotes]
    assert any("行政助理" in text for text in quoted), answer.answer
    assert not any("办公室主任" in text and "行政助理" not in text for text in quoted), quoted


@pytest.mark.model
def test_a_comparison_with_a_side_the_corpus_lacks_says_so(real_retriever: Retriever) -> None:
    answer = real_retriever.ask("行政助理和董事会秘书哪个级别高?")
    assert not answer.found
    assert "董事会秘书" in answer.answer and "[1]" not in answer.answer


@pytest.mark.model
def test_a_number_question_is_answered_from_its_bracket(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = "\n".join(f"- {row}" for row in LEAVE_ROWS)
    handbook = (
        "# 员工手册\n\n## 年休假\n\n员工累计工作已满1年的，享受带薪年休假。年休假天数根据"
        f"员工累计工作年限（工龄）确定：\n\n{rows}\n\n## 病假\n\n病假须提供医院证明。\n"
    )
    (corpus / "handbook.md").write_text(handbook, encoding="utf-8")
    Retriever.build(corpus, tmp_path / "index")
    retriever = Retriever.load(tmp_path / "index")
    answer = retriever.ask("工龄十二年有几天年假?")
    assert "满10年不满20年" in answer.answer, answer.answer
    assert "满1年不满10年" not in answer.answer, answer.answer


def test_an_answer_quotes_a_table_row_whole() -> None:
    from retriever.quoting import answer_units

    text = "请假规定如下。\n假别：婚假；天数：3天；工资：全额发放\n婚假须一次休完；不得拆分。"
    units = [text[span.start : span.end] for span in answer_units(text)]
    assert units == [
        "请假规定如下。",
        "假别：婚假；天数：3天；工资：全额发放",
        "婚假须一次休完；",
        "不得拆分。",
    ]


def test_sentences_that_open_without_their_subject() -> None:
    for sentence in ("对所分管的工作全面负责。", "并在部门内做一次分享。", "由人力资源部审批。"):
        assert needs_subject(sentence), sentence
    for sentence in ("行政助理是隶属行政人事部门", "1. 提交申请", "假别：婚假；天数：3天"):
        assert not needs_subject(sentence), sentence


@pytest.mark.model
def test_no_quote_reads_as_a_fragment(real_retriever: Retriever) -> None:
    answer = real_retriever.ask("办公室主任和行政主管哪个大?")
    quotes = [quote.text for citation in answer.citations for quote in citation.quotes]
    assert any("对所分管的工作全面负责" in quote for quote in quotes), answer.answer
    assert not any(needs_subject(quote) for quote in quotes), quotes
