"""bench.officedocs's pure parts: gold matching, judging one question, and the summary.

No model and no index: the outcomes are made from texts, as `evaluate` makes them from an
answer. The sets themselves are checked by their own check.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.officedocs import (
    DATASETS,
    SETS,
    Question,
    breakdown,
    holds,
    judge,
    load_questions,
    report,
    summary,
    texts_hold,
)


def _question(kind="row", gold=(("婚假", "3天"),), need="any", answerable=True) -> Question:
    return Question(
        id=f"t-{kind}",
        text="婚假几天",
        kind=kind,
        lang="zh",
        history=[],
        gold=[list(alternative) for alternative in gold],
        need=need,
        answerable=answerable,
        document="leave_policy.docx" if answerable else None,
    )


def test_holds_ignores_whitespace_width_and_radicals() -> None:
    assert holds("婚假 | 3 天 | 全额发放", ["婚假", "3天"])
    assert holds("5000 元（含）至5 万元", ["5000元(含)至5万元"])
    assert holds("第 1 ⻚ ⻘⽲科技", ["第1页", "青禾科技"])
    assert holds("QH-Guest 前台领取的临时密码", ["qh-guest"])
    assert not holds("婚假 | 全额发放", ["婚假", "3天"])  # every fragment is needed


def test_texts_hold_any_and_all() -> None:
    gold = [["婚假", "3天"], ["陪产假", "15天"]]
    passages = ["婚假 3天 全额发放", "丧假 直系亲属3天"]
    assert texts_hold(passages, gold, "any")
    assert not texts_hold(passages, gold, "all")
    assert texts_hold([*passages, "陪产假 15天"], gold, "all")
    # an alternative's fragments must be in one passage, not spread over two
    assert not texts_hold(["婚假 全额发放", "3天"], [["婚假", "3天"]], "any")
    assert not texts_hold(["anything"], [], "any")


def test_judge_needs_found_for_the_answer_but_not_for_sources() -> None:
    question = _question()
    refused = judge(
        question,
        "婚假几天",
        found=False,
        quotes=["婚假 3天"],
        ranked_passages=["丧假 3天", "事假", "婚假 3天 全额发放", "婚假 3天"],
        milliseconds=12.0,
    )
    assert not refused.answer_holds and refused.top3
    late = judge(
        question,
        "婚假几天",
        found=True,
        quotes=["今年婚", "假3天"],  # a fragment never spans two quotes
        ranked_passages=["丧假", "事假", "年假", "婚假 3天"],
        milliseconds=5.0,
    )
    assert not late.answer_holds and not late.top3  # the holding passage is 4th
    across = judge(
        question,
        "婚假几天",
        found=True,
        quotes=["婚假", "3天"],
        ranked_passages=[],
        milliseconds=1.0,
    )
    assert across.answer_holds  # the answer's quotes are one text: fragments may be in two


def test_summary_and_breakdown() -> None:
    row = _question()
    listing = _question(kind="list", gold=(("婚假",), ("陪产假",)), need="all")
    ontopic = _question(kind="unanswerable", gold=(), answerable=False)
    offtopic = _question(kind="offtopic", gold=(), answerable=False)
    outcomes = [
        judge(
            row,
            "q",
            found=True,
            quotes=["婚假：3天"],
            ranked_passages=["婚假 3天"],
            milliseconds=10.0,
        ),
        judge(
            listing,
            "q",
            found=True,
            quotes=["婚假"],
            ranked_passages=["婚假", "陪产假"],
            milliseconds=30.0,
        ),
        judge(ontopic, "q", found=False, quotes=[], ranked_passages=["婚假"], milliseconds=20.0),
        judge(offtopic, "q", found=True, quotes=["x"], ranked_passages=[], milliseconds=40.0),
    ]
    figures = summary(outcomes)
    assert figures["questions"] == 4 and figures["answerable"] == 2
    assert figures["answer_holds"] == 0.5  # the list answer quotes one of two items
    assert figures["top3"] == 1.0 and figures["answered"] == 1.0
    assert figures["refused_ontopic"] == 1.0 and figures["refused_offtopic"] == 0.0
    assert figures["refused"] == 0.5 and figures["median_ms"] == 25
    kinds = breakdown(outcomes, "kind")
    assert list(kinds) == ["row", "list", "unanswerable", "offtopic"]
    assert kinds["unanswerable"]["answer_holds"] is None
    text = report("toy", outcomes, documents=1, cpu="cpu", peers={"p": 0.5}, chunks={"p": 3})
    assert "| answer holds the gold | 0.500 | 2 |" in text
    assert "| kind=unanswerable | 1 | — | — | — | 1.000 |" in text
    assert "| p | 0.500 | 3 |" in text


@pytest.mark.parametrize("name", SETS)
def test_the_sets_load(name: str) -> None:
    questions = load_questions(DATASETS / name)
    assert questions and all(isinstance(q.gold, list) for q in questions)
    assert all((q.need == "all") == (q.kind in ("list", "comparison")) for q in questions)
    assert Path(DATASETS / name / "documents").is_dir()
