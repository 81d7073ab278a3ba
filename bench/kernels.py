"""Each kernel of the default model on this machine: throughput, agreement, share of the peak.

    python -m bench.kernels                        # 512 dureader passages, 3 runs
    python -m bench.kernels --kernels torch-bf16   # also a kernel this CPU lacks (emulated)

Passages are dureader_demo's as a build embeds them (title and at most a chunk's length of
text), on every core. Per kernel:
passages per second (median of the runs, taking turns), the lowest cosine of a vector with
torch fp32's, R@10 on the kernel choice's recall check (retriever.kernels), and the
arithmetic done: FLOPs per passage counted from the passages' own
token lengths (each layer's four attention projections, its two feed-forward products, and
the attention scores and sums over the sequence), against the machine's fp32 FMA peak
(cores × clock × FLOPs per cycle of its widest FMA). The peers (LangChain, txtai) embed
with sentence-transformers in fp32 on torch, so torch-fp32's row is their embedding speed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.peers import CACHE, REPO, read_records
from retriever.config import ChunkSettings
from retriever.embedding import load_embedder, machine_kernel
from retriever.kernels import (
    KERNELS,
    REFERENCE,
    Cpu,
    RecallCheck,
    available,
    measure,
    with_recall,
)
from retriever.text import normalize

# multilingual-e5-small: a 12-layer BERT, hidden 384, feed-forward 1536.
LAYERS, HIDDEN, FEED_FORWARD = 12, 384, 1536
CORPUS = REPO / "bench" / "datasets" / "dureader_demo" / "corpus.jsonl"


def sample_passages(count: int, seed: int = 0) -> list[str]:
    """`count` dureader passages as a build embeds them: title, then at most a chunk's
    length of text (most dureader passages are shorter), normalised."""
    rows = read_records(CORPUS)
    chosen = random.Random(seed).sample(rows, min(count, len(rows)))
    size = ChunkSettings().max_chars
    return [normalize(f"{row.title}\n{row.text[:size]}") for row in chosen]


def flops_per_passage(token_counts: list[int]) -> float:
    """Multiply-adds of the encoder, times two, averaged over the passages."""
    per_token = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FEED_FORWARD)
    attention = [LAYERS * 2 * n * n * HIDDEN for n in token_counts]
    return 2 * (per_token * statistics.mean(token_counts) + statistics.mean(attention))


def fp32_peak(cpu: Cpu) -> tuple[float, str]:
    """GFLOP/s of fp32 FMAs on every core at the nominal clock, and how it was counted."""
    mhz = 0.0
    for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
        if line.startswith("cpu MHz"):
            mhz = float(line.split(":")[1])
            break
    # Two FMA pipes per core; 8 fp32 lanes each with AVX2, 16 with AVX-512; 2 FLOPs an FMA.
    lanes = 16 if "avx512f" in cpu.flags else 8
    cores = os.cpu_count() or 1
    peak = cores * mhz / 1000 * 2 * lanes * 2
    return peak, f"{cores} cores × {mhz / 1000:.2f} GHz × 2 FMA pipes × {lanes} lanes × 2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", nargs="*", default=[], choices=KERNELS, help="add these")
    parser.add_argument("--output", type=Path, help="write the markdown table here too")
    args = parser.parse_args(argv)

    cpu = Cpu.this_machine()
    kernels = [k for k in KERNELS if k in available(cpu) or k in args.kernels]
    texts = sample_passages(args.passages)
    embedders = {k: load_embedder(cache_dir=CACHE, kernel=k) for k in kernels}
    tokenizer = embedders["onnx-int8"].tokenizer  # offered on every CPU
    counts = [len(ids) for ids in tokenizer.encode_batch(["passage: " + t for t in texts])]
    flops = flops_per_passage(counts)
    characters = statistics.mean(len(text) for text in texts)
    measured = measure({k: e.encode_passages for k, e in embedders.items()}, texts, runs=args.runs)
    measured = with_recall(measured, RecallCheck.load().recalls(embedders))
    peak, counted = fp32_peak(cpu)
    lines = [
        "# Kernels of the default model on this machine",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `python -m bench.kernels {' '.join(sys.argv[1:] if argv is None else argv)}`  ",
        f"CPU: {cpu.model}, flags {' '.join(cpu.flags)}; {os.cpu_count()} cores  ",
        f"Passages: {len(texts)} of dureader_demo as a build embeds them, {characters:.0f} "
        f"characters and {statistics.mean(counts):.1f} tokens on average, {flops / 1e9:.2f} "
        "GFLOP each  ",
        f"fp32 FMA peak: {peak:.0f} GFLOP/s ({counted})  ",
        f"Chosen on this machine: {machine_kernel(CACHE).kernel}",
        "",
        "| kernel | passages/s | × torch fp32 (the peers' embedding) | s per million characters "
        "| min cosine to fp32 | R@10 on the recall check | GFLOP/s | × fp32 FMA peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = next(m for m in measured if m.kernel == REFERENCE).passages_per_second
    for m in measured:
        achieved = m.passages_per_second * flops / 1e9
        lines.append(
            f"| {m.kernel}{'' if m.kernel in available(cpu) else ' (emulated)'} "
            f"| {m.passages_per_second:.1f} | {m.passages_per_second / reference:.2f}× "
            f"| {1e6 / (m.passages_per_second * characters):.0f} | {m.min_cosine:.4f} "
            f"| {m.recall_at_10:.3f} | {achieved:.0f} | {achieved / peak:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
