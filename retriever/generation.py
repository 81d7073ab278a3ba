"""Generated answers: a model server that speaks OpenAI's chat-completions protocol (Ollama,
vLLM, llama.cpp's server, Xinference, a hosted model) writes the answer from the passages
the extractive answer cites, and every sentence it writes is checked against them.

Off unless configured (`GenerationSettings`). The model sees the question, the earlier
questions of a follow-up, and the passages numbered as the extractive answer numbers its
citations, with instructions in Chinese to answer only from them and to cite each sentence
with [n]. A sentence is kept only if it cites a passage that exists and every number, date,
amount and quoted name in it occurs in a passage it cites (`check_sentences`). When the
documents do not answer, nothing is generated; when the server fails, times out, returns
nothing, or too little survives the check, the extractive answer stands, and the answer
says which it is and why (`Answer.kind`, `Answer.fallback`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import openai

from retriever.answer import Answer, Answering, Citation
from retriever.answerability import AnswerCheck
from retriever.comparison import Side
from retriever.config import GenerationSettings
from retriever.query import Query
from retriever.search import Searched
from retriever.searcher import Candidates, Hit

# What the model is told, in Chinese: the product's promise is that every claim is checked.
INSTRUCTIONS = (
    "你是严谨的文档问答助手。只根据下面编号的资料回答用户的问题，不要使用资料以外的知识。"
    "每一句话后面用 [编号] 标出它依据的资料，例如 [1] 或 [1][2]；数字、日期、金额和名称"
    "要与资料一致。如果资料不能回答这个问题，就只回答：资料中没有找到答案。回答用中文，简洁。"
)
NOT_ANSWERED = "资料中没有找到答案"
# Less than this share of the generated sentences surviving the check, or no sentence at all,
# and the extractive answer is shown instead: a model that cites badly is not trusted.
MIN_KEPT_SHARE = 0.5
# Markers as models write them: [1], ［1］, 【1】, [1,2], [1、2], [1][2].
_MARKER = re.compile(r"[\[［【]\s*(\d{1,3}(?:\s*[,，、;；]\s*\d{1,3})*)\s*[\]］】]")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|\n+")
# The facts a sentence may not invent: numbers (with their decimal point, a date's parts and
# a percent), and names quoted in Chinese or Western quotation marks or book-title marks.
_NUMBER = re.compile(r"\d+(?:[.,，]\d+)*%?")
_QUOTED = re.compile(r"[「『“\"《]([^」』”\"》]{1,40})[」』”\"》]")


class GenerationFailed(RuntimeError):
    """The server failed, timed out or sent nothing; the message says which, in Chinese."""


@dataclass(frozen=True)
class Dropped:
    """A generated sentence the check removed, and why (in Chinese)."""

    sentence: str
    why: str


@dataclass(frozen=True)
class Checked:
    kept: list[str]
    dropped: list[Dropped]


def normalise_markers(text: str) -> str:
    """Every citation marker written as [n] (【1】 → [1], [1,2] → [1][2])."""

    def plain(match: re.Match[str]) -> str:
        return "".join(f"[{n}]" for n in re.findall(r"\d+", match.group(1)))

    return _MARKER.sub(plain, text)


def messages_for(
    question: str, citations: Sequence[Citation], earlier: Sequence[str] = ()
) -> list[dict[str, str]]:
    """The chat the model is sent: the instructions, the numbered passages, the earlier
    questions of the conversation and the question (a follow-up's completed from them:
    retriever.followup)."""
    passages = "\n\n".join(
        f"[{citation.number}] 《{citation.hit.title or citation.hit.source}》"
        f"{(' ' + citation.hit.heading) if citation.hit.heading else ''}\n{citation.hit.text}"
        for citation in citations
    )
    asked = "".join(f"之前问过：{text}\n" for text in earlier)
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"资料：\n{passages}\n\n{asked}问题：{question}"},
    ]


def check_sentences(text: str, citations: Sequence[Citation]) -> Checked:
    """Keep the sentences of `text` that cite existing passages and invent no number, date,
    amount or quoted name that the passages they cite do not hold."""
    passages = {citation.number: citation.hit.text for citation in citations}
    kept: list[str] = []
    dropped: list[Dropped] = []
    for sentence in _sentences(normalise_markers(text)):
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        claim = re.sub(r"\[\d+\]", "", sentence)
        if not numbers:
            dropped.append(Dropped(sentence, "没有标出依据的资料"))
            continue
        missing = sorted({n for n in numbers if n not in passages})
        if missing:
            shown = "、".join(f"[{n}]" for n in missing)
            dropped.append(Dropped(sentence, f"引用了不存在的资料 {shown}"))
            continue
        cited = "\n".join(passages[n] for n in dict.fromkeys(numbers))
        invented = _invented(claim, cited)
        if invented:
            dropped.append(Dropped(sentence, f"「{invented}」不在所引资料中"))
            continue
        kept.append(sentence)
    return Checked(kept, dropped)


def _sentences(text: str) -> list[str]:
    """The sentences of a generated answer, each with the markers that follow it."""
    pieces = [piece.strip() for piece in _SENTENCE_END.split(text)]
    sentences: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        # Markers written after the full stop belong to the sentence before them.
        leading = re.match(r"^(?:\[\d+\])+", piece)
        if leading and sentences:
            sentences[-1] += leading.group(0)
            piece = piece[leading.end() :].strip()
        if piece:
            sentences.append(piece)
    return sentences


def _invented(claim: str, cited: str) -> str | None:
    """The first number or quoted name of `claim` that `cited` does not hold."""
    compact = re.sub(r"\s+", "", cited)
    for number in _NUMBER.findall(claim):
        if number.rstrip("%") not in compact:
            return number
    for name in _QUOTED.findall(claim):
        if re.sub(r"\s+", "", name) not in compact:
            return name
    return None


class ModelServer:
    """An OpenAI-compatible chat-completions server, streamed, through the openai client."""

    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "none",  # local servers take any key
            # The read timeout bounds the wait for the first piece and between pieces.
            timeout=openai.Timeout(settings.timeout, read=settings.first_token_timeout),
            max_retries=0,
        )

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The answer's text, piece by piece as the server sends it. Raises
        GenerationFailed when the server fails or the answer takes too long."""
        deadline = time.monotonic() + self.settings.timeout
        try:
            chunks = self._client.chat.completions.create(
                model=self.settings.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self.settings.max_tokens,
                temperature=0,
                stream=True,
            )
            with chunks:
                for chunk in chunks:
                    if time.monotonic() > deadline:
                        raise GenerationFailed(f"模型服务超过 {self.settings.timeout:g} 秒没有答完")
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            yield choice.delta.content
        except openai.APITimeoutError:
            raise GenerationFailed("模型服务没有按时回应") from None
        except openai.APIStatusError as error:
            raise GenerationFailed(f"模型服务返回了错误（HTTP {error.status_code}）") from None
        except (openai.APIError, ValueError) as error:
            # A dropped connection, or a stream that is not valid JSON events.
            raise GenerationFailed(f"模型服务的回应不完整（{type(error).__name__}）") from None


@dataclass(frozen=True)
class Extracted:
    """The extractive answer, at once: what the page shows while the model writes."""

    answer: Answer


@dataclass(frozen=True)
class Piece:
    """A piece of the generated text, as the server sends it (not yet checked)."""

    text: str


@dataclass(frozen=True)
class Settled:
    """The answer to show: generated and checked, or the extractive one and why."""

    answer: Answer


class GeneratingAnswerer:
    """Writes the answer with a model on top of the extractive answerer's, behind the same
    `answer` method (retriever.answer.Answering); the extractive answer stands whenever the
    generated one cannot be trusted."""

    def __init__(self, extractive: Answering, server: ModelServer) -> None:
        self.extractive = extractive
        self.server = server
        self.check: AnswerCheck = extractive.check

    def answer(
        self,
        query: Query,
        searched: Candidates,
        hits: list[Hit],
        sides: list[Side] | None = None,
    ) -> Answer:
        asked = Searched(query, searched, hits, sides)
        *_, settled = self.events(asked)
        assert isinstance(settled, Settled)
        return settled.answer

    def events(self, asked: Searched) -> Iterator[Extracted | Piece | Settled]:
        """The extractive answer, then the generated text piece by piece, then the answer
        to show (always last). Closing the iterator early stops the generation."""
        extracted = self.extractive.answer(asked.query, asked.candidates, asked.hits, asked.sides)
        yield Extracted(extracted)
        if not extracted.found or not extracted.citations:
            yield Settled(replace(extracted, fallback="文档中没有找到答案，没有生成"))
            return
        messages = messages_for(asked.question, extracted.citations, asked.earlier)
        pieces: list[str] = []
        try:
            for piece in self.server.stream(messages):
                pieces.append(piece)
                yield Piece(piece)
        except GenerationFailed as error:
            yield Settled(replace(extracted, fallback=str(error)))
            return
        yield Settled(self.settle(extracted, "".join(pieces)))

    def settle(self, extracted: Answer, text: str) -> Answer:
        """The generated `text` as the answer if enough of it survives the check, else the
        extractive answer with why."""
        if not text.strip():
            return replace(extracted, fallback="模型服务没有返回内容")
        if NOT_ANSWERED in text:
            return replace(extracted, fallback="模型认为资料不能回答这个问题")
        checked = check_sentences(text, extracted.citations)
        total = len(checked.kept) + len(checked.dropped)
        if not checked.kept or len(checked.kept) < MIN_KEPT_SHARE * total:
            reasons = "；".join(dict.fromkeys(item.why for item in checked.dropped))
            return replace(extracted, fallback=f"生成的回答没有通过核对：{reasons}")
        return replace(extracted, answer="".join(checked.kept), kind="generated")
