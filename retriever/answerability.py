"""Whether the corpus answers a question: two small logistic models over relative evidence.

One absolute cosine does not carry across corpora: on a Wikipedia corpus the questions of a
web-forum set reached the cosines of the corpus's own questions, and English questions about
Chinese text sit far below both. So every piece of evidence is relative:

- lift: the nearest passage's cosine less the question's cosine to unrelated text (its
  BACKGROUND_RANK-th best cosine to ~1,300 general Chinese passages, retriever/data). A
  question is measured against its own baseline: one in English, or one so generic that it
  is near everything, starts from a different level, and the lift removes it.
- standout: the nearest cosine less the STANDOUT_RANK-th best in this corpus: how far the best
  passage stands out from the rest of the corpus (in a corpus of fewer passages, the
  background passages make up the ones it lacks).
- coverage: the share of the question's content words that the top passage holds, and that
  the top three hold together. A question with no Chinese characters cannot share words with
  Chinese text, so its coverage is unknown and the fitting data's mean stands in for it.

The three pieces of line evidence (unheld, line coverage, answer line: does a line of the top
passages hold what is asked?) are read by retriever.answerability_lines.

The confidence is the product of two probabilities: the topic part's over the passage
evidence (is the corpus about what is asked?) and the line part's over the line evidence
(does a line hold it?), so that either can refuse. The weights, the scaling and the cut are
fitted per model by bench/fit_answerability.py (its docstring gives the protocol: what was
fitted on what, what was held out), stored in retriever/data/answerability.json and read by
retriever.answerability_fit. For a model without fitted values the confidence is the nearest
passage's cosine, and every question counts as answered unless a minimum is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.answerability_fit import Evidence, background_vectors, load_fitted
from retriever.answerability_lines import CHINESE, line_evidence
from retriever.embedding import Embedder
from retriever.query import Query, as_query
from retriever.searcher import Candidates, Hit
from retriever.words import content_words

logger = logging.getLogger(__name__)

# The question's baseline is its 10th-best background cosine, not its best: one background
# passage that happens to be about the same thing as the user's corpus must not decide.
BACKGROUND_RANK = 10
STANDOUT_RANK = 50


@dataclass(frozen=True)
class Judgement:
    found: bool
    confidence: float  # the fitted probability that the corpus answers, 0–1


def gather_evidence(
    question: str | Query, candidates: Candidates, hits: list[Hit], background: np.ndarray
) -> Evidence:
    """The Evidence of a question (its Query, retriever.query) from its candidates (stage 1
    of the search, which found the STANDOUT_RANK best cosines) and its ranked hits."""
    query = as_query(question)
    assert candidates.vector is not None, "the answer check needs the question's vector"
    cosines = sorted(candidates.dense.values(), reverse=True)
    nearest = cosines[0] if cosines else 0.0
    baseline = np.sort(background @ candidates.vector)[::-1]
    typical = float(baseline[min(BACKGROUND_RANK, len(baseline)) - 1]) if len(baseline) else 0.0
    deep = cosines[min(STANDOUT_RANK, len(cosines)) - 1] if cosines else 0.0
    if len(cosines) < STANDOUT_RANK:
        # A corpus of fewer passages (a new base of one document) has no STANDOUT_RANK-th:
        # its last passage stands in, and one passage would stand out from itself by 0, so
        # every question of a one-document base would look unanswered. The background
        # passages make up the ones it lacks, as a large corpus's unrelated passages would;
        # they only ever lower the reference (bench/small_corpora.py: chosen on
        # cmrc2018_dev's fitting part, over letting them raise it too).
        padded = np.sort(np.concatenate((cosines, baseline)))[::-1]
        if len(padded):
            deep = min(deep, float(padded[min(STANDOUT_RANK, len(padded)) - 1]))
    words = query.content
    chinese = CHINESE.search(query.text)
    if not chinese or not words or not hits:
        coverage = coverage_top3 = None
    else:
        held = [content_words(f"{hit.heading}\n{hit.text}") for hit in hits[:3]]
        coverage = len(words & held[0]) / len(words)
        coverage_top3 = len(words & set().union(*held)) / len(words)
    lines = line_evidence(query, hits) if chinese else None
    return Evidence(
        nearest - typical, nearest - deep, coverage, coverage_top3, *(lines or (None,) * 3)
    )


class AnswerCheck:
    """Judges whether a corpus answers a question, with the model fitted for the embedder."""

    def __init__(
        self,
        embedder: Embedder,
        cache_dir: Path | None,
        min_confidence: float | None = None,
    ) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.fitted = load_fitted(embedder.name)
        if self.fitted is None and min_confidence is None:
            logger.warning(
                "the answer check is not fitted for model %r, so every question counts as "
                "answered: give a minimum cosine, or fit it (python -m bench.fit_answerability)",
                embedder.name,
            )
        self.min_confidence = (
            min_confidence
            if min_confidence is not None
            else (self.fitted.threshold if self.fitted is not None else 0.0)
        )
        self._background: np.ndarray | None = None

    @property
    def background(self) -> np.ndarray:
        if self._background is None:
            self._background = background_vectors(self.embedder, self.cache_dir)
        return self._background

    def judge(self, question: str | Query, candidates: Candidates, hits: list[Hit]) -> Judgement:
        if self.fitted is None:
            nearest = round(max(candidates.dense.values(), default=0.0), 4)
            return Judgement(nearest >= self.min_confidence, nearest)
        evidence = gather_evidence(question, candidates, hits, self.background)
        confidence = round(self.fitted.probability(evidence), 4)
        return Judgement(confidence >= self.min_confidence, confidence)
