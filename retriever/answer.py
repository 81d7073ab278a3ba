"""Extractive answers: the one to three sentences of the top passages that best answer the question.

Nothing is generated: every sentence of an answer is quoted from a passage, and its [n] marker
is the number of that passage in the citation list, so a reader can check each claim. The
`Answerer` needs only the candidates and hits of a search, the embedding model (to compare
sentences with the question) and the answer check (retriever.answerability: whether the
corpus answers at all); another kind of answer (a generator, say) would be another class
with the same `answer` method.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from retriever.answerability import AnswerCheck
from retriever.chunking import split_sentences
from retriever.corpus import normalize
from retriever.embedding import Embedder
from retriever.searcher import Candidates, Hit
from retriever.words import tokenize

# Sentences are taken from this many of the top passages: deeper hits rarely hold the answer
# and their sentences only add chances to quote something off-topic.
PASSAGES_CONSIDERED = 3
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores nearly as well as the best one.
SENTENCE_MARGIN = 0.04
MIN_SENTENCE_CHARS = 6
NOT_FOUND = "语料中似乎没有能回答这个问题的内容。下面是最接近的段落，仅供参考。"


@dataclass(frozen=True)
class Quote:
    """A sentence of a passage, by character offsets into the source file."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    """A passage in the answer's source list; `number` is the n of its [n] markers."""

    number: int
    hit: Hit
    quotes: list[Quote]  # the sentences the answer takes from this passage (may be none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            **self.hit.to_dict(),
            "answer_sentences": [asdict(quote) for quote in self.quotes],
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    found: bool  # false when the corpus does not seem to answer the question
    confidence: float  # how likely the corpus answers, 0–1 (retriever.answerability)
    citations: list[Citation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "found": self.found,
            "confidence": self.confidence,
            "citations": [citation.to_dict() for citation in self.citations],
        }


@dataclass(frozen=True)
class _Candidate:
    hit_index: int
    quote: Quote
    score: float


class Answerer:
    """Picks the answering sentences from a search's hits and numbers their passages."""

    def __init__(self, embedder: Embedder, check: AnswerCheck) -> None:
        self.embedder = embedder
        self.check = check

    def answer(self, question: str, searched: Candidates, hits: list[Hit]) -> Answer:
        """The answer to `question` from `hits`, ranked from the search's candidates."""
        assert searched.vector is not None, "answers need the question's vector"
        judgement = self.check.judge(question, searched, hits)
        confidence = judgement.confidence
        candidates = _candidates(hits[:PASSAGES_CONSIDERED])
        if not candidates or not judgement.found:
            return _not_found(question, hits, confidence)
        scores = self._score(question, searched.vector, candidates, hits)
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        chosen = [
            _Candidate(candidates[i][0], candidates[i][1], float(scores[i]))
            for i in order[:MAX_SENTENCES]
            if scores[i] >= best - SENTENCE_MARGIN
        ]
        # Cited passages are numbered in the order the answer first uses them, the rest
        # follow.
        chosen.sort(key=lambda candidate: (candidate.hit_index, candidate.quote.start))
        numbering: dict[int, int] = {}
        for candidate in chosen:
            numbering.setdefault(candidate.hit_index, len(numbering) + 1)
        for index in range(len(hits)):
            numbering.setdefault(index, len(numbering) + 1)
        answer = "".join(f"{_as_sentence(c.quote.text)}[{numbering[c.hit_index]}]" for c in chosen)
        citations = sorted(
            (
                Citation(
                    number=numbering[index],
                    hit=hit,
                    quotes=[c.quote for c in chosen if c.hit_index == index],
                )
                for index, hit in enumerate(hits)
            ),
            key=lambda citation: citation.number,
        )
        return Answer(question, answer, True, confidence, citations)

    def _score(
        self,
        question: str,
        query: np.ndarray,
        candidates: list[tuple[int, Quote]],
        hits: list[Hit],
    ) -> np.ndarray:
        """Cosine similarity of question and sentence, plus the share of question words it
        holds, less how far its passage ranked below the best one.

        The passage's heading counts as part of each of its sentences: under "行政助理的职责",
        the item "负责员工的考勤" answers a question about an assistant's duties without
        repeating the words.
        """
        texts = [
            normalize(f"{hits[index].heading}\n{quote.text}" if hits[index].heading else quote.text)
            for index, quote in candidates
        ]
        similarity = self.embedder.encode_passages(texts) @ query
        # Retrieval already weighed each passage as a whole; a sentence of a lower-ranked
        # passage must be clearly better to be preferred.
        behind = np.array([hits[0].score - hits[index].score for index, _ in candidates])
        question_words = set(tokenize(question))
        overlap = np.zeros(len(candidates), dtype=np.float32)
        if question_words:
            for i, (index, quote) in enumerate(candidates):
                words = set(tokenize(hits[index].heading + " " + quote.text))
                overlap[i] = len(question_words & words) / len(question_words)
        return similarity + 0.1 * overlap - behind


def _not_found(question: str, hits: list[Hit], confidence: float) -> Answer:
    citations = [Citation(number, hit, []) for number, hit in enumerate(hits, start=1)]
    return Answer(question, NOT_FOUND, False, confidence, citations)


def _candidates(hits: list[Hit]) -> list[tuple[int, Quote]]:
    candidates = []
    for index, hit in enumerate(hits):
        for span in split_sentences(hit.text):
            text = hit.text[span.start : span.end]
            # A clause that ends in a colon introduces what follows, and one that ends in
            # "..." is a truncated summary: neither reads as an answer on its own.
            if len(text) >= MIN_SENTENCE_CHARS and not text.endswith((":", "：", "...", "…")):
                candidates.append(
                    (index, Quote(hit.start + span.start, hit.start + span.end, text))
                )
    return candidates


def _as_sentence(text: str) -> str:
    """End a quoted clause with a full stop so that markers read naturally after it."""
    return text if text[-1] in "。！？；!?;…”」』）)" else text + "。"
