"""An ONNX Runtime int8 backend for the default model, and what it gains and costs.

    python -m bench.onnx_int8                 # builds the models once, measures, docs/onnx_int8.md
    python -m bench.onnx_int8 --quick --cache /tmp/c --output /tmp/o.md   # tiny slice

`ensure_onnx_int8_model(cache_dir)` builds, offline and once, an int8 model from the local
default model folder, and `OnnxEmbedder` runs it behind the engine's Embedder protocol, so
the lead can move both into retriever/ as they are.

Why not sentence-transformers' own `backend="onnx"` and `export_dynamic_quantized_onnx_model`:
both go through optimum-onnx, whose every release requires transformers<4.58, and the engine
runs transformers 5. The same two steps are done with the libraries they wrap: torch.onnx
exports the encoder with mean pooling and L2 normalisation inside the graph (so the ONNX
file gives sentence embeddings directly), and onnxruntime's `quantize_dynamic` quantises the
weights of every MatMul and of the embedding table (Gather) to int8 per channel, the
dynamic-quantisation recipe of sentence-transformers' "avx512_vnni" preset.

Measured: embedding throughput on 300-character Chinese passages for torch fp32, ONNX fp32
and ONNX int8; cosine agreement of the ONNX vectors with torch's; and R@10 / Hit@10 of dense
(and hybrid) retrieval on both evaluation sets with int8 against fp32. The issue's rule: int8
becomes the default only if R@10 drops by less than 0.01 on both sets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

INT8_MODEL_NAME = "multilingual-e5-small-onnx-int8"
FP32_MODEL_NAME = "multilingual-e5-small-onnx-fp32"
MODEL_FILE = "model.onnx"
MARKER = "build_info.json"
# Bump when the recipe changes what is written: a folder built by another recipe is rebuilt.
RECIPE_VERSION = 1
MAX_TOKENS = 512  # the model's position limit; longer texts are truncated like in torch
BATCH_SIZE = 32  # the engine's batch size (retriever.embedding.BATCH_SIZE)
QUANTIZED_OPS = ["MatMul", "Gather"]


class OnnxModelError(RuntimeError):
    """The ONNX model cannot be built or loaded; the message says what to do."""


# ------------------------------------------------------------------- building


def _export_fp32(source: Path, target: Path) -> None:
    """Export the encoder with mean pooling and normalisation to `target` (one .onnx file).

    The graph takes input_ids and attention_mask (batch × tokens, both dynamic) and returns
    `sentence_embedding`, L2-normalised: exactly what sentence-transformers' Transformer →
    Pooling(mean) → Normalize modules compute.
    """
    import torch
    from transformers import AutoModel

    class SentenceEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    encoder = AutoModel.from_pretrained(str(source)).eval()
    model = SentenceEncoder(encoder).eval()
    example = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=MAX_TOKENS)
    with torch.no_grad():
        torch.onnx.export(
            model,
            example,
            str(target),
            input_names=["input_ids", "attention_mask"],
            # Not "embedding": the exporter names a node after the embeddings module, and two
            # definitions of one name make an invalid graph.
            output_names=["sentence_embedding"],
            dynamic_shapes={
                "input_ids": {0: batch, 1: tokens},
                "attention_mask": {0: batch, 1: tokens},
            },
            opset_version=18,
            dynamo=True,
            external_data=True,
        )


def _quantize(fp32: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs a suggestion to pre-process on the root logger on every call;
    # the export is already clean, so that warning is silenced for the call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            fp32,
            target,
            op_types_to_quantize=QUANTIZED_OPS,
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def _source_info(source: Path) -> dict:
    try:
        return json.loads((source / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_current(folder: Path, source: Path, precision: str) -> bool:
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        info.get("recipe_version") == RECIPE_VERSION
        and info.get("precision") == precision
        and info.get("source") == _source_info(source)
        and (folder / MODEL_FILE).is_file()
        and (folder / "tokenizer.json").is_file()
    )


def _ensure_onnx_model(cache_dir: Path, precision: str) -> Path:
    from retriever.default_model import ensure_default_model

    source = ensure_default_model(cache_dir)
    name = INT8_MODEL_NAME if precision == "int8" else FP32_MODEL_NAME
    folder = cache_dir / "models" / name
    if _is_current(folder, source, precision):
        return folder
    logger.warning("building the %s ONNX model in %s (once, about a minute)", precision, folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=folder.parent))
    try:
        started = time.perf_counter()
        if precision == "int8":
            with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
                fp32 = Path(scratch) / MODEL_FILE
                _export_fp32(source, fp32)
                _quantize(fp32, staging / MODEL_FILE)
        else:
            _export_fp32(source, staging / MODEL_FILE)
        shutil.copy2(source / "tokenizer.json", staging / "tokenizer.json")
        info = {
            "recipe_version": RECIPE_VERSION,
            "precision": precision,
            "quantized_ops": QUANTIZED_OPS if precision == "int8" else [],
            "source": _source_info(source),
            "seconds": round(time.perf_counter() - started, 1),
            "versions": {p: metadata.version(p) for p in ("torch", "onnx", "onnxruntime")},
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OnnxModelError(
            f"could not build the {precision} ONNX model from {source} ({error}): check that "
            "onnx, onnxscript and onnxruntime are installed (requirements-bench.txt)"
        ) from error
    return folder


def ensure_onnx_int8_model(cache_dir: Path) -> Path:
    """The int8 ONNX model folder under cache_dir/models, built offline once from the default.

    The folder holds model.onnx (int8 weights, ~120 MB against 470 MB in fp32),
    tokenizer.json and build_info.json; it is rebuilt when the default model or this
    recipe changes, and swapped in whole so a crash never leaves a half-built folder.
    """
    return _ensure_onnx_model(cache_dir, "int8")


def ensure_onnx_fp32_model(cache_dir: Path) -> Path:
    """The same export without quantisation, to separate ONNX Runtime's gain from int8's."""
    return _ensure_onnx_model(cache_dir, "fp32")


# -------------------------------------------------------------------- running


class OnnxEmbedder:
    """An exported model run by ONNX Runtime, behind the engine's Embedder protocol.

    Texts are sorted by length before batching so that a batch pads to similar lengths (as
    sentence-transformers does), then put back in order.
    """

    def __init__(self, folder: Path, name: str, *, query_prefix: str, passage_prefix: str) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not (folder / MODEL_FILE).is_file():
            raise OnnxModelError(
                f"{folder} has no {MODEL_FILE}: build it with ensure_onnx_int8_model(cache_dir)"
            )
        self.name = name
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    @classmethod
    def load(cls, cache_dir: Path, *, precision: str = "int8") -> OnnxEmbedder:
        from retriever.default_model import PASSAGE_PREFIX, QUERY_PREFIX

        folder = (
            ensure_onnx_int8_model(cache_dir)
            if precision == "int8"
            else (ensure_onnx_fp32_model(cache_dir))
        )
        name = INT8_MODEL_NAME if precision == "int8" else FP32_MODEL_NAME
        return cls(folder, name, query_prefix=QUERY_PREFIX, passage_prefix=PASSAGE_PREFIX)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + text for text in texts])

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + text for text in texts], progress=progress)

    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), BATCH_SIZE)
        for start in tqdm(starts, desc="embedding", disable=not progress):
            batch = order[start : start + BATCH_SIZE]
            encodings = self.tokenizer.encode_batch([texts[i] for i in batch])
            width = max(len(encoding.ids) for encoding in encodings)
            ids = np.zeros((len(batch), width), dtype=np.int64)  # 1 is XLM-R's <pad>
            ids[:] = 1
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            (output,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            vectors[batch] = output
        return vectors


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
        embedder.encode_passages(texts[:BATCH_SIZE])
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
    from retriever.evaluation import (
        compute_rankings,
        load_dataset,
        open_evaluation_index,
        score,
    )

    dataset, _ = take_slice(
        load_dataset(DATASETS / name),
        limit=limit,
        corpus_limit=corpus_limit,
        workdir=cache / "bench" / "slices",
    )
    retriever = open_evaluation_index(dataset, embedder, cache, progress=False)
    rankings = compute_rankings(retriever, dataset, progress=False)
    return dataset.name, {
        mode: score(retriever, dataset, rankings, mode) for mode in ("dense", "hybrid")
    }


def main(argv: list[str] | None = None) -> int:
    from bench.peers import CACHE, REPO, SETS
    from retriever.default_model import DEFAULT_MODEL_NAME
    from retriever.embedding import SentenceTransformerEmbedder

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
    passages = 32 if args.quick else args.passages
    runs = 1 if args.quick else args.runs

    # The ONNX models are built from the model folder of the default cache (models are
    # shared); indexes go to --cache.
    int8 = OnnxEmbedder.load(CACHE, precision="int8")
    torch_fp32 = SentenceTransformerEmbedder.load(DEFAULT_MODEL_NAME, cache_dir=CACHE)
    embedders: dict[str, Any] = {"torch fp32": torch_fp32}
    if not args.quick:  # the fp32 export only separates ONNX Runtime's gain from int8's
        embedders["onnx fp32"] = OnnxEmbedder.load(CACHE, precision="fp32")
    embedders["onnx int8"] = int8
    build_seconds = {  # as recorded when each model was built (once)
        name: json.loads((CACHE / "models" / name / MARKER).read_text(encoding="utf-8"))["seconds"]
        for name in (FP32_MODEL_NAME, INT8_MODEL_NAME)
        if (CACHE / "models" / name / MARKER).is_file()
    }

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
    table = markdown(command.strip(), throughput, cosines, quality, passages, runs, build_seconds)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    return 0


def _questions(limit: int) -> list[str]:
    from bench.peers import DATASETS
    from retriever.evaluation import load_dataset

    return list(load_dataset(DATASETS / "dureader_demo").questions.values())[:limit]


def _size_mb(name: str) -> float:
    from bench.peers import CACHE

    folder = CACHE / "models" / name
    return sum(p.stat().st_size for p in folder.glob("model.onnx*")) / 2**20


Cosines = dict[str, tuple[tuple[float, float], tuple[float, float]]]
Quality = dict[str, tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]]


def markdown(
    command: str,
    throughput: list[Throughput],
    cosines: Cosines,
    quality: Quality,
    passages: int,
    runs: int,
    build_seconds: dict[str, float],
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
        "Model build, once (export; export + quantise): "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in build_seconds.items())
        + "; model.onnx size: "
        + ", ".join(f"{name} {_size_mb(name):.0f} MB" for name in build_seconds),
        "",
        f"## Embedding throughput ({passages} passages of 300 Chinese characters, batch "
        f"{BATCH_SIZE}, median of {runs} runs)",
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
