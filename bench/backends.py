"""FAISS + bm25s against Milvus Lite + bm25s, side by side (issue 10, item 6).

    python -m bench.backends            # both parts, both backends; a Markdown table on stdout

1. dureader: the evaluation index of dureader_demo (10,438 passages, built once by
   `python -m retriever eval bench/datasets/dureader_demo`, in .cache/eval) with its dense side
   put into each backend from the cached vectors (nothing is embedded again): time to add the
   vectors and save, disk, memory, latency of the dense search (50 candidates, what the engine
   asks) and of a whole `search()`, and R@10 of hybrid search through the evaluation's path.
2. synthetic: 100,000 synthetic 384-d vectors (bench.scale's mixtures of real dureader
   vectors, queried with the real questions): build, disk, memory, latency, and recall@10
   against exact search. Both engines switch to HNSW (M=32) at this size. The lexical side is
   bm25s in both set-ups, so it is left out here (bench.scale measures it alone).

Each measurement runs in a fresh process (bench.speed.run_child), so its memory is its own:
"memory" is the resident memory the dense index added, read before and after building it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers import CACHE, DATASETS
from bench.scale import DEPTH, _folder_mb, _latencies, _rss_mb, query_vectors, synthetic_vectors
from bench.speed import run_child

EVAL_INDEX = CACHE / "eval" / "dureader_demo-multilingual-e5-small-onnx-int8"
SYNTHETIC_SIZE = 100_000
BACKENDS = ("faiss", "milvus")


def _cached_index():
    from retriever.index import Index

    if not EVAL_INDEX.is_dir():
        raise FileNotFoundError(
            f"there is no {EVAL_INDEX}: run `python -m retriever eval "
            "bench/datasets/dureader_demo` once to build it"
        )
    return Index.load(EVAL_INDEX)


def _dense_contents(index) -> tuple[np.ndarray, np.ndarray]:
    """Every chunk id of the cached FAISS index and its vector."""
    return index.dense._contents()


def _build(backend: str, ids: np.ndarray, vectors: np.ndarray, folder: Path):
    """A `backend` index of the vectors, saved into `folder`; (index, seconds, MB added)."""
    from retriever.backends import dense_backend

    before = _rss_mb()
    started = time.perf_counter()
    dense = dense_backend(backend).create(vectors.shape[1])
    dense.add(ids.tolist(), vectors)
    folder.mkdir(parents=True)
    dense.save(folder)
    return dense, time.perf_counter() - started, _rss_mb() - before


def child_dureader(backend: str) -> dict[str, Any]:
    from retriever.config import BackendSettings
    from retriever.embedding import load_embedder
    from retriever.evaluation import find_candidates, load_dataset, score
    from retriever.index import Index
    from retriever.search import Retriever

    cached = _cached_index()
    ids, vectors = _dense_contents(cached)
    work = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    try:
        dense, build_s, memory_mb = _build(backend, ids, vectors, work / "dense")
        queries = list(query_vectors())
        dense_p50, dense_p95 = _latencies(lambda q: dense.search(q, DEPTH), queries)
        manifest = replace(cached.manifest, backends=BackendSettings(dense=backend))
        Index(manifest, cached.passages, dense, cached.lexical).save(work / "index")
        embedder = load_embedder(cache_dir=CACHE)
        started = time.perf_counter()
        retriever = Retriever.load(work / "index", embedder=embedder)
        load_s = time.perf_counter() - started
        dataset = load_dataset(DATASETS / "dureader_demo")
        questions = list(dataset.questions.values())
        search_p50, search_p95 = _latencies(lambda q: retriever.search(q, k=5), questions)
        pool = find_candidates(retriever, dataset, progress=False)
        metrics = score(retriever, dataset, pool, "hybrid")
        return {
            "part": "dureader",
            "backend": backend,
            "vectors": len(ids),
            "build_s": build_s,
            "load_s": load_s,
            "dense_mb": _folder_mb(work / "dense"),
            "index_mb": _folder_mb(work / "index"),
            "memory_mb": memory_mb,
            "dense_p50_ms": dense_p50,
            "dense_p95_ms": dense_p95,
            "search_p50_ms": search_p50,
            "search_p95_ms": search_p95,
            "r_at_10": metrics["R@10"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def child_synthetic(backend: str, size: int = SYNTHETIC_SIZE) -> dict[str, Any]:
    cached = _cached_index()
    _, base = _dense_contents(cached)
    del cached
    vectors = synthetic_vectors(size, base)
    queries = query_vectors()
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    ids = np.arange(size, dtype=np.int64) * 3 + 7  # not 0..n-1, as in an updated index
    work = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    try:
        dense, build_s, memory_mb = _build(backend, ids, vectors, work / "dense")
        found = [[i for i, _ in dense.search(q, 10)] for q in queries]
        recall = float(
            np.mean(
                [len(set(f) & set(ids[t].tolist())) / 10 for f, t in zip(found, truth, strict=True)]
            )
        )
        p50, p95 = _latencies(lambda q: dense.search(q, DEPTH), list(queries))
        return {
            "part": "synthetic",
            "backend": backend,
            "vectors": size,
            "build_s": build_s,
            "dense_mb": _folder_mb(work / "dense"),
            "memory_mb": memory_mb,
            "dense_p50_ms": p50,
            "dense_p95_ms": p95,
            "recall_at_10": recall,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| corpus | backend | build s | load s | disk MB (dense / index) | memory MB "
        "| dense p50 / p95 ms | search() p50 / p95 ms | R@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        dureader = row["part"] == "dureader"
        disk = f"{row['dense_mb']:.0f}" + (f" / {row['index_mb']:.0f}" if dureader else "")
        quality = row["r_at_10"] if dureader else row["recall_at_10"]
        lines.append(
            f"| {row['part']} ({row['vectors']:,}) | {row['backend']} | {row['build_s']:.1f} "
            + (f"| {row['load_s']:.2f} " if dureader else "| – ")
            + f"| {disk} | {row['memory_mb']:.0f} "
            + f"| {row['dense_p50_ms']:.2f} / {row['dense_p95_ms']:.2f} "
            + (
                f"| {row['search_p50_ms']:.1f} / {row['search_p95_ms']:.1f} "
                if dureader
                else "| – "
            )
            + f"| {quality:.3f}{'' if dureader else ' (vs exact)'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("PART", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--parts", nargs="+", default=["dureader", "synthetic"])
    args = parser.parse_args(argv)
    if args.child:
        part, backend = args.child
        run = child_dureader if part == "dureader" else child_synthetic
        print(json.dumps(run(backend)))
        return 0
    rows = []
    for part in args.parts:
        for backend in BACKENDS:
            print(f"{part} / {backend} …", file=sys.stderr)
            rows.append(run_child(["--child", part, backend], module="bench.backends"))
    print(markdown(rows))
    print(json.dumps(rows, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
