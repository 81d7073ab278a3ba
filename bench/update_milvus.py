"""bench.update's measurement on a Milvus Lite index: add one document, build again over the
unchanged corpus, remove it again (docs/BENCHMARKS.md, section 5).

    python -m bench.update_milvus 10000 --runs 3
    python -m bench.update_milvus 100000 --runs 2

The base corpus is bench.update's (cached); its Milvus index is built once by the same
stand-in embedder into <cache>/bench/update-milvus/, and every run starts from a copy of it,
with the real int8 model loaded beforehand, as a server holds it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

from bench.update import StandIn, base_index, new_document
from retriever import Retriever
from retriever.config import BackendSettings
from retriever.embedding import DEFAULT_EMBEDDER, load_embedder
from retriever.search import DEFAULT_CACHE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size", type=int, help="passages in the base corpus (10000, 100000)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus, _, chunks = base_index(args.size, DEFAULT_CACHE)
    folder = DEFAULT_CACHE / "bench" / "update-milvus"
    base = folder / f"base-{args.size}"
    if not base.exists():
        started = time.perf_counter()
        milvus = BackendSettings(dense="milvus")
        Retriever.build(corpus, base, embedder=StandIn(), backends=milvus)
        print(f"base index built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    embedder = load_embedder(DEFAULT_EMBEDDER, cache_dir=DEFAULT_CACHE)
    embedder.encode_passages(["预热"])  # the build-time session, opened as a server has it
    document, work = corpus / "added.txt", folder / "work"
    seconds: dict[str, list[float]] = {"add": [], "unchanged": [], "remove": []}
    for _ in range(args.runs):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        document.write_text(new_document(), encoding="utf-8")
        try:
            for step in ("add", "unchanged"):
                started = time.perf_counter()
                Retriever.build(corpus, work, embedder=embedder)
                seconds[step].append(time.perf_counter() - started)
        finally:
            document.unlink()
        started = time.perf_counter()
        Retriever.build(corpus, work, embedder=embedder)
        seconds["remove"].append(time.perf_counter() - started)
    medians = {step: round(statistics.median(times), 2) for step, times in seconds.items()}
    print(f"{chunks:,} chunks, Milvus Lite, median seconds of {args.runs} runs: {medians}")


if __name__ == "__main__":
    main()
