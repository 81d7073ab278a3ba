"""Follow-up questions: complete a short message from the conversation before searching.

These are the rewriting rules of the query stage (retriever.query.read_query, which every
question asked goes through); bench and tests use `complete_followup` on its own.

The retriever answers one self-contained question at a time, so "那行政助理呢?" after
"办公室主任的直接上级是谁?" must become "行政助理的直接上级是谁?" first. The rewrite is a
few explainable rules over jieba's words, applied to each user message in turn, so that a
chain of follow-ups keeps its topic:

1. The *subject* of a question is its words before the first function word (的, 和, 是,
   有, 每天, 为什么, ...): "办公室主任" in "办公室主任的直接上级是谁?".
2. A message that starts with a pronoun (他, 她们, 它, 这个岗位, ...) gets the previous
   question's subject in its place: "它的职责有哪些?" → "办公室主任的职责有哪些?".
3. A message that starts with a predicate, so has no subject of its own ("每天要做什么?",
   "有哪些职责?"), gets the previous subject put in front.
4. A message that starts with 那/那么/还有/另外 or ends with 呢 is an ellipsis: when what is
   left is a bare name ("行政助理"), it replaces the subject in the previous question;
   otherwise the left-over words are searched on their own ("那行政助理的职责呢?" →
   "行政助理的职责").
5. Anything else is a new question and is searched as typed, and so is any message of
   more than 40 characters: follow-ups are short.

When the previous question has no subject (it starts with a question word, as in
"谁负责考勤?"), rules 2-4 have nothing to put in and the message is searched as typed,
less its leading 那.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retriever.config import MAX_QUESTION_CHARS
from retriever.words import load_jieba

# A leading 那 is a connective only when not the demonstrative 那个/那些/那里/...
_CONNECTIVE = re.compile(r"^(?:那么|还有|另外|然后|那(?![个些里边儿天时样种位]))[，,、\s]*")
_PRONOUN = re.compile(r"^(?:[这那该]个?(?:岗位|职位|职务|人)|他们|她们|它们|他|她|它)")
_TRAILING = re.compile(r"[\s?？!！。.,，…~～]+$")
_ELLIPSIS_END = re.compile(r"呢$")
_POLITE_START = ("请问", "我想知道", "想问一下", "问一下", "请教一下", "请教")

# Words that end a subject: particles, conjunctions, verbs of being and having, the adverbs
# that open a predicate, and question words.
_PARTICLES = ("的", "地", "得", "吗", "呢", "吧")
_CONJUNCTIONS = ("和", "与", "跟", "及", "或", "或者", "还是", "比")
_VERBS = ("是", "有", "没有", "要", "想", "在", "能", "会", "可以", "需要", "应该", "负责", "属于")
_ADVERBS = ("每天", "平时", "一般", "通常", "主要", "具体", "究竟", "到底", "都", "也", "还", "就")
_QUESTION_WORDS = (
    "为什么",
    "为何",
    "怎么",
    "怎样",
    "如何",
    "哪",
    "哪个",
    "哪些",
    "什么",
    "谁",
    "几",
)
_FUNCTION_WORDS = frozenset(_PARTICLES + _CONJUNCTIONS + _VERBS + _ADVERBS + _QUESTION_WORDS)
# Words that may open a message whose subject was left out. Question words are not among
# them: "什么是考勤?" is a question of its own, not a follow-up.
_PREDICATE_START = frozenset(("的", *_VERBS, *_ADVERBS))
_PUNCTUATION = re.compile(r"^[\W_]+$")
MAX_FOLLOWUP_CHARS = 40
# Earlier messages a follow-up may draw on: the last 50 (each costs a jieba pass).
MAX_HISTORY = 50


@dataclass(frozen=True)
class FollowUp:
    """A message as it is searched: `question`, completed from the conversation when the
    message is a follow-up; `shift` is (the earlier subject, the new one) when the message
    asked the same of another subject ("那行政助理呢?"), for the answer to leave the earlier
    one out."""

    question: str
    shift: tuple[str, str] | None = None


def follow_up(message: str, earlier: Sequence[str]) -> FollowUp:
    """`message` as it is to be searched, given the user's earlier messages, oldest first.

    Each earlier message is completed in turn, so the topic carries along a chain of
    follow-ups. A completion longer than a question may be is not used: the message is
    searched as typed.
    """
    context: str | None = None
    for previous in earlier:
        if previous.strip():
            context = _complete(previous.strip(), context).question
    if not message.strip():
        return FollowUp(message)
    completed = _complete(message.strip(), context)
    return completed if len(completed.question) <= MAX_QUESTION_CHARS else FollowUp(message)


def complete_followup(message: str, earlier: Sequence[str]) -> str:
    """The question to search for `message` (follow_up's), unchanged when it is not a
    follow-up."""
    return follow_up(message, earlier).question


def subject_of(question: str) -> str:
    """The words of `question` before its first function word or punctuation mark."""
    words = load_jieba().lcut(_strip_polite(question))
    subject = []
    for word in words:
        if word in _FUNCTION_WORDS or _PUNCTUATION.match(word):
            break
        subject.append(word)
    return "".join(subject)


def _complete(message: str, previous: str | None) -> FollowUp:
    """Apply the rules of the module docstring to one message."""
    if previous is None or len(message) > MAX_FOLLOWUP_CHARS:
        return FollowUp(message)
    body, connective = _CONNECTIVE.subn("", message)
    subject = subject_of(previous)
    if not subject:
        return FollowUp(body if connective and body else message)
    pronoun = _PRONOUN.match(body)
    if pronoun:
        return FollowUp(subject + body[pronoun.end() :])
    words = load_jieba().lcut(body)
    if words and words[0] in _PREDICATE_START:
        return FollowUp(subject + body)
    stripped = _TRAILING.sub("", body)
    core = _ELLIPSIS_END.sub("", stripped)
    is_ellipsis = bool(connective) or core != stripped
    if not is_ellipsis or not core:
        return FollowUp(message)
    if any(word in _FUNCTION_WORDS for word in load_jieba().lcut(core)):
        return FollowUp(core)
    return FollowUp(previous.replace(subject, core, 1), (subject, core))


def _strip_polite(question: str) -> str:
    for opener in _POLITE_START:
        if question.startswith(opener):
            return question[len(opener) :].lstrip("，, ")
    return question
