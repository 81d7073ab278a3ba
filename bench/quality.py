"""Retrieval quality of the project and its peers, side by side, on every evaluation set.

    python -m bench.quality                       # full sets; writes docs/quality.md
    python -m bench.quality --limit 20 --corpus-limit 60 --output /tmp/q.md --cache /tmp/c

Passage sets (cmrc2018_dev, dureader_demo, drcd_test: corpus, queries, qrels): R@1, R@5,
R@10, Hit@10 and MRR@10 for the project's BM25, dense and hybrid modes (its own evaluation:
retriever.evaluation, which ranks what `Retriever.search` returns) and for each peer
(bench.peers). The peers' rankings are scored by the same `retriever.evaluation.metrics`, so
every figure follows one definition.

The user-style set (whole documents, questions with gold lines): top-1 and top-3 over the
answerable questions, follow-ups completed as the page completes them. The project's figures
are bench.userstyle's (`evaluate` and `summary`: the passages `Retriever.ask` cites). Each
peer reads and splits the documents its own way (`read_documents`) and is scored by the same
`bench.userstyle.holds`: a passage holds the answer when it contains a gold line.

--limit keeps the first N questions of each set; --corpus-limit keeps at most N passages of a
passage set, or N documents of the user-style set, the gold ones first. Indexes are cached:
the project's under <cache>/eval, the peers' under <cache>/bench, so a second run embeds
nothing. Per-question ranks of the first gold passage are saved in
<cache>/bench/quality_details.json to explain where systems differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    PeersMissingError,
    check_peer_packages,
    default_model_path,
    document_files,
    ensure_built,
    open_system,
    take_slice,
    write_records,
)
from bench.userstyle import Outcome, Question, evaluate, holds, load_questions, summary
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
from retriever.followup import complete_followup
from retriever.search import Retriever, index_is_current
from retriever.store import ENGINE_LIBRARIES, library_versions

logger = logging.getLogger("bench.quality")

PASSAGE_SETS = ("cmrc2018_dev", "dureader_demo", "drcd_test", "dureader_faq")
DOCUMENT_SETS = ("userstyle",)
SETS = (*PASSAGE_SETS, *DOCUMENT_SETS)
METRICS = ("R@1", "R@5", "R@10", "Hit@10", "MRR@10")
DOCUMENT_METRICS = ("top-1", "top-3")
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
    size: str  # what was searched, for the heading: "3219 questions, 1104 passages"
    columns: tuple[str, ...]  # the metrics, in table order
    metrics: dict[str, dict[str, float]]  # system → metric → value
    ranks: dict[str, dict[str, int | None]]  # system → question id → first gold rank
    seconds: dict[str, float]  # system → seconds spent searching all questions
    notes: tuple[str, ...] = ()  # lines printed under the table


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
    for peer in (system for system in systems if system in PEERS):
        built = ensure_built(peer, dataset.name, dataset.corpus, records, cache / "bench")
        system = built.instance or open_system(peer, built.folder, model_path)
        started = time.perf_counter()
        with _one_torch_thread():
            results = {
                qid: system.search(question, max(CUTOFFS))
                for qid, question in tqdm(
                    dataset.questions.items(),
                    desc=f"{peer} on {dataset.name}",
                    disable=not progress,
                )
            }
        seconds[peer] = time.perf_counter() - started
        scores[peer] = metrics(dataset, results)
        ranks[peer] = {qid: first_gold_rank(results[qid], dataset.gold[qid]) for qid in results}
        del system  # one model in memory at a time
    size = f"{len(dataset.questions)} questions, {len(records)} passages"
    return SetResult(dataset.name, size, METRICS, scores, ranks, seconds)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Peers embed one question per call; on a shared 2-core machine two torch threads then
    spend most of their time waiting for each other (measured: ~0.7 s a question against
    ~0.06 s with one thread). Rankings do not depend on it; the run time does. Building
    (batches of passages) keeps both threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------ whole documents


def take_documents(
    folder: Path, *, limit: int | None, corpus_limit: int | None, workdir: Path
) -> tuple[str, Path, list[Question]]:
    """The user-style set cut to its first `limit` questions and at most `corpus_limit`
    documents: the name of the cut, its documents folder and its questions.

    The documents answering the kept questions come first, then the others in name order; a
    question whose document does not fit is left out. Questions with no document
    (unanswerable) are kept. A cut is copied under `workdir` with a name of its own, so its
    indexes never replace the whole set's in a cache.
    """
    questions = load_questions(folder)[:limit] if limit else load_questions(folder)
    files = [path.name for path in document_files(folder / "documents")]
    if not corpus_limit or corpus_limit >= len(files):
        return folder.name, folder / "documents", questions
    document_of = _documents_of(folder)
    chosen: dict[str, None] = {}
    kept = []
    for question in questions:
        document = document_of[question.id]
        if document is not None and document not in chosen:
            if len(chosen) >= corpus_limit:
                continue
            chosen[document] = None
        kept.append(question)
    for name in files:
        if len(chosen) >= corpus_limit:
            break
        chosen.setdefault(name)
    name = f"{folder.name}-q{len(kept)}-c{len(chosen)}"
    documents = workdir / name / "documents"
    shutil.rmtree(documents, ignore_errors=True)
    documents.mkdir(parents=True)
    for document in chosen:
        shutil.copyfile(folder / "documents" / document, documents / document)
    return name, documents, kept


def _documents_of(folder: Path) -> dict[str, str | None]:
    """Question id → the file that answers it (None for unanswerable ones)."""
    with (folder / "questions.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {row["id"]: row.get("document") for row in rows}


def first_holding(passages: list[str], gold: list[str]) -> int | None:
    """1-based rank of the first passage that holds a gold line, or None."""
    for rank, text in enumerate(passages, start=1):
        if holds(text, gold):
            return rank
    return None


def _cited(outcome: Outcome) -> list[str]:
    """The texts of the passages an answer cites, in search order, as bench.userstyle ranks
    them."""
    return [c.hit.text for c in sorted(outcome.answer.citations, key=lambda c: c.hit.rank)]


def evaluate_documents(
    name: str,
    *,
    systems: list[str],
    limit: int | None,
    corpus_limit: int | None,
    cache: Path,
    workdir: Path,
    progress: bool,
) -> SetResult:
    """Top-1 and top-3 of the project (through bench.userstyle) and each peer on a set of
    whole documents."""
    cut, documents, questions = take_documents(
        DATASETS / name, limit=limit, corpus_limit=corpus_limit, workdir=workdir
    )
    answerable = [question for question in questions if question.answerable]
    scores: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int | None]] = {}
    seconds: dict[str, float] = {}
    notes = [
        "top-1 / top-3: the share of the answerable questions whose first 1 / 3 passages hold "
        "the answer (contain a gold line: `bench.userstyle.holds`). The project's passages "
        "are those `Retriever.ask` cites; each peer reads and splits the documents as its "
        "documentation does (`bench/peers.py`: `read_documents`)."
    ]
    indexed: dict[str, int] = {}
    if "project" in systems:
        retriever = _project_documents_index(cut, documents, cache, progress)
        indexed["project"] = len(retriever.chunks)
        started = time.perf_counter()
        outcomes = evaluate(retriever, questions)
        seconds["project"] = time.perf_counter() - started
        found = summary(outcomes)
        scores["project (ask)"] = {"top-1": found["top1"], "top-3": found["top3"]}
        ranks["project (ask)"] = {
            outcome.question.id: first_holding(_cited(outcome)[:3], outcome.question.gold)
            for outcome in outcomes
            if outcome.question.answerable
        }
        unanswerable = len(questions) - len(answerable)
        refused = (
            f", {found['refused_unanswerable']:.3f} of the {unanswerable} unanswerable ones refused"
            if unanswerable
            else ""
        )
        notes.append(
            f"The project's `found`: {found['found_answerable']:.3f} of the answerable "
            f"questions answered{refused}; the answers quote {found['answer_coverage']:.3f} "
            "of the gold lines (`python -m bench.userstyle`)."
        )
    model_path = default_model_path()
    asked = {
        question.id: complete_followup(question.text, question.history) for question in answerable
    }
    for peer in (system for system in systems if system in PEERS):
        records = PEERS[peer].read_documents(documents)
        # The records as the peer read them, so that the cached index is named by its input.
        corpus = cache / "bench" / "documents" / f"{cut}-{peer}" / "corpus.jsonl"
        write_records(records, corpus)
        built = ensure_built(peer, cut, corpus, records, cache / "bench")
        system = built.instance or open_system(peer, built.folder, model_path)
        indexed[peer] = built.chunks
        started = time.perf_counter()
        with _one_torch_thread():
            passages = {
                question.id: system.passages(asked[question.id], 3)
                for question in tqdm(answerable, desc=f"{peer} on {cut}", disable=not progress)
            }
        seconds[peer] = time.perf_counter() - started
        ranks[peer] = {
            question.id: first_holding(passages[question.id], question.gold)
            for question in answerable
        }
        scores[peer] = {
            f"top-{k}": round(
                sum(rank is not None and rank <= k for rank in ranks[peer].values())
                / len(answerable),
                3,
            )
            if answerable
            else float("nan")
            for k in (1, 3)
        }
        del system
    notes.append(
        "Passages indexed: " + ", ".join(f"{who} {count}" for who, count in indexed.items()) + "."
    )
    size = (
        f"{len(answerable)} answerable questions of {len(questions)}, "
        f"{len(document_files(documents))} documents"
    )
    return SetResult(cut, size, DOCUMENT_METRICS, scores, ranks, seconds, tuple(notes))


def _project_documents_index(name: str, documents: Path, cache: Path, progress: bool) -> Retriever:
    """The project's index of a documents folder, as bench.userstyle.open_index builds it
    (default settings, <cache>/eval/<name>), with the embedder loaded once for every set."""
    folder = cache / "eval" / name
    embedder = _embedder()
    if not index_is_current(folder, documents):
        logger.warning("building the %s index in %s (once)", name, folder)
        Retriever.build(documents, folder, embedder=embedder, progress=progress)
    return Retriever.load(folder, embedder=embedder)


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
        columns = result.columns
        lines += [
            f"## {result.name} ({result.size})",
            "",
            "| system | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        best = {m: max(values[m] for values in result.metrics.values()) for m in columns}
        for system, values in result.metrics.items():
            cells = [
                f"**{values[m]:.3f}**" if values[m] == best[m] else f"{values[m]:.3f}"
                for m in columns
            ]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines += ["", *(f"{note}\n" for note in result.notes)]
    return "\n".join(lines).rstrip("\n") + "\n"


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
        (evaluate_documents if name in DOCUMENT_SETS else evaluate_set)(
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
