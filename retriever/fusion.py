"""Fusion: one ranking from the dense and the lexical candidates of a question.

Another fusion rule goes here; the searcher (retriever.searcher) calls `fuse` for `search`,
`ask` and the evaluation alike.
"""

from __future__ import annotations

from typing import Literal

from retriever.config import SearchSettings

Mode = Literal["hybrid", "dense", "bm25"]


def fuse(
    dense: dict[int, float], lexical: dict[int, float], settings: SearchSettings, mode: Mode
) -> list[tuple[int, float]]:
    """The candidates best first: cosine plus a bonus for BM25 relative to the best match.

    `dense` and `lexical` hold every candidate's cosine and BM25 score (a candidate of one
    side gets its exact score on the other side too, so fusion never guesses a missing one).

    Scores, not ranks, are fused, because the cosine tells how sure the model is: where it
    ranks all passages alike (all within 0.01), a clear keyword match decides; where it is
    sure, BM25 cannot overrule it. Reciprocal-rank fusion throws that away, and on the
    evaluation sets it fell below dense retrieval alone at equal weights (bench/tune.py).

    The best BM25 match gets a further bonus for its lead over the runner-up: a question
    whose words only one passage holds points at that passage, while words that many
    passages share (flat BM25 scores, common on web pages) add little. A larger plain weight
    could not do both: it won the first kind of question and lost the second.
    """
    if mode == "dense":
        return sorted(dense.items(), key=lambda item: -item[1])
    if mode == "bm25":
        return sorted(((i, s) for i, s in lexical.items() if s > 0), key=lambda item: -item[1])
    best, runner_up = ([*sorted(lexical.values(), reverse=True)[:2], 0.0, 0.0])[:2]
    floor = min(dense.values(), default=0.0)
    fused = {i: dense.get(i, floor) for i in dense.keys() | lexical}
    if best > 0:
        for i, bm25 in lexical.items():
            fused[i] += settings.lexical_weight * bm25 / best
            fused[i] += settings.lead_weight * max(bm25 - runner_up, 0.0) / best
    return sorted(fused.items(), key=lambda item: -item[1])
