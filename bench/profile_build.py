"""Where a whole build's time goes at 100,000 passages, stage by stage.

    python -m bench.profile_build                  # 100,000 synthetic dureader passages
    python -m bench.profile_build --size 2000      # a quick look

The corpus is bench.update's: `size` distinct synthetic passages of 1–3 dureader sentences,
100 to a .jsonl file, written once into the cache. The build runs the engine's own code with
a timer around each stage (hashing the files, reading them, chunking, choosing ids, BM25,
the vector index, writing) and bench.update's stand-in model (random unit vectors), so that
every stage but embedding is measured at full size in minutes. Embedding is then measured on
its own with each kernel this CPU offers over a sample of the same passages, and scaled to
the corpus by characters; the report says which figures are scaled.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from bench.peers import CACHE, read_records
from bench.update import StandIn, base_index
from retriever import Retriever, building
from retriever.backends.bm25s_lexical import Bm25sLexical
from retriever.backends.faiss_dense import FaissDense
from retriever.embedding import load_embedder
from retriever.index import Index
from retriever.kernels import Cpu, available, measure
from retriever.text import normalize

SAMPLE = 512  # passages embedded per kernel to scale embedding from


class StageClock:
    """Seconds spent in each wrapped function, by stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started

        setattr(owner, name, timed)


def embedding_rates(texts: list[str]) -> dict[str, float]:
    """Characters a second each kernel this CPU offers embeds over `texts`, timed as the
    kernel choice times them (retriever.kernels.measure)."""
    encoders = {
        kernel: load_embedder(cache_dir=CACHE, kernel=kernel).encode_passages
        for kernel in available(Cpu.this_machine())
    }
    per_passage = statistics.mean(len(text) for text in texts)
    return {m.kernel: m.passages_per_second * per_passage for m in measure(encoders, texts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="passages (100,000)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the corpus is kept")
    parser.add_argument("--output", type=Path, help="write the markdown report here too")
    args = parser.parse_args(argv)

    corpus, _, _ = base_index(args.size, args.cache)  # the model comes from CACHE
    clock = StageClock()
    for name, stage in (
        ("file_hashes", "hash the files"),
        ("read_one", "read and extract"),
        ("passages_of", "chunk"),
        ("assign_ids", "choose ids, drop repeats"),
    ):
        clock.wrap(building, name, stage)
    clock.wrap(StandIn, "encode_passages", "embed (stand-in)")
    clock.wrap(FaissDense, "add", "vector index (FAISS)")
    clock.wrap(Bm25sLexical, "add", "BM25 (jieba + bm25s)")
    clock.wrap(Index, "save", "write the index")
    with tempfile.TemporaryDirectory(prefix="profile-build-") as workdir:
        index = Path(workdir) / "index"
        started = time.perf_counter()
        report = Retriever.build(corpus, index, embedder=StandIn())
        total = time.perf_counter() - started
        shutil.rmtree(index, ignore_errors=True)

    passages = [
        normalize(record.text)
        for path in sorted(corpus.glob("*.jsonl"))
        for record in read_records(path)
    ]
    characters = sum(len(text) for text in passages)
    sample = random.Random(0).sample(passages, min(SAMPLE, len(passages)))
    rates = embedding_rates(sample)

    stages = dict(clock.seconds)
    stand_in = stages.pop("embed (stand-in)", 0.0)
    other = total - stand_in - sum(stages.values())
    cpu = Cpu.this_machine()
    command = " ".join(["python -m bench.profile_build", *(sys.argv[1:] if argv is None else argv)])
    lines = [
        f"# Where a build's time goes: {report.index.chunks:,} passages",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `{command}`  ",
        f"CPU: {cpu.model} ({' '.join(cpu.flags)}), 2 cores  ",
        f"Corpus: {args.size:,} synthetic dureader passages in {len(list(corpus.glob('*.jsonl')))} "
        f"files, {characters:,} characters",
        "",
        "| stage | seconds | measured how |",
        "|---|---|---|",
        *(f"| {stage} | {seconds:.1f} | timed in the build |" for stage, seconds in stages.items()),
        f"| everything else (manifest, checks, texts for the model) | {other:.1f} | "
        "timed in the build |",
        *(
            f"| embed on {kernel} | {characters / rate:.0f} | scaled: {rate:,.0f} characters/s "
            f"over {len(sample)} of the passages |"
            for kernel, rate in rates.items()
        ),
        "",
        f"Build without embedding: {total - stand_in:.1f} s "
        f"({(total - stand_in) / characters * 1e6:.1f} s per million characters).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
