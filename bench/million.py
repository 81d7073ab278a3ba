"""The dense side at a million chunks: FAISS HNSW against Milvus Lite, through the backends.

    nice -n 10 python -m bench.million --engine faiss --size 1000000
    nice -n 10 python -m bench.million --engine milvus-lite --size 100000 --size 300000
    python -m bench.million --quick                          # 5,000 vectors, both engines (smoke)

Vectors: synthetic, 384-d (the default model's, multilingual-e5-small), made as bench.scale
makes them: normalised mixtures a·x_i + (1−a)·x_j + N(0, 0.02²) noise of two real dureader
passage vectors of the project's evaluation index (a in [0.5, 1]), so they lie where the
model's vectors lie. Queries: the 196 real dureader questions, encoded by the default model
(bench.scale's cache). Ground truth: the exact top 10 of FAISS's IndexFlatIP.

Each engine runs through the project's own backend classes (retriever.backends.faiss_dense,
milvus_dense), as the engine's build calls them: `create(dim)`, one `add(ids, vectors)` of
every vector, `save(folder)`; then, in a fresh process, `load(folder)`, single-question
searches for the top 50 (SearchSettings.candidates), and one document added (10 chunks) and
saved to a new folder, which is what an update does to the dense side. So the index kinds
and parameters are the product's: HNSW M=32 from 100,000 vectors, efSearch 256 above
500,000 in FAISS, 128 below; HNSW M=32, efConstruction 40, ef 128 in Milvus.

Each step runs in its own subprocess so that its peak memory (VmHWM) is its own. The
results are appended as JSON lines to --output; `--report` writes them as the million section
of docs/scale.md (between the MARKS below, which `python -m bench.scale` keeps when it
rewrites the rest of the page).

    python -m bench.million --report --output /tmp/bench_million.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers import CACHE, REPO

DIM = 384
DEPTH = 50  # what the engine asks the dense side for: SearchSettings.candidates
DOCUMENT_CHUNKS = 10  # "one document" added after the build
SEED = 20_261_208
ENGINES = ("faiss", "milvus-lite")
MARKS = ("<!-- bench.million: start -->", "<!-- bench.million: end -->")
SCALE_PAGE = REPO / "docs" / "scale.md"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def base_vectors() -> np.ndarray:
    """The dureader passage vectors of an evaluation index of the default model."""
    import faiss

    for kernel in ("torch-fp32", "torch-bf16", "onnx-int8"):
        path = CACHE / "eval" / f"dureader_demo-multilingual-e5-small-{kernel}" / "dense"
        if (path / "vectors.faiss").is_file():
            outer = faiss.read_index(str(path / "vectors.faiss"))  # kept: it owns the inner
            inner = faiss.downcast_index(outer.index)
            return inner.reconstruct_n(0, inner.ntotal)
    raise FileNotFoundError(
        "no dureader_demo index of the default model under .cache/eval: run "
        "`python -m retriever eval bench/datasets/dureader_demo` once"
    )


def random_base(count: int = 300) -> np.ndarray:
    vectors = np.random.default_rng(SEED).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def prepare(size: int, work: Path, *, quick: bool) -> None:
    """vectors.npy, queries.npy and truth.npy (exact top 10) for `size` vectors in `work`."""
    import faiss

    from bench.scale import synthetic_vectors

    if (work / "truth.npy").is_file():
        return
    work.mkdir(parents=True, exist_ok=True)
    base = random_base() if quick else base_vectors()
    vectors = synthetic_vectors(size, base, seed=SEED)
    if quick:
        queries = synthetic_vectors(50, base, seed=SEED + 1)
    else:
        queries = np.load(CACHE / "bench" / "scale" / "dureader_question_vectors.npy")
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(np.ascontiguousarray(queries, dtype=np.float32), 10)
    np.save(work / "vectors.npy", vectors)
    np.save(work / "queries.npy", queries.astype(np.float32))
    np.save(work / "truth.npy", truth)


def backend_class(engine: str):
    if engine == "faiss":
        from retriever.backends.faiss_dense import FaissDense

        return FaissDense
    from retriever.backends.milvus_dense import MilvusDense

    return MilvusDense


def child_build(engine: str, work: Path) -> dict[str, Any]:
    vectors = np.load(work / "vectors.npy")
    folder = work / f"{engine}-built"
    folder.mkdir()
    cls = backend_class(engine)
    started, cpu = time.perf_counter(), time.process_time()
    backend = cls.create(DIM)
    backend.add(list(range(len(vectors))), vectors)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu  # every thread's: on a shared machine, the work
    started = time.perf_counter()
    backend.save(folder)
    save_s = time.perf_counter() - started
    return {
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "save_s": save_s,
        "disk_mb": folder_mb(folder),
        "build_peak_mb": peak_mb(),
        "vectors_mb": vectors.nbytes / 2**20,
    }


def child_serve(engine: str, work: Path, runs: int) -> dict[str, Any]:
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    size = len(np.load(work / "vectors.npy", mmap_mode="r"))
    cls = backend_class(engine)
    before = rss_mb()
    started = time.perf_counter()
    backend = cls.load(work / f"{engine}-built")
    load_s = time.perf_counter() - started
    backend.search(queries[0], DEPTH)  # the first call pays lazy initialisation
    found = [[i for i, _ in backend.search(q, DEPTH)[:10]] for q in queries]
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
    p50s, p95s = [], []
    for _ in range(runs):
        times = []
        for query in queries:
            t = time.perf_counter()
            backend.search(query, DEPTH)
            times.append((time.perf_counter() - t) * 1000)
        p50s.append(float(np.percentile(times, 50)))
        p95s.append(float(np.percentile(times, 95)))
    serve_rss = rss_mb() - before
    serve_peak = peak_mb()
    # One document: 10 new chunks, added to the loaded index and saved to a new folder.
    rng = np.random.default_rng(SEED + 2)
    new = rng.normal(size=(DOCUMENT_CHUNKS, DIM)).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    started = time.perf_counter()
    backend.add(list(range(size, size + DOCUMENT_CHUNKS)), new)
    add_s = time.perf_counter() - started
    updated = work / f"{engine}-updated"
    updated.mkdir()
    started = time.perf_counter()
    backend.save(updated)
    update_save_s = time.perf_counter() - started
    return {
        "load_s": load_s,
        "p50_ms": statistics.median(p50s),
        "p95_ms": statistics.median(p95s),
        "runs": runs,
        "queries": len(queries),
        "recall_at_10": recall,
        "serve_rss_mb": serve_rss,
        "serve_peak_mb": serve_peak,
        "add_document_s": add_s,
        "add_document_save_s": update_save_s,
        "update_peak_mb": peak_mb(),
    }


def section_of(text: str) -> str:
    """The million section of a scale page, marks included; "" when it has none."""
    start, end = text.find(MARKS[0]), text.find(MARKS[1])
    if start < 0 or end < start:
        return ""
    return text[start : end + len(MARKS[1])]


def report(rows: list[dict[str, Any]], notes: str) -> str:
    """The million section: one row per engine and size, then `notes` (markdown)."""
    columns = [
        ("engine", "engine", "s"),
        ("vectors", "vectors", ",d"),
        ("build s", "build_s", ".0f"),
        ("build CPU s", "build_cpu_s", ".0f"),
        ("save s", "save_s", ".1f"),
        ("disk MB", "disk_mb", ".0f"),
        ("build peak MB", "build_peak_mb", ".0f"),
        ("load s", "load_s", ".1f"),
        ("serving RSS MB", "serve_rss_mb", ".0f"),
        ("p50 ms", "p50_ms", ".2f"),
        ("p95 ms", "p95_ms", ".2f"),
        ("recall@10", "recall_at_10", ".3f"),
        ("add 1 doc s", "add_document_s", ".2f"),
        ("save after s", "add_document_save_s", ".1f"),
        ("load avg", "load_average", ".1f"),
    ]
    lines = [
        MARKS[0],
        "## The dense side at a million chunks: FAISS HNSW against Milvus Lite",
        "",
        "Command: `nice -n 10 python -m bench.million --engine ENGINE --size N` "
        "(bench/million.py, one size and engine per run)  ",
        f"CPU: {rows[0]['cpu']}, {rows[0]['cores']} cores shared with other work (load "
        "average at the start of each run in the last column)  ",
        "Dates: " + ", ".join(sorted({row["date"] for row in rows})),
        "",
        "| " + " | ".join(h for h, _, _ in columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for row in sorted(rows, key=lambda r: (r["vectors"], r["engine"])):
        cells = ["–" if row.get(k) is None else format(row[k], f) for _, k, f in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", notes.strip(), MARKS[1]]
    return "\n".join(lines)


def write_report(results: Path, notes_file: Path | None, page_path: Path = SCALE_PAGE) -> None:
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line]
    notes = notes_file.read_text(encoding="utf-8") if notes_file else ""
    page = page_path.read_text(encoding="utf-8")
    old = section_of(page)
    new = report(rows, notes)
    page = page.replace(old, new) if old else page.rstrip("\n") + "\n\n" + new + "\n"
    page_path.write_text(page, encoding="utf-8")


def run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.million", *args],
        cwd=REPO,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", action="append", choices=ENGINES)
    parser.add_argument("--size", action="append", type=int)
    parser.add_argument("--runs", type=int, default=3, help="search runs; medians reported")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=Path("/tmp/bench_million.jsonl"))
    parser.add_argument("--quick", action="store_true", help="5,000 vectors (a smoke run)")
    parser.add_argument("--report", action="store_true", help="write --output into scale.md")
    parser.add_argument("--notes", type=Path, help="with --report: markdown put under the table")
    parser.add_argument("--page", type=Path, default=SCALE_PAGE, help="with --report: the page")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, engine = args.child
        if step == "prepare":
            prepare(int(engine), args.work, quick=args.quick)
            result: dict[str, Any] = {"prepared": True, "peak_mb": peak_mb()}
        elif step == "build":
            result = child_build(engine, args.work)
        else:
            result = child_serve(engine, args.work, args.runs)
        print(json.dumps(result))
        return 0

    if args.report:
        write_report(args.output, args.notes, args.page)
        return 0
    engines = args.engine or list(ENGINES)
    sizes = args.size or ([5_000] if args.quick else [1_000_000])
    with tempfile.TemporaryDirectory(prefix="bench_million_", dir=args.work) as scratch:
        for size in sizes:
            work = Path(scratch) / str(size)
            flags = ["--work", str(work), "--runs", str(args.runs)]
            flags += ["--quick"] if args.quick else []
            log(f"{size} vectors: preparing the vectors and the exact top 10")
            run_child(["--child", "prepare", str(size), *flags])
            for engine in engines:
                log(f"{size} vectors: {engine} build")
                row: dict[str, Any] = {
                    "engine": engine,
                    "vectors": size,
                    "cpu": cpu_name(),
                    "cores": os.cpu_count(),
                    "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                    "load_average": os.getloadavg()[0],
                }
                row.update(run_child(["--child", "build", engine, *flags]))
                log(f"{size} vectors: {engine} built in {row['build_s']:.1f} s; serving")
                row.update(run_child(["--child", "serve", engine, *flags]))
                row["load_average_after"] = os.getloadavg()[0]
                log(json.dumps(row))
                with args.output.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
