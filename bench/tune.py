"""Tune the search settings on the evaluation sets, never on the product corpus.

    python -m bench.tune            # both sets in bench/datasets; builds their indexes once

Prints (1) R@1, R@10, Hit@10 and MRR@10 for a grid of fusion weights, and (2) how well
answer thresholds separate questions a corpus answers (its own questions) from questions it
does not (the other set's questions).
The chosen values go into retriever/config.py by hand, with the figures in the README.

Every ranking is what `Retriever.search` returns (retriever.evaluation): each question's
candidates are found once, then fused, reranked and stripped of repeats by the searcher's
own stages for every setting of the grid.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from retriever.answer import KEYWORD_COVERAGE
from retriever.embedding import load_embedder
from retriever.evaluation import (
    evaluation_searcher,
    find_candidates,
    load_dataset,
    open_evaluation_index,
    passage_ranking,
    rank_all,
    score,
)
from retriever.search import DEFAULT_CACHE
from retriever.searcher import Hit
from retriever.words import content_words

DATASETS = Path(__file__).resolve().parent / "datasets"
LEXICAL_WEIGHTS = (0.0, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05)
LEAD_WEIGHTS = (0.0, 0.02, 0.04, 0.06)
ASK_K = 5  # the passages an answer is drawn from and judged by (Retriever.ask's default k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["cmrc2018_dev", "dureader_demo"])
    args = parser.parse_args()
    embedder = load_embedder(cache_dir=DEFAULT_CACHE)
    datasets = {name: load_dataset(DATASETS / name) for name in args.sets}
    opened = {
        name: (open_evaluation_index(d, embedder, DEFAULT_CACHE), d) for name, d in datasets.items()
    }
    pools = {name: find_candidates(r, d) for name, (r, d) in opened.items()}

    print("## Fusion: R@1 / R@10 / Hit@10 / MRR@10 per set\n")
    print("| ranking | " + " | ".join(args.sets) + " |")
    print("|---|" + "---|" * len(args.sets))
    rows = [("bm25 alone", "bm25", {}), ("dense alone", "dense", {})] + [
        (
            f"hybrid, lexical_weight {w}, lead_weight {lead}",
            "hybrid",
            {"lexical_weight": w, "lead_weight": lead},
        )
        for w in LEXICAL_WEIGHTS
        for lead in LEAD_WEIGHTS
    ]
    for label, mode, settings in rows:
        cells = []
        for name in args.sets:
            retriever, dataset = opened[name]
            m = score(retriever, dataset, pools[name], mode, **settings)
            cells.append(
                f"{m['R@1']:.3f} / {m['R@10']:.3f} / {m['Hit@10']:.3f} / {m['MRR@10']:.3f}"
            )
        print(f"| {label} | " + " | ".join(cells) + " |")

    if len(args.sets) == 2:
        calibrate(opened, pools, args.sets)


def calibrate(opened, pools, names: list[str]) -> None:
    """How well the answer thresholds separate answerable from unanswerable questions.

    Answerable: a set's own questions whose gold passage is in their top ASK_K. Unanswerable:
    the other set's questions (500 of them) asked of this set's corpus.
    """
    answerable, unanswerable = [], []
    for own, other in (names, names[::-1]):
        retriever, dataset = opened[own]
        searcher = evaluation_searcher(retriever)
        for qid, hits in rank_all(searcher, pools[own], "hybrid").items():
            if set(passage_ranking(hits[:ASK_K])) & dataset.gold[qid]:
                answerable.append(_features(dataset.questions[qid], hits))
        foreign = load_dataset(DATASETS / other)
        questions = dict(list(foreign.questions.items())[:500])
        asked = replace(foreign, questions=questions, gold={})
        foreign_pool = find_candidates(retriever, asked, progress=False)
        for qid, hits in rank_all(searcher, foreign_pool, "hybrid").items():
            unanswerable.append(_features(questions[qid], hits))
    yes, no = np.array(answerable), np.array(unanswerable)
    print("\n## Answer thresholds (nearest passage cosine, share of question words held)\n")
    print(f"{len(yes)} answerable, {len(no)} unanswerable questions\n")
    print("| rule | answers (of answerable) | refuses (of unanswerable) |")
    print("|---|---|---|")
    for sure in (0.87, 0.88, 0.89):
        for lower in (None, 0.84, 0.85, 0.86):

            def found(rows, sure=sure, lower=lower):
                keyword = rows[:, 0] >= lower if lower else False
                return (rows[:, 0] >= sure) | (keyword & (rows[:, 1] >= KEYWORD_COVERAGE))

            rule = f"cosine ≥ {sure}" + (
                f", or ≥ {lower} holding ≥ {KEYWORD_COVERAGE:.0%} of the words" if lower else ""
            )
            print(f"| {rule} | {found(yes).mean():.1%} | {1 - found(no).mean():.1%} |")


def _features(question: str, hits: list[Hit]) -> tuple[float, float]:
    """What the answer thresholds look at: the nearest passage's cosine, and the share of the
    question's words the top passage holds (retriever.answer)."""
    top = hits[0]
    words = content_words(question)
    held = content_words(f"{top.heading}\n{top.text}")
    nearest = max(hit.dense_score for hit in hits[:ASK_K] if hit.dense_score is not None)
    return nearest, len(words & held) / len(words) if words else 0.0


if __name__ == "__main__":
    main()
