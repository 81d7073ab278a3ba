"""Surface form does not change the result: trailing punctuation or spaces, traditional or
simplified characters, full- or half-width forms.

Searching is deterministic for a given search text (one question is embedded alone, in a
batch of its own), so the first test checks over 2,000 evaluation questions that every
variant gives the very same search text; the second runs variants through the real model
and index and compares the top passage and `found`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

import pytest
from conftest import ROOT

from retriever.query import search_text


@cache
def _converter(config: str):
    import opencc

    return opencc.OpenCC(config)


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def half_width(text: str) -> str:
    return "".join(chr(ord(ch) - 0xFEE0) if "！" <= ch <= "～" else ch for ch in text)


VARIANTS: dict[str, Callable[[str], str]] = {
    "no trailing mark": lambda q: q.rstrip("?？。!！. "),
    "?": lambda q: q.rstrip("?？") + "?",
    "？": lambda q: q.rstrip("?？") + "？",
    "。": lambda q: q.rstrip("?？") + "。",
    "!": lambda q: q.rstrip("?？") + "!",
    "！": lambda q: q.rstrip("?？") + "！",
    "trailing space": lambda q: q + " ",
    "trailing newline": lambda q: q + "\n",
    "traditional": lambda q: _converter("s2t").convert(q),
    "simplified": lambda q: _converter("t2s").convert(q),
    "full width": full_width,
    "half width": half_width,
}


def questions(dataset: str, count: int) -> list[str]:
    path = ROOT / "bench" / "datasets" / dataset / "queries.jsonl"
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:count]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_of_2000_questions_is_searched_as_the_same_text(variant: str) -> None:
    # cmrc2018_dev is simplified, drcd_test traditional: both directions are covered.
    asked = questions("cmrc2018_dev", 1000) + questions("drcd_test", 1000)
    changed = [q for q in asked if search_text(VARIANTS[variant](q)) != search_text(q)]
    assert not changed, changed[:5]


SAMPLE = [
    "办公室主任和行政主管哪个大?",
    "辦公室主任的直接上級是誰？",
    "行政助理每天要做哪些事?",
    "办公室主任为什么适合给领导当参谋?",
    "行政助理需要负责考勤吗",
    "今天天气怎么样？",
]


@pytest.mark.model
@pytest.mark.parametrize("question", SAMPLE)
def test_variants_give_the_same_top_passage_and_found(real_retriever, question: str) -> None:
    def top(answer) -> int:
        return min(answer.citations, key=lambda citation: citation.hit.rank).hit.chunk_id

    expected = real_retriever.ask(question)
    for name, variant in VARIANTS.items():
        answer = real_retriever.ask(variant(question))
        assert (answer.found, top(answer)) == (expected.found, top(expected)), name
