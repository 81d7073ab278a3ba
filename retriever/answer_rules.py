"""What makes an extracted answer one a person accepts, beyond being close in meaning.

- An opinion (我认为…, 至少我是这样认为的) does not answer a factual question.
- A number question (工龄十二年有几天年假) is answered by the bracket its number falls in
  (满10年不满20年), not by the bracket above or below, which reads almost the same.
- A list question (职责有哪些) gets the whole numbered list its best item belongs to, not the
  two or three items that happen to score highest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from retriever.text import normalize
from retriever.words import posseg

_OPINION = re.compile(
    r"我认为|我覺得|我觉得|我是这样认为|我是這樣認為|个人认为|個人認為|个人觉得|個人覺得|"
    r"在我看来|在我看來|依我看|我个人|我個人|笔者认为|筆者認為|本人认为|本人認為|我想说|我感觉"
)
_ASKS_OPINION = re.compile(
    r"你觉得|你覺得|你认为|你認為|怎么看|怎麼看|建议|建議|推荐|推薦|值不值|好不好|哪个好|哪個好"
)
_LIST_QUESTION = re.compile(
    r"哪些|哪几|哪幾|有什么|有什麼|有何|包括|包含|几种|幾種|几类|幾類|几个方面|幾個方面|几条|"
    r"幾條|几点|幾點|几步|幾步|分几|分幾|列举|列舉|都有|步骤|步驟|流程|\bwhat are\b|\bwhich\b|"
    r"\blist\b|\bsteps\b"
)
# A numbered item at the start of a line: 1、 2. (3) （四） 五、 ⑥ or a bullet.
_ITEM = re.compile(
    r"^\s*(?:\d{1,2}\s*[、.．)）]|[（(]\s*[\d一二三四五六七八九十]{1,3}\s*[)）]|"
    r"[一二三四五六七八九十]{1,3}\s*、|[①-⑳]|[-*•·]\s)"
)
MAX_LIST_ITEMS = 20
# A table row as the readers write it (retriever.readers): two or more 列：值 pairs
# joined by ；, each column name short.
_ROW = re.compile(r"^[^：；\n]{1,20}：[^；\n]*(?:；[^：；\n]{1,20}：[^；\n]*)+$")

_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2, "兩": 2}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_NUMBER = re.compile(r"[零一二两兩三四五六七八九十百千]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UPTO = r"(?:不满|不滿|不足|未满|未滿|至|到|~|～|-|–|—)"
_RANGE = re.compile(rf"(\d+(?:\.\d+)?)\D{{0,3}}?{_UPTO}\s*(\d+(?:\.\d+)?)")
_AT_LEAST = re.compile(
    r"(?<![不未])(?:满|滿|超过|超過)?(\d+(?:\.\d+)?)\D{0,3}?(?:及以上|以上|或以上|起)"
)
_FROM = re.compile(r"(?<![不未])(?:满|滿)(\d+(?:\.\d+)?)(?!\d)")
_BELOW = re.compile(r"(?:不满|不滿|不足|未满|未滿|少于|少於|低于|低於)(\d+(?:\.\d+)?)")


def is_opinion(sentence: str) -> bool:
    return bool(_OPINION.search(sentence))


def asks_opinion(question: str) -> bool:
    return bool(_ASKS_OPINION.search(question))


def asks_list(question: str) -> bool:
    return bool(_LIST_QUESTION.search(question.lower()))


def is_item(line: str) -> bool:
    return bool(_ITEM.match(line))


def is_row(line: str) -> bool:
    return bool(_ROW.match(line))


# Word classes (jieba's tags) that open a sentence whose subject is in the sentence before:
# a preposition (对/由/按…), a conjunction (并/但/而…), an adverb (也/还/则…); and pronouns
# that point back (其/该/此).
_DEPENDENT_OPENERS = ("p", "c", "d")
_POINTING_BACK = frozenset("其该此它")


def needs_subject(sentence: str) -> bool:
    """Whether a sentence opens without saying what it speaks of, so that quoted alone it
    reads as a fragment: 对所分管的工作全面负责。 A list item or a row says it itself."""
    if is_item(sentence) or is_row(sentence):
        return False
    first = next(iter(posseg().cut(sentence.strip())), None)
    if first is None:
        return False
    return first.flag.startswith(_DEPENDENT_OPENERS) or first.word in _POINTING_BACK


def _chinese_to_int(text: str) -> int | None:
    """十二 → 12, 二十五 → 25, 一百零八 → 108; None if it is not a plain numeral."""
    total, digit = 0, None
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
        elif char in _UNITS:
            total += (1 if digit is None else digit) * _UNITS[char]
            digit = None
        else:
            return None
    return total + (digit or 0)


def numbers_in(question: str) -> list[float]:
    """The numbers a question names, Arabic (after width folding) or Chinese numerals."""
    return read_numbers(normalize(question))


def read_numbers(text: str) -> list[float]:
    """numbers_in's numbers of a text already normalised (retriever.query)."""
    found = [float(n) for n in _NUMBER.findall(text)]
    for numeral in _CHINESE_NUMBER.findall(text):
        value = _chinese_to_int(numeral)
        if value is not None and (len(numeral) > 1 or value >= 2):
            found.append(float(value))
    return found


@dataclass(frozen=True)
class Bracket:
    low: float  # inclusive
    high: float  # exclusive

    def holds(self, value: float) -> bool:
        return self.low <= value < self.high


def brackets_in(sentence: str) -> list[Bracket]:
    """The ranges a sentence states: 满1年不满10年, 12至22公里, 20年及以上, 不满1年, 满3年."""
    text = normalize(sentence)
    found = [Bracket(float(a), float(b)) for a, b in _RANGE.findall(text) if float(a) < float(b)]
    # The open-ended forms are read in what the ranges leave: 不满10年 in 满1年不满10年 is the
    # end of a range, not a bracket of its own.
    rest = _RANGE.sub(" ", text)
    found += [Bracket(float(a), math.inf) for a in _AT_LEAST.findall(rest)]
    found += [Bracket(float(a), math.inf) for a in _FROM.findall(rest)]
    found += [Bracket(-math.inf, float(b)) for b in _BELOW.findall(rest)]
    return found


def bracket_fit(numbers: list[float], sentence: str) -> int:
    """+1 when a bracket of the sentence holds a number of the question, -1 when the sentence
    states brackets and none holds any, 0 when it states none (or the question no number)."""
    if not numbers:
        return 0
    brackets = brackets_in(sentence)
    if not brackets:
        return 0
    return 1 if any(b.holds(n) for b in brackets for n in numbers) else -1
