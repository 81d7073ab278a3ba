"""Tune the search settings on the evaluation sets, never on the product corpus.

    python -m bench.tune            # both sets in bench/datasets; builds their indexes once

Prints R@1, R@10, Hit@10 and MRR@10 for a grid of fusion weights. The chosen values go into
retriever/config.py by hand, with the figures in the README. (Whether the corpus answers at
all is fitted by bench.fit_answerability.)

Every ranking is what `Retriever.search` returns (retriever.evaluation): each question's
candidates are found once, then fused, reranked and stripped of repeats by the searcher's
own stages for every setting of the grid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from retriever.embedding import load_embedder
from retriever.evaluation import (
    find_candidates,
    load_dataset,
    open_evaluation_index,
    score,
)
from retriever.search import DEFAULT_CACHE

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


if __name__ == "__main__":
    main()
