"""Tune the search settings on the evaluation sets, never on the product corpus.

    python -m bench.tune            # both sets in bench/datasets; builds their indexes once

Prints (1) R@10, Hit@10 and MRR@10 for a grid of fusion weights, and (2) how well the
nearest passage's cosine separates questions a corpus answers (its own questions) from
questions it does not (the other set's questions), with the threshold that separates best.
The chosen values go into retriever/config.py by hand, with the figures in the README.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from retriever.config import SearchSettings
from retriever.default_model import DEFAULT_MODEL_NAME
from retriever.embedding import SentenceTransformerEmbedder
from retriever.evaluation import compute_rankings, load_dataset, open_evaluation_index, score
from retriever.search import DEFAULT_CACHE

DATASETS = Path(__file__).resolve().parent / "datasets"
LEXICAL_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08, 0.12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["cmrc2018_dev", "dureader_demo"])
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder.load(DEFAULT_MODEL_NAME, cache_dir=DEFAULT_CACHE)
    datasets = {name: load_dataset(DATASETS / name) for name in args.sets}
    opened = {
        name: (open_evaluation_index(d, embedder, DEFAULT_CACHE), d) for name, d in datasets.items()
    }
    rankings = {name: compute_rankings(r, d) for name, (r, d) in opened.items()}

    print("## Fusion: R@1 / R@10 / Hit@10 / MRR@10 per set\n")
    print("| ranking | " + " | ".join(args.sets) + " |")
    print("|---|" + "---|" * len(args.sets))
    rows = [("bm25 alone", "bm25", None), ("dense alone", "dense", None)] + [
        (f"hybrid, lexical_weight {w}", "hybrid", replace(SearchSettings(), lexical_weight=w))
        for w in LEXICAL_WEIGHTS
    ]
    for label, mode, settings in rows:
        cells = []
        for name in args.sets:
            retriever, dataset = opened[name]
            m = score(retriever, dataset, rankings[name], mode, settings)
            cells.append(
                f"{m['R@1']:.3f} / {m['R@10']:.3f} / {m['Hit@10']:.3f} / {m['MRR@10']:.3f}"
            )
        print(f"| {label} | " + " | ".join(cells) + " |")

    if len(args.sets) == 2:
        calibrate(opened, rankings, args.sets)


def calibrate(opened, rankings, names: list[str]) -> None:
    """Nearest-passage cosine of answerable versus unanswerable questions."""
    answered, unanswered = [], []
    for own, other in (names, names[::-1]):
        retriever, dataset = opened[own]
        for qid, dense in zip(rankings[own].question_ids, rankings[own].dense, strict=True):
            top = sorted(dense, key=lambda i: -dense[i])[:5]
            passages = {retriever.chunks[i].doc_id.split("#", 1)[-1] for i in top}
            if passages & dataset.gold[qid]:
                answered.append(max(dense.values()))
        foreign = load_dataset(DATASETS / other)
        vectors = retriever.embedder.encode_queries(list(foreign.questions.values())[:500])
        scores, _ = retriever.vectors.search(vectors, 1)
        unanswered.extend(scores[:, 0].tolist())
    answered_scores, unanswered_scores = np.array(answered), np.array(unanswered)
    best = max(
        np.arange(0.70, 0.95, 0.005),
        key=lambda t: (answered_scores >= t).mean() + (unanswered_scores < t).mean(),
    )
    print("\n## Answer threshold (nearest passage cosine)\n")
    print(
        f"answerable: n={len(answered_scores)}, median {np.median(answered_scores):.3f}, "
        f"5th percentile {np.percentile(answered_scores, 5):.3f}"
    )
    print(
        f"unanswerable: n={len(unanswered_scores)}, median {np.median(unanswered_scores):.3f}, "
        f"95th percentile {np.percentile(unanswered_scores, 95):.3f}"
    )
    print(
        f"best threshold {best:.3f}: answers {(answered_scores >= best).mean():.1%} of "
        f"answerable, refuses {(unanswered_scores < best).mean():.1%} of unanswerable"
    )


if __name__ == "__main__":
    main()
