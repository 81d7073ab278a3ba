"""Extractive answers: the one to three sentences of the top passages that best answer the question.

Nothing is generated: every sentence of an answer is quoted from a passage, and its [n] marker
is the number of that passage in the citation list, so a reader can check each claim. The
`Answerer` needs only the question as the query stage read it (retriever.query.Query: its
words, numbers, sides, whether it asks for a list or an opinion), the candidates and hits of
a search, the embedding model (to compare sentences with the question) and the answer check
(retriever.answerability: whether the corpus answers at all); what it may quote of a
passage, and how the quotes read together, is retriever.quoting. Another kind of answer (a
generator, say) is another class with the same `answer` method (`Answering`), passed to
`Retriever.load(answerer=...)`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from retriever.answer_rules import bracket_fit
from retriever.answerability import AnswerCheck
from retriever.comparison import Side
from retriever.embedding import Embedder
from retriever.query import Query
from retriever.quoting import Chosen, Quote, as_read, joined, quotable, whole_list, with_subjects
from retriever.searcher import Candidates, Hit
from retriever.text import normalize
from retriever.words import tokenize

# Sentences are taken from this many of the top passages: deeper hits rarely hold the answer
# and their sentences only add chances to quote something off-topic.
PASSAGES_CONSIDERED = 5
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores nearly as well as the best one.
SENTENCE_MARGIN = 0.04
# Sentences embedded to choose the answer from, picked by their cheap score (_prior).
SHORTLIST = 12
# Sentence vectors kept for later answers (384 floats each: 6 MB).
KEPT_SENTENCE_VECTORS = 4096
# A sentence whose bracket holds the question's number (满10年不满20年 for 十二年) gains this
# much, one whose brackets do not loses it: more than the cosine gaps between sibling rows.
BRACKET_WEIGHT = 0.05
NOT_FOUND = "语料中似乎没有能回答这个问题的内容。下面是最接近的段落，仅供参考。"
SIDE_MISSING = "语料中没有找到关于「{}」的内容，所以无法比较。下面是最接近的段落，仅供参考。"


class Answering(Protocol):
    """What turns a search's passages into an answer: `Answerer` here, or another kind (a
    generated answer, say) behind the same method. `check` is the answer check it uses, whose
    cut the Retriever reports; tests/retriever/test_answer_contract.py says what every answer
    keeps."""

    check: AnswerCheck

    def answer(
        self,
        query: Query,
        searched: Candidates,
        hits: list[Hit],
        sides: list[Side] | None = None,
    ) -> Answer: ...


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
    # "extractive" (sentences quoted from the passages) or "generated" (written by a model
    # and checked against them, retriever.generation); why a generation fell back, if it did.
    kind: str = "extractive"
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "found": self.found,
            "confidence": self.confidence,
            "answer_kind": self.kind,
            "fallback": self.fallback,
            "citations": [citation.to_dict() for citation in self.citations],
        }


class Answerer:
    """Picks the answering sentences from a search's hits and numbers their passages."""

    def __init__(self, embedder: Embedder, check: AnswerCheck) -> None:
        self.embedder = embedder
        self.check = check
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # text → vector, LRU
        self._vectors_lock = threading.Lock()

    def answer(
        self,
        query: Query,
        searched: Candidates,
        hits: list[Hit],
        sides: list[Side] | None = None,
    ) -> Answer:
        """The answer to `query` (retriever.query) from `hits`, ranked from the search's
        candidates.

        `sides`: for a comparison question, each side and the passage that speaks of it
        (retriever.comparison). A side no passage speaks of is said to be missing; a side
        the top passages do not speak of has its passage added to the sources. A follow-up
        that asks the same of another subject (`query.shift`, retriever.followup): what
        speaks of the earlier subject only is not quoted.
        """
        assert searched.vector is not None, "answers need the question's vector"
        question = query.text
        judgement = self.check.judge(query, searched, hits)
        confidence = judgement.confidence
        if sides is not None:
            missing = [side.text for side in sides if side.evidence is None]
            if missing:
                return _not_found(
                    question, hits, confidence, SIDE_MISSING.format("」「".join(missing))
                )
        considered = list(range(min(PASSAGES_CONSIDERED, len(hits))))
        for side in sides or []:
            assert side.evidence is not None
            at = next((i for i, hit in enumerate(hits) if hit.chunk_id == side.evidence.id), None)
            if at is None:
                # The passage that speaks of this side, cited below the ranked hits.
                hits = [
                    *hits,
                    Hit.of(
                        side.evidence,
                        rank=len(hits) + 1,
                        score=0.0,
                        dense_score=None,
                        bm25_score=None,
                    ),
                ]
                at = len(hits) - 1
            if at not in considered:
                considered.append(at)
        candidates = quotable(hits, considered, opinions=query.asks_opinion)
        if not candidates or not judgement.found:
            return _not_found(question, hits, confidence)
        prior = _prior(query, candidates, hits)
        kept = _shortlist(candidates, prior, hits, sides)
        candidates = [candidates[i] for i in kept]
        scores = prior[kept] + self._similarity(searched.vector, candidates, hits)
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        chosen = [
            Chosen(candidates[i][0], candidates[i][1], float(scores[i]))
            for i in order[:MAX_SENTENCES]
            if scores[i] >= best - SENTENCE_MARGIN
        ]
        if query.asks_list:
            chosen = whole_list(chosen[0], hits) or chosen
        for side in sides or []:
            if not any(side.mentioned_in(as_read(hits, c)) for c in chosen):
                speaking = [i for i in order if side.mentioned_in(as_read(hits, candidates[i]))]
                if speaking:
                    i = speaking[0]
                    chosen.append(Chosen(candidates[i][0], candidates[i][1], float(scores[i])))
        if query.shift is not None:
            earlier, new = (normalize(subject) for subject in query.shift)
            chosen = [
                c
                for c in chosen
                if new in (read := normalize(as_read(hits, c))) or earlier not in read
            ] or chosen
        chosen = with_subjects(chosen, hits)
        # Cited passages are numbered in the order the answer first uses them, the rest
        # follow.
        chosen.sort(key=lambda candidate: (candidate.hit_index, candidate.quote.start))
        numbering: dict[int, int] = {}
        for candidate in chosen:
            numbering.setdefault(candidate.hit_index, len(numbering) + 1)
        for index in range(len(hits)):
            numbering.setdefault(index, len(numbering) + 1)
        answer = joined(chosen, numbering)
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

    def _similarity(
        self, query: np.ndarray, candidates: list[tuple[int, Quote]], hits: list[Hit]
    ) -> np.ndarray:
        """Cosine similarity of question and sentence. The passage's heading counts as part of
        each of its sentences: under "行政助理的职责", the item "负责员工的考勤" answers a
        question about an assistant's duties without repeating the words."""
        texts = [
            normalize(f"{hits[index].heading}\n{quote.text}" if hits[index].heading else quote.text)
            for index, quote in candidates
        ]
        return np.stack(self._sentence_vectors(texts)) @ query

    def _sentence_vectors(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's vector, those embedded for an earlier answer taken from a small cache:
        questions about one knowledge base quote the same sentences again (the user-style
        set's 221 questions embedded 2,375 sentences, 665 of them different). A few texts
        are embedded one at a time (retriever.threads), so a kept vector is exactly the one
        embedding it again would give."""
        with self._vectors_lock:
            kept = {text: self._vectors[text] for text in texts if text in self._vectors}
            for text in kept:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(text for text in texts if text not in kept))
        if missing:
            kept.update(zip(missing, self.embedder.encode_passages(missing), strict=True))
            with self._vectors_lock:
                for text in missing:
                    self._vectors[text] = kept[text]
                while len(self._vectors) > KEPT_SENTENCE_VECTORS:
                    self._vectors.popitem(last=False)
        return [kept[text] for text in texts]


def _prior(query: Query, candidates: list[tuple[int, Quote]], hits: list[Hit]) -> np.ndarray:
    """What a sentence's score holds besides its cosine: the share of question words it holds
    (with its heading), less how far its passage ranked below the best one, and the bracket
    rule's bonus or malus. Cheap, so it also picks the sentences worth embedding."""
    # Retrieval already weighed each passage as a whole; a sentence of a lower-ranked
    # passage must be clearly better to be preferred.
    behind = np.array([hits[0].score - hits[index].score for index, _ in candidates])
    question_words = set(query.words)
    overlap = np.zeros(len(candidates), dtype=np.float32)
    if question_words:
        for i, (index, quote) in enumerate(candidates):
            words = set(tokenize(hits[index].heading + " " + quote.text))
            overlap[i] = len(question_words & words) / len(question_words)
    numbers = list(query.numbers)
    brackets = np.array([bracket_fit(numbers, quote.text) for _, quote in candidates])
    return 0.1 * overlap - behind + BRACKET_WEIGHT * brackets


def _shortlist(
    candidates: list[tuple[int, Quote]],
    prior: np.ndarray,
    hits: list[Hit],
    sides: list[Side] | None,
) -> list[int]:
    """The indexes of the SHORTLIST sentences with the best prior, in passage order, and for
    each side of a comparison the best one that speaks of it: embedding every sentence of
    five long passages cost most of an answer's time."""
    if len(candidates) <= SHORTLIST:
        return list(range(len(candidates)))
    order = [int(i) for i in np.argsort(-prior, kind="stable")]
    keep = set(order[:SHORTLIST])
    for side in sides or []:
        speaking = (i for i in order if side.mentioned_in(as_read(hits, candidates[i])))
        keep |= {i for i in [next(speaking, None)] if i is not None}
    return sorted(keep)


def _not_found(
    question: str, hits: list[Hit], confidence: float, message: str = NOT_FOUND
) -> Answer:
    citations = [Citation(number, hit, []) for number, hit in enumerate(hits, start=1)]
    return Answer(question, message, False, confidence, citations)
