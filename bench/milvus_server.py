"""Dense search latency on a Milvus server, beside FAISS and embedded Milvus Lite (issue 23).

    python -m bench.milvus_server                  # starts its own `milvus-lite server`
    python -m bench.milvus_server --uri http://127.0.0.1:19530 --runs 5   # a running server

The vectors are the dureader_demo evaluation index's (10,438 passages of the default model,
built once by `python -m retriever eval bench/datasets/dureader_demo`), the queries its
questions encoded by the default model (bench.scale.query_vectors, cached). Each engine
holds the same vectors through the project's own backend classes (so the server is asked
exactly as a search asks it: top 50 ids, the fusion's candidates), and each run times every
query one at a time; p50 and p95 are each the median over the runs. On the server, one
collection is searched at each consistency level the backend offers. top-10 agreement is
the share of FAISS's exact top 10 the engine returns in its own top 10.

"whole search" rows time `Retriever.search(question)` (embedding the question, both sides,
fusion) over the same index, its dense side in FAISS or on the server (an index folder
built for each consistency level), for the first --whole questions, each p50/p95 the median
of 3 runs.

milvus-lite's server has no time tick: it reads every consistency level alike, so Strong
costs nothing extra there (on Milvus 2.3 it waits for the tick, ~200 ms a read; see
docs/milvus.md). The script starts the server on 127.0.0.1 and stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers import CACHE
from bench.scale import query_vectors

EVAL_INDEX = CACHE / "eval" / "dureader_demo-multilingual-e5-small-onnx-int8"
CANDIDATES = 50  # what a search asks the dense side for (SearchSettings.candidates)
LEVELS = ("Bounded", "Session", "Strong")


def cpu_name() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`milvus-lite server` on 127.0.0.1 at a free port, once it accepts connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = Path(sys.executable).parent / "milvus-lite"
    process = subprocess.Popen(
        [command, "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("milvus-lite server did not start") from None
            time.sleep(0.2)


def timed(search, queries: np.ndarray, runs: int) -> dict[str, float]:
    """p50 and p95 in ms of `search(query)` over the queries, each the median of `runs`."""
    search(queries[0])  # first call pays lazy initialisation
    p50s, p95s = [], []
    for _ in range(runs):
        times = []
        for query in queries:
            started = time.perf_counter()
            search(query)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50s.append(statistics.median(times))
        p95s.append(times[min(len(times) - 1, int(0.95 * len(times)))])
    return {"p50_ms": statistics.median(p50s), "p95_ms": statistics.median(p95s)}


def agreement(backend, truth: list[set[int]], queries: np.ndarray) -> float:
    found = [
        len({i for i, _ in backend.search(q, 10)} & exact) / 10
        for q, exact in zip(queries, truth, strict=True)
    ]
    return float(np.mean(found))


def whole_search(uri: str, count: int, started_here: bool) -> list[dict[str, Any]]:
    """`Retriever.search` over the evaluation index with its dense side in FAISS, then on
    the server at each level. A server started here has been stopped by now: start one
    again for these rows."""
    from dataclasses import replace

    from bench.scale import _questions
    from retriever.backends.milvus_dense import MilvusDense
    from retriever.backends.milvus_settings import MilvusSettings, configured
    from retriever.index import Index
    from retriever.search import Retriever

    questions = _questions()[:count]
    source = Index.load(EVAL_INDEX)
    ids, vectors = source.dense._contents()
    rows = []

    def measure(name: str, retriever) -> None:
        row = {"engine": f"whole search, {name}", **timed(retriever.search, questions, 3)}
        rows.append(row)
        print(f"{row}", file=sys.stderr, flush=True)

    measure("FAISS", Retriever.load(EVAL_INDEX, cache_dir=CACHE))
    with tempfile.TemporaryDirectory(prefix="bench-milvus-whole-") as scratch:
        server = None
        if started_here:
            server, uri = start_server(Path(scratch) / "data")
        try:
            for level in LEVELS:
                folder = Path(scratch) / level
                with configured(MilvusSettings(uri=uri, consistency=level)):
                    dense = MilvusDense.create(vectors.shape[1])
                    dense.add([int(i) for i in ids], vectors)
                    backends = replace(source.manifest.backends, dense="milvus")
                    manifest = replace(source.manifest, backends=backends)
                    Index(manifest, source.passages, dense, source.lexical).save(folder)
                retriever = Retriever.load(folder, cache_dir=CACHE)
                measure(f"Milvus server, {level}", retriever)
                retriever.index.dense._open().drop_collection(dense.collections()[0])
                dense.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", help="a running Milvus server (default: start milvus-lite's)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200, help="questions per run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--whole", type=int, default=50, help="questions for the whole-search rows (0: none)"
    )
    args = parser.parse_args()

    from retriever.backends.faiss_dense import FaissDense
    from retriever.backends.milvus_dense import MilvusDense
    from retriever.backends.milvus_settings import MilvusSettings, configured
    from retriever.index import Index

    if not EVAL_INDEX.is_dir():
        sys.exit(
            f"there is no {EVAL_INDEX}: run `python -m retriever eval "
            "bench/datasets/dureader_demo` once to build it"
        )
    ids, vectors = Index.load(EVAL_INDEX).dense._contents()
    ids = [int(i) for i in ids]
    queries = query_vectors()[: args.queries]
    faiss = FaissDense.create(vectors.shape[1])
    faiss.add(ids, vectors)
    truth = [{i for i, _ in faiss.search(q, 10)} for q in queries]
    rows: list[dict[str, Any]] = []

    def measure(name: str, backend) -> None:
        row = {"engine": name, **timed(lambda q: backend.search(q, CANDIDATES), queries, args.runs)}
        row["top10_agreement"] = agreement(backend, truth, queries)
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr, flush=True)

    measure("FAISS (flat, in process)", faiss)
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as scratch:
        lite = MilvusDense.create(vectors.shape[1])
        lite.add(ids, vectors)
        (Path(scratch) / "lite").mkdir()
        lite.save(Path(scratch) / "lite")  # searched as a served index is: saved, loaded
        lite.close()
        lite = MilvusDense.load(Path(scratch) / "lite")
        measure("Milvus Lite (embedded, loaded)", lite)
        lite.close()
        uri = args.uri
        if uri is None:
            server, uri = start_server(Path(scratch) / "data")
        try:
            with configured(MilvusSettings(uri=uri)):
                built = MilvusDense.create(vectors.shape[1])
                started = time.perf_counter()
                built.add(ids, vectors)
                (Path(scratch) / "dense").mkdir()
                built.save(Path(scratch) / "dense")  # flush and the Strong read-back
                build_s = time.perf_counter() - started
                collection = built.collections()[0]
                for level in LEVELS:
                    settings = MilvusSettings(uri=uri, consistency=level)
                    reader = MilvusDense(
                        uri, collection, vectors.shape[1], server=True, owned=False,
                        settings=settings,
                    )  # fmt: skip
                    measure(f"Milvus server, {level}", reader)
                    reader.close()
                built._open().drop_collection(collection)
                built.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)

    whole = whole_search(uri, args.whole, args.uri is None) if args.whole else []
    rows.extend(whole)
    faiss_p50 = rows[0]["p50_ms"]
    for row in rows:
        base = whole[0]["p50_ms"] if row in whole else faiss_p50
        row["p50_vs_faiss"] = row["p50_ms"] / base
    report = {
        "cpu": cpu_name(),
        "server": uri if args.uri else "milvus-lite server (started by the script, 127.0.0.1)",
        "vectors": len(ids),
        "dim": int(vectors.shape[1]),
        "queries": len(queries),
        "runs": args.runs,
        "server_build_s": build_s,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"{report['cpu']}; {len(ids)} vectors of {report['dim']} dims; {len(queries)} queries "
          f"× {args.runs} runs, top {CANDIDATES}; server: {report['server']}")  # fmt: skip
    # A whole search's ratio is to FAISS's whole search; it has no top-10 agreement (nan).
    print("\n| engine | p50 ms | p95 ms | p50 / FAISS | top-10 agreement |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['engine']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
            f"{row['p50_vs_faiss']:.1f}× | {row.get('top10_agreement', float('nan')):.3f} |"
        )


if __name__ == "__main__":
    main()
