"""How the engine's costs grow with the corpus, and where approximate search should start.

    python -m bench.scale                    # all three parts; PNGs and docs/scale.md
    python -m bench.scale --parts faiss      # one part
    python -m bench.scale --quick --cache /tmp/c --output-dir /tmp/s   # tiny sizes (smoke)

1. whole: complete project indexes (Retriever.build) of ~1k, 3k and 10k dureader chunks:
   build time, index size on disk, peak memory of building and of serving, query latency.
2. bm25: the lexical backend alone (retriever.backends.bm25s_lexical) over 10k, 100k and 1M
   synthetic Chinese passages, made by drawing dureader sentences at random (a passage is 1–3
   sentences, ~dureader's 87 characters): build time, memory, size, query latency.
3. faiss: exact search (IndexFlatIP) against HNSW (the engine's IndexHNSWFlat, M=32,
   efSearch=128) and IVF over 10k, 100k and 1M synthetic 384-d vectors: build time, memory,
   latency, and recall@10 of the approximate indexes against exact search. Synthetic vectors
   are mixtures of two real dureader passage vectors plus a little noise, so they lie where
   the model's vectors lie (uniform random vectors would make any ANN index look worse than
   it is on real data); the queries are the real dureader questions.

Each measurement runs in a fresh subprocess so that its peak memory is its own. Embedding
100k chunks would take hours on 2 cores, which is why parts 2 and 3 leave the model out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.million import section_of
from bench.peers import CACHE, DATASETS, REPO, Record, index_folder, read_records, write_records
from bench.speed import run_child
from retriever.backends.faiss_dense import HNSW_M

logger = logging.getLogger("bench.scale")

WHOLE_SIZES = (1_000, 3_000, 10_000)
SYNTHETIC_SIZES = (10_000, 100_000, 1_000_000)
QUICK_WHOLE_SIZES = (20,)  # one build and one serve: each child loads the model (~8 s)
QUICK_SYNTHETIC_SIZES = (2_000,)
DEPTH = 50  # what the engine asks of each side: SearchSettings.candidates
HNSW_EF_SEARCH = (64, 128, 256)  # the engine uses 128
SEED = 20_261_128


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _latencies(run: Callable[[Any], object], queries: list[Any]) -> tuple[float, float]:
    """Median and 95th percentile in ms of `run(query)` over the queries, one at a time."""
    run(queries[0])  # first call pays lazy initialisation
    times = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _questions() -> list[str]:
    from retriever.evaluation import load_dataset

    return list(load_dataset(DATASETS / "dureader_demo").questions.values())


# ------------------------------------------------------------ 1. whole indexes


def records_for_chunks(target: int) -> list[Record]:
    """The first dureader passages whose chunks add up to about `target` chunks."""
    from retriever.chunking import chunk_text

    records, chunks = [], 0
    for record in read_records(DATASETS / "dureader_demo" / "corpus.jsonl"):
        if chunks >= target:
            break
        records.append(record)
        chunks += len(chunk_text(record.text))
    return records


def whole(sizes: tuple[int, ...], cache: Path) -> list[dict[str, Any]]:
    questions = cache / "bench" / "scale" / "questions.json"
    questions.parent.mkdir(parents=True, exist_ok=True)
    questions.write_text(json.dumps(_questions(), ensure_ascii=False), encoding="utf-8")
    rows = []
    for target in sizes:
        records = records_for_chunks(target)
        corpus = cache / "bench" / "scale" / f"dureader-{target}" / "corpus.jsonl"
        write_records(records, corpus)
        folder = index_folder(cache / "bench" / "scale", "project", f"dureader-{target}", corpus)
        print(f"  whole index of ~{target} chunks: building", file=sys.stderr, flush=True)
        built = run_child(
            ["_build", "--system", "project", "--corpus", str(corpus), "--folder", str(folder)]
        )
        served = run_child(
            [
                "_serve",
                "--system",
                "project",
                "--folder",
                str(folder),
                "--questions",
                str(questions),
                "--spawned-at",
                repr(time.time()),
            ]
        )
        latencies = sorted(served["latencies_ms"])
        rows.append(
            {
                "passages": len(records),
                "chunks": built["chunks"],
                "build_s": built["seconds"],
                "disk_mb": _folder_mb(folder / "index"),
                "build_peak_rss_mb": built["peak_rss_mb"],
                "serve_peak_rss_mb": served["peak_rss_mb"],
                "cold_start_s": served["cold_start"],
                "latency_p50_ms": statistics.median(latencies),
                "latency_p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            }
        )
    return rows


# ---------------------------------------------------------------- 2. BM25 alone

_SENTENCE = re.compile(r"(?<=[。！？!?；;])")


def synthetic_passages(count: int, seed: int = SEED) -> list[str]:
    """`count` passages of 1–3 dureader sentences drawn at random (sentences reshuffled)."""
    sentences = [
        sentence.strip()
        for record in read_records(DATASETS / "dureader_demo" / "corpus.jsonl")
        for sentence in _SENTENCE.split(record.text)
        if len(sentence.strip()) >= 5
    ]
    rng = random.Random(seed)
    return ["".join(rng.choices(sentences, k=rng.randint(1, 3))) for _ in range(count)]


def child_bm25(size: int, folder: Path) -> dict[str, Any]:
    from retriever.backends.bm25s_lexical import Bm25sLexical
    from retriever.config import LexicalSettings
    from retriever.words import tokenize

    tokenize("预热")  # jieba loads its dictionary once; not part of any size's cost
    passages = synthetic_passages(size)
    before = _rss_mb()
    started = time.perf_counter()
    index = Bm25sLexical.create(LexicalSettings())
    index.add(range(len(passages)), passages)
    folder.mkdir(parents=True, exist_ok=True)
    index.save(folder)  # bm25s builds its score matrix here: the build includes writing it
    build_s = time.perf_counter() - started
    after = _rss_mb()
    del passages

    def run(question: str) -> None:
        index.search(question, DEPTH)  # what the searcher asks of the lexical side

    p50, p95 = _latencies(run, _questions())
    return {
        "passages": size,
        "build_s": build_s,
        "index_rss_mb": after - before,
        "peak_rss_mb": _peak_rss_mb(),
        "disk_mb": _folder_mb(folder),
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
    }


# --------------------------------------------------------------- 3. FAISS alone


def real_vectors() -> np.ndarray:
    """The dureader passage vectors of the project's evaluation index (built by bench.quality
    or `python -m retriever eval`)."""
    import faiss

    index = CACHE / "eval" / "dureader_demo-multilingual-e5-small-torch-fp32"
    path = index / "dense" / "vectors.faiss"
    if not path.is_file():
        raise FileNotFoundError(
            f"there is no {path}: run `python -m retriever eval bench/datasets/dureader_demo "
            "--kernel torch-fp32` once to build it"
        )
    index = faiss.downcast_index(faiss.read_index(str(path)).index)  # inside the IndexIDMap2
    return index.reconstruct_n(0, index.ntotal)


def query_vectors() -> np.ndarray:
    """The dureader questions encoded by the default model, cached beside the benchmarks.

    Encoded with the project's normalisation and query prefix, as the engine encodes them."""
    path = CACHE / "bench" / "scale" / "dureader_question_vectors.npy"
    if path.is_file():
        return np.load(path)
    from retriever.embedding import load_embedder
    from retriever.text import normalize

    embedder = load_embedder(cache_dir=CACHE)
    vectors = embedder.encode_queries([normalize(q) for q in _questions()])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def random_base(count: int = 300, dim: int = 384, seed: int = SEED) -> np.ndarray:
    """Stand-in for the real vectors in --quick runs, which must not need a built index."""
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_vectors(count: int, base: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Normalised mixtures a·x_i + (1−a)·x_j + noise of real passage vectors, a in [0.5, 1]."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):  # in blocks, to keep temporaries small
        n = min(100_000, count - start)
        a = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
        i, j = rng.integers(0, len(base), n), rng.integers(0, len(base), n)
        block = a * base[i] + (1 - a) * base[j]
        block += rng.normal(0, 0.02, size=block.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + n] = block
    return out


def child_faiss(size: int, kind: str, *, quick: bool = False) -> list[dict[str, Any]]:
    """Build one index kind over `size` vectors; latency and recall@10 against exact search."""
    import faiss

    base = random_base() if quick else real_vectors()
    vectors = synthetic_vectors(size, base)
    queries = synthetic_vectors(20, base, seed=SEED + 1) if quick else query_vectors()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    if kind != "flat":
        del exact
    started = time.perf_counter()
    if kind == "flat":
        index = exact  # a flat index is built by copying the vectors: no build time to speak of
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.add(vectors)
    else:  # IVF, cells as txtai and the faiss wiki suggest: about 4·√n
        cells = max(1, int(4 * np.sqrt(size)))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(SEED).choice(size, min(size, 100 * cells), False)]
        index.train(sample)
        index.add(vectors)
    build_s = 0.0 if kind == "flat" else time.perf_counter() - started
    # The serialised size is what the index holds (vectors, graph, lists); RSS differences
    # are blurred by the allocator at small sizes.
    index_mb = faiss.serialize_index(index).nbytes / 2**20
    # The engine searches a single question on one OpenMP thread (retriever.threads):
    # latency is measured the same way; builds above used every core.
    faiss.omp_set_num_threads(1)
    settings = {"flat": [None], "hnsw": list(HNSW_EF_SEARCH), "ivf": [8, 32, 64]}[kind]
    rows = []
    for setting in settings:
        if kind == "hnsw":
            index.hnsw.efSearch = setting
        elif kind == "ivf":
            index.nprobe = setting
        _, found = index.search(queries, 10)
        recall = float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )
        p50, p95 = _latencies(lambda q: index.search(q.reshape(1, -1), DEPTH), list(queries))
        rows.append(
            {
                "vectors": size,
                "kind": kind,
                "setting": setting,
                "build_s": build_s,
                "index_mb": index_mb,
                "peak_rss_mb": _peak_rss_mb(),
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
                "recall_at_10": recall,
            }
        )
    return rows


# -------------------------------------------------------------------- plotting


def _plot_grid(path: Path, x_label: str, panels: list[tuple[str, dict[str, tuple]]]) -> None:
    """One PNG of up to four panels; each panel maps a series name to (xs, ys)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 2
    rows = (len(panels) + 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(10, 4 * rows), squeeze=False)
    for axis, (title, series) in zip(axes.flat, panels, strict=False):
        for name, (xs, ys) in series.items():
            axis.plot(xs, ys, marker="o", label=name)
        axis.set_title(title)
        axis.set_xlabel(x_label)
        axis.set_xscale("log")
        values = [y for _, ys in series.values() for y in ys if y > 0]
        if values and max(values) > 20 * min(values):  # exact vs approximate: ~100× apart
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
        if len(series) > 1:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_whole(rows: list[dict[str, Any]], path: Path) -> None:
    xs = [r["chunks"] for r in rows]
    _plot_grid(
        path,
        "chunks",
        [
            ("build time (s)", {"build": (xs, [r["build_s"] for r in rows])}),
            ("index size on disk (MB)", {"index folder": (xs, [r["disk_mb"] for r in rows])}),
            (
                "peak memory (MB)",
                {
                    "building": (xs, [r["build_peak_rss_mb"] for r in rows]),
                    "serving": (xs, [r["serve_peak_rss_mb"] for r in rows]),
                },
            ),
            (
                "query latency, hybrid (ms)",
                {
                    "median": (xs, [r["latency_p50_ms"] for r in rows]),
                    "p95": (xs, [r["latency_p95_ms"] for r in rows]),
                },
            ),
        ],
    )


def plot_bm25(rows: list[dict[str, Any]], path: Path) -> None:
    xs = [r["passages"] for r in rows]
    _plot_grid(
        path,
        "passages",
        [
            ("BM25 build time (s)", {"build": (xs, [r["build_s"] for r in rows])}),
            ("BM25 size on disk (MB)", {"bm25 folder": (xs, [r["disk_mb"] for r in rows])}),
            ("BM25 memory (MB)", {"index in RAM": (xs, [r["index_rss_mb"] for r in rows])}),
            (
                "BM25 query latency (ms)",
                {
                    "median": (xs, [r["latency_p50_ms"] for r in rows]),
                    "p95": (xs, [r["latency_p95_ms"] for r in rows]),
                },
            ),
        ],
    )


def plot_faiss(rows: list[dict[str, Any]], path: Path) -> None:
    def series(metric: str) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        for r in rows:
            name = r["kind"] + ("" if r["setting"] is None else f" {r['setting']}")
            xs, ys = out.setdefault(name, ([], []))
            xs.append(r["vectors"])
            ys.append(r[metric])
        return out

    def first_setting(metric: str) -> dict[str, tuple]:
        # Build time and memory do not depend on the search setting: one line per kind.
        return {
            name.split()[0]: value
            for name, value in series(metric).items()
            if name in ("flat", "hnsw 128", "ivf 32")
        }

    _plot_grid(
        path,
        "vectors (384-d)",
        [
            ("build time (s)", first_setting("build_s")),
            ("index memory (MB)", first_setting("index_mb")),
            ("query latency, median (ms), top 50", series("latency_p50_ms")),
            ("recall@10 against exact", series("recall_at_10")),
        ],
    )


# ------------------------------------------------------------------------ report


@dataclass(frozen=True)
class Tables:
    whole: list[dict[str, Any]]
    bm25: list[dict[str, Any]]
    faiss: list[dict[str, Any]]


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> list[str]:
    """Markdown rows: columns are (header, key, format)."""
    lines = [
        "| " + " | ".join(h for h, _, _ in columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append("–" if value is None else format(value, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(tables: Tables, command: str, plots: dict[str, Path]) -> str:
    lines = [
        "# How cost grows with the corpus",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; one run per size "
        "(each in a fresh process)",
        "",
    ]
    if tables.whole:
        lines += ["## Whole project indexes (dureader passages)", ""]
        lines += _table(
            tables.whole,
            [
                ("chunks", "chunks", "d"),
                ("build s", "build_s", ".1f"),
                ("disk MB", "disk_mb", ".1f"),
                ("build peak MB", "build_peak_rss_mb", ".0f"),
                ("serve peak MB", "serve_peak_rss_mb", ".0f"),
                ("cold start s", "cold_start_s", ".2f"),
                ("p50 ms", "latency_p50_ms", ".1f"),
                ("p95 ms", "latency_p95_ms", ".1f"),
            ],
        )
        lines += ["", f"![whole indexes]({plots['whole'].name})", ""]
    if tables.bm25:
        lines += ["## BM25 alone (the bm25s backend over synthetic passages)", ""]
        lines += _table(
            tables.bm25,
            [
                ("passages", "passages", "d"),
                ("build s", "build_s", ".1f"),
                ("RAM MB", "index_rss_mb", ".0f"),
                ("peak MB", "peak_rss_mb", ".0f"),
                ("disk MB", "disk_mb", ".1f"),
                ("p50 ms", "latency_p50_ms", ".1f"),
                ("p95 ms", "latency_p95_ms", ".1f"),
            ],
        )
        lines += ["", f"![bm25]({plots['bm25'].name})", ""]
    if tables.faiss:
        lines += ["## FAISS alone: exact against approximate (synthetic 384-d vectors)", ""]
        lines += _table(
            tables.faiss,
            [
                ("vectors", "vectors", "d"),
                ("index", "kind", "s"),
                ("efSearch / nprobe", "setting", ""),
                ("build s", "build_s", ".1f"),
                ("memory MB", "index_mb", ".0f"),
                ("p50 ms", "latency_p50_ms", ".2f"),
                ("p95 ms", "latency_p95_ms", ".2f"),
                ("recall@10", "recall_at_10", ".3f"),
            ],
        )
        lines += ["", f"![faiss]({plots['faiss'].name})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "_bm25":
        print(json.dumps(child_bm25(int(argv[1]), Path(argv[2]))))
        return 0
    if argv and argv[0] == "_faiss":
        print(json.dumps(child_faiss(int(argv[1]), argv[2], quick="--quick" in argv)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts", nargs="+", default=["whole", "bm25", "faiss"], choices=["whole", "bm25", "faiss"]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="index cache (.cache)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    whole_sizes = QUICK_WHOLE_SIZES if args.quick else WHOLE_SIZES
    synthetic_sizes = QUICK_SYNTHETIC_SIZES if args.quick else SYNTHETIC_SIZES
    plots = {name: args.output_dir / f"scale_{name}.png" for name in ("whole", "bm25", "faiss")}
    # Parts run separately add up: results of the parts not run now come from the last run.
    raw = args.cache / "bench" / "scale" / "scale_raw.json"
    previous = json.loads(raw.read_text(encoding="utf-8")) if raw.is_file() else {}
    if args.quick:
        previous = {}
    tables = Tables(
        *(
            [] if part in args.parts else previous.get(part, [])
            for part in ("whole", "bm25", "faiss")
        )
    )
    if "whole" in args.parts:
        tables.whole.extend(whole(whole_sizes, args.cache))
        plot_whole(tables.whole, plots["whole"])
    if "bm25" in args.parts:
        for size in synthetic_sizes:
            print(f"  bm25 over {size} passages", file=sys.stderr, flush=True)
            folder = args.cache / "bench" / "scale" / f"bm25-{size}"
            tables.bm25.append(run_child(["_bm25", str(size), str(folder)], "bench.scale"))
        plot_bm25(tables.bm25, plots["bm25"])
    if "faiss" in args.parts:
        if not args.quick:
            query_vectors()  # encode the questions once, outside the timed children
        for size in synthetic_sizes:
            for kind in ("flat", "hnsw", "ivf"):
                print(f"  faiss {kind} over {size} vectors", file=sys.stderr, flush=True)
                quick = ["--quick"] if args.quick else []
                tables.faiss.extend(run_child(["_faiss", str(size), kind, *quick], "bench.scale"))
        plot_faiss(tables.faiss, plots["faiss"])
    command = ("python -m bench.scale " + " ".join(argv)).strip()
    if set(args.parts) != {"whole", "bm25", "faiss"} and not args.quick:
        command += " (other parts from an earlier run: see the dates in BENCHMARKS.md)"
    report = markdown(tables, command, plots)
    print(report)
    for part, path in plots.items():  # plots of parts from an earlier run, redrawn
        if part not in args.parts and getattr(tables, part):
            {"whole": plot_whole, "bm25": plot_bm25, "faiss": plot_faiss}[part](
                getattr(tables, part), path
            )
    output = args.output_dir / "scale.md"
    # The million section is bench.million's: kept as it was.
    kept = section_of(output.read_text(encoding="utf-8")) if output.is_file() else ""
    output.write_text(report + ("\n" + kept + "\n" if kept else ""), encoding="utf-8")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(tables.__dict__, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
