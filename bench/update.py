"""What adding one document to a large index costs, now that a build updates per document.

    python -m bench.update                 # 10k and 100k chunks, 5 runs; writes docs/update.md
    python -m bench.update --quick --cache /tmp/c --output /tmp/u.md   # tiny (smoke test)

A base index of N chunks is built once and cached (<cache>/bench/update/): N distinct
synthetic passages of 1–3 shuffled dureader sentences (bench.scale), 100 to a .jsonl file,
embedded by a stand-in that carries the default model's name and dimension and gives each
text a random unit vector (the real model would take hours over 100k chunks on 2 cores).
Every run starts from a fresh copy of that index, with the real int8 model loaded (and its
build-time session opened) once beforehand, as a server holds it:

1. add: a 3,000-character document (cmrc2018 paragraphs) is put in the corpus, and
   `Retriever.build` runs; the document is embedded by the real model;
2. unchanged: `Retriever.build` again, over the same corpus;
3. remove: the document is deleted, and `Retriever.build` runs again.

The add is also split into stages, by timing the functions the build calls. Medians of the
runs; from 100,000 chunks on the dense index is HNSW, which cannot remove a vector, so there
a removal rebuilds the graph.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.peers import CACHE, DATASETS, REPO, Record, read_records, write_records
from bench.quality import _cores, _memory_gb
from bench.scale import SEED, synthetic_passages
from retriever import Retriever
from retriever.models import DEFAULT_MODEL_NAME
from retriever.passages import duplicate_key

SIZES = (10_000, 100_000)
QUICK_SIZES = (300, 1_000)
DOCUMENT_CHARS = 3_000
PER_FILE = 100  # passages per .jsonl file of the base corpus


class StandIn:
    """The default model's name and dimension, and a random unit vector per text: a base
    index the real model can update, built in seconds rather than hours."""

    name = DEFAULT_MODEL_NAME
    dim = 384
    kernel = "stand-in"

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.stack([self._vector(text) for text in texts])
        return vectors.reshape(len(texts), self.dim)

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        vector = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        return vector / np.linalg.norm(vector)


def base_index(size: int, cache: Path) -> tuple[Path, Path, int]:
    """The cached corpus and index of `size` synthetic passages: (corpus, index, chunks)."""
    folder = cache / "bench" / "update" / f"base-{size}"
    corpus, index = folder / "corpus", folder / "index"
    marker = folder / "built.json"
    if not marker.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        passages = distinct_passages(size)
        for start in range(0, size, PER_FILE):
            records = [
                Record(f"p{i}", "", text)
                for i, text in enumerate(passages[start : start + PER_FILE], start)
            ]
            write_records(records, corpus / f"part{start // PER_FILE:05d}.jsonl")
        print(f"  building the base index of {size:,} passages (once)", file=sys.stderr)
        report = Retriever.build(corpus, index, embedder=StandIn())
        marker.write_text(json.dumps({"chunks": report.index.chunks}), encoding="utf-8")
    return corpus, index, json.loads(marker.read_text(encoding="utf-8"))["chunks"]


def distinct_passages(count: int) -> list[str]:
    """`count` synthetic passages, none a repeat of another (the index would hold it once)."""
    passages: list[str] = []
    seen: set[str] = set()
    seed = SEED
    while len(passages) < count:
        for text in synthetic_passages(count, seed=seed):
            key = duplicate_key(text)
            if key not in seen and len(passages) < count:
                seen.add(key)
                passages.append(text)
        seed += 1
    return passages


def new_document() -> str:
    """About DOCUMENT_CHARS characters of cmrc2018 paragraphs, one a line."""
    lines, length = [], 0
    for record in read_records(DATASETS / "cmrc2018_dev" / "corpus.jsonl")[-40:]:
        if length >= DOCUMENT_CHARS:
            break
        lines.append(record.text[: DOCUMENT_CHARS - length])
        length += len(lines[-1])
    return "\n".join(lines)


@contextmanager
def stage_clock(embedder) -> Iterator[dict[str, float]]:
    """Seconds spent in each stage of the builds run inside the block, by wrapping the
    functions a build calls (restored afterwards)."""
    import bm25s

    import retriever.building
    from retriever.backends.bm25s_lexical import Bm25sLexical
    from retriever.backends.faiss_dense import FaissDense
    from retriever.index import Index

    clock: dict[str, float] = defaultdict(float)
    stages = [
        (retriever.building, "file_hashes", "hash the corpus"),
        (retriever.building, "_previous_index", "load the previous index"),
        (retriever.building, "read_one", "read and chunk the document"),
        (retriever.building, "passages_of", "read and chunk the document"),
        (embedder, "encode_passages", "embed (int8 model)"),
        (FaissDense, "add", "FAISS add and delete"),
        (FaissDense, "delete", "FAISS add and delete"),
        (Bm25sLexical, "add", "tokenise"),
        (bm25s.BM25, "index", "BM25 matrix from the saved tokens"),
        (Index, "save", "write and swap in"),
    ]
    originals = [(target, name, getattr(target, name)) for target, name, _ in stages]
    for (target, name, stage), (_, _, real) in zip(stages, originals, strict=True):
        setattr(target, name, _timed(real, stage, clock))
    try:
        yield clock
    finally:
        for target, name, real in originals:
            setattr(target, name, real)
    # BM25's matrix is rebuilt while the index is written: count it once.
    clock["write and swap in"] -= clock["BM25 matrix from the saved tokens"]


def _timed(real: Callable, stage: str, clock: dict[str, float]) -> Callable:
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            clock[stage] += time.perf_counter() - started

    return timed


def measure(size: int, cache: Path, runs: int, embedder) -> dict:
    corpus, base, chunks = base_index(size, cache)
    work = cache / "bench" / "update" / "work"
    document = corpus / "added.txt"
    text = new_document()
    timings: dict[str, list[float]] = defaultdict(list)
    embedded = 0
    for run in range(runs):
        print(f"  {chunks:,} chunks: run {run + 1} of {runs}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work / "index")
        document.write_text(text, encoding="utf-8")
        try:
            with stage_clock(embedder) as clock:
                started = time.perf_counter()
                report = Retriever.build(corpus, work / "index", embedder=embedder)
                timings["add"].append(time.perf_counter() - started)
            for stage, seconds in clock.items():
                timings[stage].append(seconds)
            embedded = report.embedded
            assert report.read == ("added.txt",), report.read
            timings["unchanged"].append(_timed_build(corpus, work / "index", embedder))
        finally:
            document.unlink()
        timings["remove"].append(_timed_build(corpus, work / "index", embedder))
    shutil.rmtree(work, ignore_errors=True)
    return {
        "chunks": chunks,
        "document_chars": len(text),
        "embedded": embedded,
        "hnsw": Retriever.load(base, embedder=embedder).index.dense.is_hnsw,
        "seconds": {name: values for name, values in timings.items()},
    }


def _timed_build(corpus: Path, index: Path, embedder) -> float:
    started = time.perf_counter()
    Retriever.build(corpus, index, embedder=embedder)
    return time.perf_counter() - started


def markdown(results: list[dict], command: str, runs: int) -> str:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

    lines = [
        "# Updating an index: one document added to a large index",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {_cpu()}, {_cores()} cores, {_memory_gb()} GB, no GPU  ",
        f"Seconds, median of {runs} runs (min–max), model loaded beforehand.",
        "",
        "| chunks | dense index | document | add | unchanged corpus | remove it again |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        seconds = r["seconds"]
        kind = "HNSW" if r["hnsw"] else "flat"
        lines.append(
            f"| {r['chunks']:,} | {kind} | {r['document_chars']:,} chars, {r['embedded']} "
            f"chunks | {cell(seconds['add'])} | {cell(seconds['unchanged'])} | "
            f"{cell(seconds['remove'])} |"
        )
    stages = [name for name in results[0]["seconds"] if name not in ("add", "unchanged", "remove")]
    lines += ["", "Where the add's time goes (median seconds):", ""]
    lines += ["| stage | " + " | ".join(f"{r['chunks']:,} chunks" for r in results) + " |"]
    lines += ["|---" * (len(results) + 1) + "|"]
    for stage in stages:
        cells = [f"{statistics.median(r['seconds'][stage]):.2f}" for r in results]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    from retriever.embedding import load_embedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per size (5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where base indexes are kept")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "update.md")
    args = parser.parse_args(argv)
    sizes, runs = (QUICK_SIZES, 1) if args.quick else (tuple(args.sizes), args.runs)
    embedder = load_embedder(cache_dir=CACHE)  # the model is shared; indexes go to --cache
    # A server's first build opens the model's all-cores session (about a second, once):
    # opened here, so that every run measures what later updates cost.
    embedder.encode_passages(["预热"])
    results = [measure(size, args.cache, runs, embedder) for size in sizes]
    command = "python -m bench.update " + " ".join(sys.argv[1:] if argv is None else argv)
    table = markdown(results, command.strip(), runs)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
