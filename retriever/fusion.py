"""Fusion: one ranking from the dense and the lexical candidates of a question.

A hybrid score is a weighted sum of a candidate's evidence, each piece measured against the
question's other candidates, so the same weights adapt to how clear the evidence is:

- its cosine: how near the model puts it (where all candidates are within 0.01, the other
  evidence decides; where the model is sure, it cannot be overruled);
- its BM25 score over the best candidate's;
- the best BM25 match's lead over the runner-up, over its score: a question whose words
  only one passage holds points at that passage, while words that many passages share
  (flat BM25 scores, common on web pages) add little;
- the share of the question's content words its text holds, and the share its document's
  title holds: a field of its own, so that a title that is the question (an FAQ) counts,
  while a title every paragraph of a long document shares does not drown their texts.

The weights are fitted per embedding model by bench.fit_fusion (a pairwise logistic model on
evaluation splits kept apart from what is reported; its docstring gives the protocol) and
shipped in retriever/data/fusion.json; a model without a fit gets FusionWeights()'s rule.
Scores, not ranks, are fused, because the cosine tells how sure the model is: reciprocal-rank
fusion throws that away, and on the evaluation sets it fell below dense retrieval alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from retriever.config import FusionWeights
from retriever.models import canonical_model_name


@dataclass(frozen=True)
class Candidates:
    """Stage 1 of a search (retriever.searcher): a question's candidates with both their
    scores ({chunk id: cosine}, {chunk id: BM25 score}), and the share of the question's
    content words each one's text and title hold. Without a query vector (BM25 mode) the
    dense side is empty."""

    question: str
    vector: np.ndarray | None
    dense: dict[int, float]
    lexical: dict[int, float]
    coverage: dict[int, float]
    title_coverage: dict[int, float]  # the share of the question's words its title holds


Mode = Literal["hybrid", "dense", "bm25"]

FITTED = Path(__file__).resolve().parent / "data" / "fusion.json"
FEATURES = ("cosine", "bm25", "lead", "coverage", "title")


@lru_cache(maxsize=8)
def fitted_weights(model: str, path: Path = FITTED) -> FusionWeights | None:
    """The weights bench.fit_fusion fitted for this embedding model, None if there are none."""
    if not path.is_file():
        return None
    fitted = json.loads(path.read_text("utf-8"))["models"].get(canonical_model_name(model))
    return None if fitted is None else FusionWeights(**fitted["weights"])


def features(candidates: Candidates) -> dict[int, tuple[float, ...]]:
    """Each candidate's evidence, in FEATURES' order.

    `candidates.dense` and `.lexical` hold every candidate's cosine and BM25 score (a
    candidate of one side gets its exact score on the other side too, so fusion never
    guesses a missing one).
    """
    dense, lexical = candidates.dense, candidates.lexical
    best, runner_up = ([*sorted(lexical.values(), reverse=True)[:2], 0.0, 0.0])[:2]
    floor = min(dense.values(), default=0.0)
    evidence = {}
    for i in dense.keys() | lexical.keys():
        bm25 = lexical.get(i, 0.0)
        relative, lead = (bm25 / best, max(bm25 - runner_up, 0.0) / best) if best > 0 else (0, 0)
        coverage, title = candidates.coverage.get(i, 0.0), candidates.title_coverage.get(i, 0.0)
        evidence[i] = (dense.get(i, floor), relative, lead, coverage, title)
    return evidence


def fuse(candidates: Candidates, weights: FusionWeights, mode: Mode) -> list[tuple[int, float]]:
    """The candidates best first, with their scores."""
    if mode == "dense":
        return sorted(candidates.dense.items(), key=lambda item: -item[1])
    if mode == "bm25":
        found = ((i, s) for i, s in candidates.lexical.items() if s > 0)
        return sorted(found, key=lambda item: -item[1])
    scale = (1.0, weights.bm25, weights.lead, weights.coverage, weights.title)
    fused = {
        i: sum(w * x for w, x in zip(scale, evidence, strict=True))
        for i, evidence in features(candidates).items()
    }
    return sorted(fused.items(), key=lambda item: -item[1])
