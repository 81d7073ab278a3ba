"""What the engine's ONNX Runtime int8 backend gains and costs against torch fp32.

    python -m bench.onnx_int8                 # measures, writes docs/onnx_int8.md
    python -m bench.onnx_int8 --quick --cache /tmp/c --output /tmp/o.md   # tiny slice

The int8 model is the engine's default (retriever/modelbuild/onnx_export.py builds it,
offline, once); the fp32 ONNX graph, exported and fused the same way without quantisation,
is built here only to separate ONNX Runtime's gain from int8's.

Measured: embedding throughput on 300-character Chinese passages for torch fp32, ONNX fp32
and ONNX int8; cosine agreement of the ONNX vectors with torch's; and R@10 / Hit@10 of dense
and hybrid retrieval on both evaluation sets with int8 against torch fp32. The issue's rule:
int8 is the default only if R@10 drops by less than 0.01 on both sets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from retriever.modelbuild.default_model import ensure_default_model
from retriever.modelbuild.onnx_export import build_onnx_model
from retriever.modelbuild.staging import staged_folder
from retriever.models import (
    INT8_RECIPE_VERSION,
    MARKER_NAME,
    MODEL_FILE,
    int8_model_dir,
)
from retriever.onnx_embedder import ONNX_BATCH_SIZE, OnnxEmbedder

logger = logging.getLogger(__name__)

FP32_ONNX_NAME = f"onnx-fp32-recipe{INT8_RECIPE_VERSION}"


def fp32_onnx_embedder(cache: Path) -> OnnxEmbedder:
    """The fused fp32 graph, built once under cache/bench (a benchmark's, not the engine's)."""
    folder = cache / "bench" / FP32_ONNX_NAME
    if not (folder / MODEL_FILE).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with staged_folder(folder) as staging:
            started = time.monotonic()
            build_onnx_model(ensure_default_model(cache), staging, quantize=False)
            seconds = {"seconds": round(time.monotonic() - started, 1)}
            (staging / MARKER_NAME).write_text(json.dumps(seconds), encoding="utf-8")
    return OnnxEmbedder(folder, FP32_ONNX_NAME, kernel="onnx-fp32")


# ------------------------------------------------------------------ measuring


def sample_passages(count: int, chars: int = 300) -> list[str]:
    """`count` Chinese passages of `chars` characters, cut from cmrc2018_dev paragraphs."""
    from bench.peers import DATASETS, read_records

    texts = [r.text[:chars] for r in read_records(DATASETS / "cmrc2018_dev" / "corpus.jsonl")]
    long_enough = [text for text in texts if len(text) == chars]
    return (long_enough * (count // max(len(long_enough), 1) + 1))[:count]


@dataclass(frozen=True)
class Throughput:
    backend: str
    passages_per_second: float
    runs: list[float]


def measure_throughput(embedders: dict[str, Any], texts: list[str], runs: int) -> list[Throughput]:
    """Passages per second for each embedder; runs interleaved so drift hits all alike."""
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    for embedder in embedders.values():  # warm-up: first calls allocate and compile
        embedder.encode_passages(texts[:ONNX_BATCH_SIZE])
    for _ in range(runs):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            embedder.encode_passages(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    return [Throughput(n, statistics.median(r), r) for n, r in rates.items()]


def agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Mean and minimum cosine between matching rows of two sets of normalised vectors."""
    cosines = np.sum(reference * other, axis=1)
    return float(cosines.mean()), float(cosines.min())


def evaluate(
    embedder: object, name: str, cache: Path, limit: int | None, corpus_limit: int | None
) -> tuple[str, dict[str, dict[str, float]]]:
    """Dense and hybrid metrics of a project index built with `embedder` on one set."""
    from bench.peers import DATASETS, take_slice
    from retriever.evaluation import find_candidates, load_dataset, open_evaluation_index, score

    dataset, _ = take_slice(
        load_dataset(DATASETS / name),
        limit=limit,
        corpus_limit=corpus_limit,
        workdir=cache / "bench" / "slices",
    )
    retriever = open_evaluation_index(dataset, embedder, cache, progress=False)
    pool = find_candidates(retriever, dataset, progress=False)
    return dataset.name, {
        mode: score(retriever, dataset, pool, mode) for mode in ("dense", "hybrid")
    }


def main(argv: list[str] | None = None) -> int:
    from bench.peers import CACHE, REPO, SETS
    from retriever.embedding import load_embedder
    from retriever.models import DEFAULT_MODEL_NAME

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="model and index cache")
    parser.add_argument("--passages", type=int, default=512, help="passages per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per backend (3)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--quick", action="store_true", help="tiny slices (smoke test)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "onnx_int8.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    limit, corpus_limit = (10, 40) if args.quick else (None, None)
    passages = 8 if args.quick else args.passages
    runs = 1 if args.quick else args.runs

    # Models come from the default cache (they are shared); indexes go to --cache.
    int8 = load_embedder(DEFAULT_MODEL_NAME, cache_dir=CACHE, kernel="onnx-int8")
    torch_fp32 = load_embedder(DEFAULT_MODEL_NAME, cache_dir=CACHE, kernel="torch-fp32")
    embedders: dict[str, Any] = {"torch fp32": torch_fp32}
    folders = {"onnx int8": int8_model_dir(CACHE)}
    if not args.quick:  # the fp32 export only separates ONNX Runtime's gain from int8's
        embedders["onnx fp32"] = fp32_onnx_embedder(CACHE)
        folders["onnx fp32"] = CACHE / "bench" / FP32_ONNX_NAME
    embedders["onnx int8"] = int8

    texts = sample_passages(passages)
    throughput = measure_throughput(embedders, texts, runs)
    questions = list(_questions(limit=50 if not args.quick else 5))
    reference = torch_fp32.encode_passages(texts), torch_fp32.encode_queries(questions)
    cosines = {
        name: (
            agreement(reference[0], embedder.encode_passages(texts)),
            agreement(reference[1], embedder.encode_queries(questions)),
        )
        for name, embedder in embedders.items()
        if name != "torch fp32"
    }

    quality = {}
    for name in args.sets:
        set_name, fp32_metrics = evaluate(torch_fp32, name, args.cache, limit, corpus_limit)
        _, int8_metrics = evaluate(int8, name, args.cache, limit, corpus_limit)
        quality[set_name] = (fp32_metrics, int8_metrics)

    command = "python -m bench.onnx_int8 " + " ".join(sys.argv[1:] if argv is None else argv)
    table = markdown(command.strip(), throughput, cosines, quality, passages, runs, folders)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    return 0


def _questions(limit: int) -> list[str]:
    from bench.peers import DATASETS
    from retriever.evaluation import load_dataset

    return list(load_dataset(DATASETS / "dureader_demo").questions.values())[:limit]


def _model_summary(name: str, folder: Path) -> str:
    """`name`: build seconds (as recorded when it was built, once) and size on disk."""
    seconds = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))["seconds"]
    size = sum(p.stat().st_size for p in folder.glob(f"{MODEL_FILE}*")) / 2**20
    return f"{name} built in {seconds:.0f} s, {size:.0f} MB"


Cosines = dict[str, tuple[tuple[float, float], tuple[float, float]]]
Quality = dict[str, tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]]


def markdown(
    command: str,
    throughput: list[Throughput],
    cosines: Cosines,
    quality: Quality,
    passages: int,
    runs: int,
    folders: dict[str, Path],
) -> str:
    """The report: throughput, agreement with torch, and the quality rule's verdict."""
    base = next(t for t in throughput if t.backend == "torch fp32").passages_per_second
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("torch", "sentence-transformers", "onnx", "onnxruntime")
    )
    lines = [
        "# ONNX Runtime int8 backend: speed and quality",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU  ",
        f"Versions: {versions}  ",
        "Models (export, fusion, quantisation; once): "
        + "; ".join(_model_summary(name, folder) for name, folder in folders.items()),
        "",
        f"## Embedding throughput ({passages} passages of 300 Chinese characters, batch "
        f"{ONNX_BATCH_SIZE} for ONNX, 32 for torch, median of {runs} runs)",
        "",
        "| backend | passages/s | × torch fp32 |",
        "|---|---|---|",
    ]
    for t in throughput:
        lines.append(
            f"| {t.backend} | {t.passages_per_second:.1f} | {t.passages_per_second / base:.2f}× |"
        )
    lines += [
        "",
        "## Agreement with torch fp32 (cosine of matching vectors)",
        "",
        "| backend | passages mean | passages min | questions mean | questions min |",
        "|---|---|---|---|---|",
    ]
    for name, ((p_mean, p_min), (q_mean, q_min)) in cosines.items():
        lines.append(f"| {name} | {p_mean:.4f} | {p_min:.4f} | {q_mean:.4f} | {q_min:.4f} |")
    lines += [
        "",
        "## Retrieval quality, int8 against fp32 (project index built with each)",
        "",
        "| set | mode | R@10 fp32 | R@10 int8 | Δ R@10 | Hit@10 fp32 | Hit@10 int8 | Δ Hit@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    deltas = []  # int8 − fp32 of dense R@10: negative is a drop
    for set_name, (fp32, int8) in quality.items():
        for mode in ("dense", "hybrid"):
            a, b = fp32[mode], int8[mode]
            if mode == "dense":
                deltas.append(b["R@10"] - a["R@10"])
            lines.append(
                f"| {set_name} | {mode} | {a['R@10']:.3f} | {b['R@10']:.3f} "
                f"| {b['R@10'] - a['R@10']:+.4f} | {a['Hit@10']:.3f} | {b['Hit@10']:.3f} "
                f"| {b['Hit@10'] - a['Hit@10']:+.4f} |"
            )
    verdict = "passes" if all(delta > -0.01 for delta in deltas) else "fails"
    lines += [
        "",
        f"Rule (dense R@10 drops by less than 0.01 on both sets): **{verdict}** "
        f"(int8 − fp32: {', '.join(f'{d:+.4f}' for d in deltas)}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
