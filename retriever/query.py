"""The query stage: a question (and the conversation before it) read once into a typed Query.

Every later stage reads what it needs of the question from the Query instead of deriving it
again: the search its searched text and words (retriever.searcher), the comparison its sides
(retriever.comparison), the answer check its words and normalised text
(retriever.answerability), the answerer its words, numbers, sides, whether it asks for a
list or an opinion and a follow-up's change of subject (retriever.answer). `read_query`
builds it:

1. A follow-up ("那行政助理呢?") is completed from the earlier questions
   (retriever.followup's rules), and the completed question is checked (check_question).
2. It is normalised once (retriever.text.normalize) and cut into words once
   (retriever.words); the searched text, its trailing marks dropped (search_text), shares
   those words whenever jieba cuts the dropped marks apart, which it does for all but ".".
3. The rules that read the question's form run once each: its numbers and whether it asks
   for a list or an opinion (retriever.answer_rules), and the two sides it compares
   (`compared`); `Query.kind` names the shape of answer they ask for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retriever.answer_rules import asks_list, asks_opinion, read_numbers
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import follow_up
from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.text import normalize
from retriever.words import cut, telling

# After NFKC, full-width ？！．～ are ? ! . ~; 。 and … stay as they are.
_TRAILING_MARKS = re.compile(r"[\s?!.。…~]+$")


class QuestionError(ValueError):
    """A question that cannot be searched (empty, too long, not text); the message says why."""


@dataclass(frozen=True)
class Query:
    """A question as every stage after the query stage reads it."""

    typed: str  # the message as the user typed it
    text: str  # completed from the conversation if it was a follow-up: what is answered
    normalized: str  # text, normalised (retriever.text.normalize)
    searched: str  # what the backends search and the model embeds (search_text)
    words: tuple[str, ...]  # jieba's search-mode words of `normalized`, punctuation dropped
    content: frozenset[str]  # the words less function words (retriever.stopwords_zh)
    telling: frozenset[str]  # the content words of `searched` that tell passages apart
    numbers: tuple[float, ...]  # the numbers it names (answer_rules.read_numbers)
    sides: tuple[str, str] | None  # the two sides it compares, as searched, or None
    asks_list: bool  # 职责有哪些: answered by a whole list (answer_rules.asks_list)
    asks_opinion: bool  # 你觉得…: opinions may answer it (answer_rules.asks_opinion)
    shift: tuple[str, str] | None = None  # a follow-up's earlier and new subjects
    earlier: tuple[str, ...] = ()  # the conversation's earlier questions, oldest first

    @property
    def kind(self) -> str:
        """What the answer is shaped as: "comparison", "list", "opinion" or "plain"."""
        if self.sides is not None:
            return "comparison"
        return "list" if self.asks_list else "opinion" if self.asks_opinion else "plain"


def read_query(question: str, earlier: Sequence[str] = ()) -> Query:
    """The Query of `question`, completed from `earlier` (the user's earlier questions, oldest
    first) if it is a follow-up. Raises QuestionError for a question that cannot be searched."""
    followed = follow_up(question, earlier)
    text = followed.question
    checked = check_question(text)
    normalized = normalize(text)
    searched = _searched(normalized if checked == text else normalize(checked))
    words = tuple(cut(normalized))
    # jieba cuts the marks search_text drops apart from the words before them, except ".",
    # which it joins to a Latin word or number: then the searched text is cut on its own.
    dropped = normalized[len(searched) :] if normalized.startswith(searched) else "."
    searched_words = words if "." not in dropped else tuple(cut(searched))
    return Query(
        typed=question,
        text=text,
        normalized=normalized,
        searched=searched,
        words=words,
        content=frozenset(words) - STOPWORDS_ZH,
        telling=frozenset(telling(set(searched_words) - STOPWORDS_ZH)),
        numbers=tuple(read_numbers(normalized)),
        sides=compared(searched),
        asks_list=asks_list(text),
        asks_opinion=asks_opinion(text),
        shift=followed.shift,
        earlier=tuple(earlier),
    )


def as_query(question: str | Query) -> Query:
    """A Query as it is, a plain question read as one without a conversation."""
    return question if isinstance(question, Query) else read_query(question)


def search_text(question: str) -> str:
    """What is searched for a question: its normalised form (retriever.text.normalize) less
    trailing punctuation and spaces, so that 谁？, 谁? and 谁 find the same passages.

    The model reads a question mark as part of the question (辦公室主任的直接上級是誰？ ranked
    a passage about 上级领导机关交办事情 first, without the mark the right one), so the mark
    the user typed must not decide. Without it, hybrid figures on the three evaluation sets
    stayed within 0.005 of those with the marks as typed; always adding one cost dureader_demo
    0.009 of hybrid R@1, and averaging the two forms' vectors 0.014 of its R@10.
    """
    return _searched(normalize(question))


def _searched(normalized: str) -> str:
    return _TRAILING_MARKS.sub("", normalized) or normalized


def check_question(question: str) -> str:
    """Refuse questions that cannot be searched, with a message a user can act on."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is "
            f"{MAX_QUESTION_CHARS}: ask about one thing at a time"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate: JSON's "\ud800" escape, or bytes that are not UTF-8 on a command
        # line (Python keeps them as surrogates). The text libraries downstream fail on it.
        raise QuestionError(
            f"the question is not valid Unicode text (character {error.start + 1} is a lone "
            "surrogate, such as bytes that are not UTF-8 become): send it as UTF-8 text"
        ) from None
    return question.strip()


# X和Y / X与Y / X跟Y / X同Y, then what is asked about them. Sides are short noun phrases: a
# "和" inside a long clause is rarely a comparison.
_COMPARED = re.compile(
    r"(?P<x>[^，,。？?！!；;和与跟同]{1,20}?)(?:和|与|跟|同|vs\.?|VS)(?P<y>[^，,。？?！!；;和与跟同]{1,20}?)"
    r"(?:的|之间)?(?:哪个|哪個|哪一个|哪一個|哪種|哪种|谁|誰|有什么|有什麼|有何|的区别|的區別|区别|區別|"
    r"不同|差别|差別|比较|比較|相比|一样|一樣|更)"
)
_LEAD = re.compile(r"^(?:请问|請問|想问|想問|问一下|那么|那麼)")


def compared(question: str) -> tuple[str, str] | None:
    """The two sides a question compares (X和Y哪个大), as written, or None if it compares
    nothing; retriever.comparison finds the passages that speak of each."""
    match = _COMPARED.search(question.strip())
    if match is None:
        return None
    x = _LEAD.sub("", match["x"].strip())
    y = match["y"].strip()
    return (x, y) if x and y and x != y else None
