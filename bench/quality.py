"""Retrieval quality of the project and its peers, side by side, on both evaluation sets.

    python -m bench.quality                       # full sets; writes docs/quality.md
    python -m bench.quality --limit 20 --corpus-limit 60 --output /tmp/q.md --cache /tmp/c

Prints and saves R@1, R@5, R@10, Hit@10 and MRR@10 for the project's BM25, dense and hybrid
modes (its own evaluation: retriever.evaluation, which ranks what `Retriever.search` returns)
and for each peer (bench.peers). The peers' rankings are scored by the same
`retriever.evaluation.metrics`, so every figure follows one definition. Indexes are cached:
the project's under <cache>/eval, the peers' under <cache>/bench, so a second run embeds
nothing. Per-question ranks of the first gold passage are saved in
<cache>/bench/quality_details.json to explain where systems differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from bench.peers import (
    CACHE,
    DATASETS,
    PEERS,
    REPO,
    SETS,
    PeersMissingError,
    check_peer_packages,
    default_model_path,
    ensure_built,
    open_system,
    take_slice,
)
from retriever.evaluation import (
    CUTOFFS,
    Dataset,
    evaluation_searcher,
    find_candidates,
    load_dataset,
    metrics,
    open_evaluation_index,
    passage_ranking,
    rank_all,
)
from retriever.store import ENGINE_LIBRARIES, library_versions

logger = logging.getLogger("bench.quality")

METRICS = ("R@1", "R@5", "R@10", "Hit@10", "MRR@10")
PROJECT_MODES = ("bm25", "dense", "hybrid")
VERSIONED = (
    *ENGINE_LIBRARIES,
    "langchain-community",
    "langchain-classic",
    "langchain-text-splitters",
    "rank-bm25",
    "txtai",
)


def first_gold_rank(passages: list[str], gold: set[str]) -> int | None:
    """1-based rank of the first gold passage within the top 10, or None."""
    for rank, pid in enumerate(passages[: max(CUTOFFS)], start=1):
        if pid in gold:
            return rank
    return None


# --------------------------------------------------------------------- running


@dataclass(frozen=True)
class SetResult:
    name: str
    questions: int
    passages: int
    metrics: dict[str, dict[str, float]]  # system → metric → value
    ranks: dict[str, dict[str, int | None]]  # system → question id → first gold rank
    seconds: dict[str, float]  # system → seconds spent searching all questions


@lru_cache(maxsize=1)
def _embedder():
    """The project's default embedder, loaded once for both sets."""
    from retriever.embedding import load_embedder

    return load_embedder(cache_dir=CACHE)


def project_results(
    dataset: Dataset, cache: Path, progress: bool
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int | None]], float]:
    """The project's three modes, exactly as `python -m retriever eval --compare` scores them."""
    embedder = _embedder()
    retriever = open_evaluation_index(dataset, embedder, cache, progress=progress)
    started = time.perf_counter()
    pool = find_candidates(retriever, dataset, progress=progress)
    seconds = time.perf_counter() - started
    scores, ranks = {}, {}
    for mode in PROJECT_MODES:
        hits = rank_all(evaluation_searcher(retriever), pool, mode)
        passages = {qid: passage_ranking(found) for qid, found in hits.items()}
        scores[f"project {mode}"] = metrics(dataset, passages)
        ranks[f"project {mode}"] = {
            qid: first_gold_rank(ranking, dataset.gold[qid]) for qid, ranking in passages.items()
        }
    return scores, ranks, seconds


def evaluate_set(
    name: str,
    *,
    systems: list[str],
    limit: int | None,
    corpus_limit: int | None,
    cache: Path,
    workdir: Path,
    progress: bool,
) -> SetResult:
    dataset, records = take_slice(
        load_dataset(DATASETS / name), limit=limit, corpus_limit=corpus_limit, workdir=workdir
    )
    scores: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int | None]] = {}
    seconds: dict[str, float] = {}
    if "project" in systems:
        project_metrics, project_ranks, spent = project_results(dataset, cache, progress)
        scores |= project_metrics
        ranks |= project_ranks
        seconds["project"] = spent
    model_path = default_model_path()
    _one_thread_for_questions()
    for peer in (system for system in systems if system in PEERS):
        built = ensure_built(peer, dataset.name, dataset.corpus, records, cache / "bench")
        system = built.instance or open_system(peer, built.folder, model_path)
        started = time.perf_counter()
        results = {
            qid: system.search(question, max(CUTOFFS))
            for qid, question in tqdm(
                dataset.questions.items(), desc=f"{peer} on {dataset.name}", disable=not progress
            )
        }
        seconds[peer] = time.perf_counter() - started
        scores[peer] = metrics(dataset, results)
        ranks[peer] = {qid: first_gold_rank(results[qid], dataset.gold[qid]) for qid in results}
        del system  # one model in memory at a time
    return SetResult(dataset.name, len(dataset.questions), len(records), scores, ranks, seconds)


def _one_thread_for_questions() -> None:
    """Peers embed one question per call; on a shared 2-core machine two torch threads then
    spend most of their time waiting for each other (measured: ~0.7 s a question against
    ~0.06 s with one thread). Rankings do not depend on it; the run time does."""
    import torch

    torch.set_num_threads(1)


def markdown(results: list[SetResult], command: str) -> str:
    """The quality tables as Markdown, with how and where they were made."""
    lines = [
        "# Retrieval quality: the project and its peers",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {platform.machine()}, {_cores()} cores, {_memory_gb()} GB, no GPU  ",
        "Versions: "
        + ", ".join(f"{name} {version}" for name, version in library_versions(VERSIONED).items()),
        "",
    ]
    for result in results:
        lines += [
            f"## {result.name} ({result.questions} questions, {result.passages} passages)",
            "",
            "| system | " + " | ".join(METRICS) + " |",
            "|---" * (len(METRICS) + 1) + "|",
        ]
        best = {m: max(values[m] for values in result.metrics.values()) for m in METRICS}
        for system, values in result.metrics.items():
            cells = [
                f"**{values[m]:.3f}**" if values[m] == best[m] else f"{values[m]:.3f}"
                for m in METRICS
            ]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _memory_gb() -> int:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30)
    except ImportError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument(
        "--systems", nargs="+", default=["project", *PEERS], choices=["project", *PEERS]
    )
    parser.add_argument("--limit", type=int, help="only the first N questions of each set")
    parser.add_argument("--corpus-limit", type=int, help="at most N passages (gold ones first)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="index cache (.cache)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "quality.md")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_peer_packages()
    except PeersMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    workdir = args.cache / "bench" / "slices"
    results = [
        evaluate_set(
            name,
            systems=args.systems,
            limit=args.limit,
            corpus_limit=args.corpus_limit,
            cache=args.cache,
            workdir=workdir,
            progress=not args.quiet,
        )
        for name in args.sets
    ]
    command = "python -m bench.quality " + " ".join(argv if argv is not None else sys.argv[1:])
    table = markdown(results, command.strip())
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    # Per-question ranks are evidence for a report, not a document: they stay in the cache.
    details = args.cache / "bench" / "quality_details.json"
    details.parent.mkdir(parents=True, exist_ok=True)
    details.write_text(
        json.dumps(
            {
                r.name: {
                    "metrics": r.metrics,
                    "search_seconds": r.seconds,
                    "first_gold_rank": r.ranks,
                }
                for r in results
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
