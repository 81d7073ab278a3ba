"""BM25 in Milvus Lite (lexical backend "milvus") against bm25s, and its drift after updates
(issue 23, item 4; docs/milvus.md, "Words in Milvus").

    RETRIEVER_KERNEL=onnx-int8 nice -n 10 python -m bench.milvus_lexical quality --limit 500
    nice -n 10 python -m bench.milvus_lexical analysis
    nice -n 10 python -m bench.milvus_lexical drift --limit 500

quality: on each shipped set (cmrc2018_dev, dureader_demo, drcd_test), the evaluation index
of retriever.evaluation (FAISS + bm25s, built once into <cache>/eval) is searched as it is and
with its lexical side replaced by a Milvus lexical backend holding the same chunks (saved and
loaded again, as a built index is): R@1, R@10, MRR@10 of BM25 alone and of hybrid search,
through the evaluation's own path (find_candidates, score); and the median and p95 of one
lexical search (the 100 candidates the evaluation asks for). --limit keeps the first N
questions of each set.

analysis: the two things the text field can hold (retriever.backends.milvus_text: the
project's words, or Milvus's jieba analyzer over the normalised text), BM25 alone on the
validation set dureader_faq (not one of the reported sets).

drift: a set's documents (cmrc2018_dev by default), shuffled; the index is built from half of
them, then --updates updates each add an equal share of the rest and replace (delete, add again
under new ids, as an edited file is) --changed of the documents held; between updates the
index is saved and loaded, as builds do. The result is compared with a fresh build of the same
passages: BM25-alone R@1, R@10, MRR@10, the mean share of each question's top 10 passages that
the fresh build also ranks in its top 10, and the largest relative score difference; once
for each --shares value of REBUILD_SHARE (default: infinite, no remedy; and 0, the
backend's default, a rebuild after every update), with the seconds each save took.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.peers import CACHE, DATASETS
from retriever.backends import milvus_lexical
from retriever.backends.milvus_lexical import MilvusLexical
from retriever.config import LexicalSettings
from retriever.evaluation import (
    Dataset,
    find_candidates,
    load_dataset,
    metrics,
    open_evaluation_index,
    passage_id,
    score,
)
from retriever.passages import lexical_text
from retriever.query import search_text
from retriever.search import Retriever

SETS = ("cmrc2018_dev", "dureader_demo", "drcd_test")
VALIDATION = "dureader_faq"
DEPTH = 100  # lexical candidates per question, as retriever.evaluation asks
SHOWN = ("R@1", "R@10", "MRR@10")


def cpu_name() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def first(dataset: Dataset, limit: int | None) -> Dataset:
    ids = list(dataset.questions)[:limit] if limit else list(dataset.questions)
    return replace(dataset, questions={qid: dataset.questions[qid] for qid in ids})


def milvus_copy(
    retriever: Retriever, folder: Path, analysis: str = ""
) -> tuple[MilvusLexical, float]:
    """A Milvus lexical backend holding the retriever's chunks, saved into `folder` and loaded
    back; and the seconds that took."""
    started = time.perf_counter()
    settings = retriever.index.manifest.lexical
    backend = MilvusLexical.create(settings, analysis)
    chunks = retriever.index.chunks
    backend.add([chunk.id for chunk in chunks], [lexical_text(chunk) for chunk in chunks])
    folder.mkdir(parents=True)
    backend.save(folder)
    backend.close()
    loaded = MilvusLexical.load(folder, settings)
    return loaded, time.perf_counter() - started


def with_lexical(retriever: Retriever, lexical) -> Retriever:
    index = replace(retriever.index, lexical=lexical)
    return Retriever(
        retriever.folder,
        index,
        retriever.embedder,
        cache_dir=retriever.cache_dir,
        answerer=retriever.answerer,
    )


def latencies(retriever: Retriever, dataset: Dataset, count: int = 100) -> tuple[float, float]:
    """Median and p95 milliseconds of one lexical search of DEPTH candidates."""
    lexical, times = retriever.index.lexical, []
    for question in list(dataset.questions.values())[:count]:
        text = search_text(question)
        started = time.perf_counter()
        lexical.search(text, DEPTH)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def quality(args: argparse.Namespace) -> list[dict]:
    from retriever.embedding import DEFAULT_EMBEDDER, load_embedder

    embedder = load_embedder(DEFAULT_EMBEDDER, cache_dir=CACHE, kernel="onnx-int8")
    rows = []
    for name in args.sets:
        dataset = first(load_dataset(DATASETS / name), args.limit)
        bm25s = open_evaluation_index(dataset, embedder, CACHE, progress=False)
        work = Path(tempfile.mkdtemp(prefix="bench-milvus-lexical-"))
        try:
            lexical, seconds = milvus_copy(bm25s, work / "lexical")
            systems = {"bm25s": bm25s, "milvus": with_lexical(bm25s, lexical)}
            for engine, retriever in systems.items():
                started = time.perf_counter()
                pool = find_candidates(retriever, dataset, progress=False)
                elapsed = time.perf_counter() - started
                p50, p95 = latencies(retriever, dataset)
                for mode in ("bm25", "hybrid"):
                    rows.append(
                        {
                            "set": name,
                            "questions": len(dataset.questions),
                            "chunks": len(bm25s.index.chunks),
                            "engine": engine,
                            "mode": mode,
                            **score(retriever, dataset, pool, mode),
                            "search_p50_ms": p50,
                            "search_p95_ms": p95,
                            "candidates_s": elapsed,
                            "build_s": seconds if engine == "milvus" else None,
                        }
                    )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            lexical.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def lexical_rankings(backend, dataset: Dataset, doc_of: dict[int, str]) -> dict[str, list[str]]:
    """Each question's first ten passages by BM25 alone."""
    rankings = {}
    for qid, question in dataset.questions.items():
        passages: list[str] = []
        for chunk_id, _ in backend.search(search_text(question), DEPTH):
            passage = passage_id(doc_of[chunk_id])
            if passage not in passages:
                passages.append(passage)
            if len(passages) == 10:
                break
        rankings[qid] = passages
    return rankings


def analysis(args: argparse.Namespace) -> list[dict]:
    from retriever.embedding import DEFAULT_EMBEDDER, load_embedder

    embedder = load_embedder(DEFAULT_EMBEDDER, cache_dir=CACHE, kernel="onnx-int8")
    dataset = first(load_dataset(DATASETS / VALIDATION), args.limit)
    retriever = open_evaluation_index(dataset, embedder, CACHE, progress=False)
    doc_of = {chunk.id: chunk.doc_id for chunk in retriever.index.chunks}
    rows = [
        {
            "analysis": "bm25s",
            **metrics(dataset, lexical_rankings(retriever.index.lexical, dataset, doc_of)),
        }
    ]
    for kind in ("words", "jieba"):
        work = Path(tempfile.mkdtemp(prefix="bench-milvus-lexical-"))
        try:
            backend, seconds = milvus_copy(retriever, work / "lexical", kind)
            rankings = lexical_rankings(backend, dataset, doc_of)
            rows.append({"analysis": kind, **metrics(dataset, rankings), "build_s": seconds})
            backend.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def drift(args: argparse.Namespace) -> list[dict]:
    from retriever.index import Index

    dataset = first(load_dataset(DATASETS / args.set), args.limit)
    evaluation = sorted((CACHE / "eval").glob(f"{args.set}-*-onnx-int8"))
    if not evaluation:
        raise SystemExit(f"no evaluation index of {args.set}: run `python -m retriever eval`")
    chunks = Index.load(evaluation[0]).chunks
    by_document: dict[str, list] = {}
    for chunk in chunks:
        by_document.setdefault(chunk.doc_id, []).append(chunk)
    documents = sorted(by_document)
    random.Random(args.seed).shuffle(documents)
    settings = LexicalSettings()
    rows = []
    for share in args.shares:
        milvus_lexical.REBUILD_SHARE = share
        remedy = "none" if share == float("inf") else f"rebuild past {share:.0%} changed"
        work = Path(tempfile.mkdtemp(prefix="bench-milvus-drift-"))
        try:
            rows.append(_updated(args, work, settings, documents, by_document, dataset, remedy))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    milvus_lexical.REBUILD_SHARE = 0.0
    return rows


def _updated(args, work, settings, documents, by_document, dataset, remedy) -> dict:
    """Build from half the documents, update --updates times, compare with a fresh build."""
    next_id = max(chunk.id for doc in documents for chunk in by_document[doc]) + 1
    doc_of: dict[int, str] = {}
    ids_of: dict[str, list[int]] = {}
    held: list[str] = []

    def add(backend, names: list[str]) -> None:
        nonlocal next_id
        ids, texts = [], []
        for name in names:
            ids_of[name] = []
            for chunk in by_document[name]:
                doc_of[next_id] = name
                ids_of[name].append(next_id)
                ids.append(next_id)
                texts.append(lexical_text(chunk))
                next_id += 1
        backend.add(ids, texts)
        held.extend(names)

    def saved(backend, step: int) -> tuple[MilvusLexical, float]:
        folder = work / f"step{step}"
        folder.mkdir()
        started = time.perf_counter()
        backend.save(folder)
        seconds = time.perf_counter() - started
        backend.close()
        return MilvusLexical.load(folder, settings), seconds

    half = len(documents) // 2
    rest = documents[half:]
    backend = MilvusLexical.create(settings)
    add(backend, documents[:half])
    backend, _ = saved(backend, 0)
    rng = random.Random(args.seed + 1)
    save_seconds = []
    share = (len(rest) + args.updates - 1) // args.updates
    for step in range(1, args.updates + 1):
        changed = rng.sample(held, int(args.changed * len(held)))
        backend.delete([i for name in changed for i in ids_of[name]])
        for name in changed:
            held.remove(name)
        add(backend, changed + rest[(step - 1) * share : step * share])
        backend, seconds = saved(backend, step)
        save_seconds.append(seconds)
    fresh = MilvusLexical.create(settings)
    fresh_ids = [i for name in held for i in ids_of[name]]
    text_of = {}
    for name in held:
        for chunk, chunk_id in zip(by_document[name], ids_of[name], strict=True):
            text_of[chunk_id] = lexical_text(chunk)
    fresh.add(fresh_ids, [text_of[i] for i in fresh_ids])
    fresh, _ = saved(fresh, 99)
    updated_rank = lexical_rankings(backend, dataset, doc_of)
    fresh_rank = lexical_rankings(fresh, dataset, doc_of)
    overlap = statistics.mean(
        len(set(updated_rank[q]) & set(fresh_rank[q])) / max(len(fresh_rank[q]), 1)
        for q in dataset.questions
        if fresh_rank[q]
    )
    worst = 0.0
    for question in list(dataset.questions.values())[:100]:
        ours = dict(backend.search(search_text(question), 10))
        theirs = fresh.scores(search_text(question), list(ours))
        for i, value in ours.items():
            if theirs.get(i):
                worst = max(worst, abs(value - theirs[i]) / theirs[i])
    row = {
        "remedy": remedy,
        "set": args.set,
        "questions": len(dataset.questions),
        "documents": len(held),
        "updates": args.updates,
        "changed_share": args.changed,
        "updated": metrics(dataset, updated_rank),
        "fresh": metrics(dataset, fresh_rank),
        "top10_overlap": round(overlap, 4),
        "max_relative_score_difference": round(worst, 4),
        "save_s_median": statistics.median(save_seconds),
    }
    backend.close()
    fresh.close()
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def markdown_quality(rows: list[dict]) -> str:
    lines = [
        "| set (questions) | mode | engine | R@1 | R@10 | MRR@10 | lexical search p50 / p95 ms |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['set']} ({row['questions']}) | {row['mode']} | {row['engine']} | "
            + " | ".join(f"{row[key]:.3f}" for key in SHOWN)
            + f" | {row['search_p50_ms']:.1f} / {row['search_p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=("quality", "analysis", "drift"))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--set", default="cmrc2018_dev", help="drift: the set")
    parser.add_argument("--limit", type=int, help="the first N questions of each set")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--changed", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument(
        "--shares", type=float, nargs="+", default=[float("inf"), 0.0], help="REBUILD_SHARE"
    )
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_name()}", file=sys.stderr)
    rows = {"quality": quality, "analysis": analysis, "drift": drift}[args.part](args)
    if args.part == "quality":
        print(markdown_quality(rows))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
