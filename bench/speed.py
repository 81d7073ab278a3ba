"""Build time, cold start, query latency and memory of the project and its peers.

    python -m bench.speed                  # dureader_demo: 10,438 passages, 196 questions
    python -m bench.speed --skip-build     # reuse cached indexes; re-measure serving only
    python -m bench.speed --quick --cache /tmp/c --output /tmp/s.md   # a tiny slice

Every measurement runs in a fresh subprocess, so that one system's imports, caches and
memory never count for another:

* build: the whole index from the passages (model load, chunking, embedding, BM25, saving),
  in passages per second. `--build-runs` builds each (default 1: a build embeds every
  passage, minutes each on 2 cores). Builds land in <cache>/bench, where bench.quality finds
  them.
* cold start: from the moment the parent starts the process to the first answered question,
  with the index already built (interpreter start, imports, model and index load, 1 search).
* latency: every question once more after the first, retrieval alone (`search(q, 10)`),
  median and 95th percentile; for the project also a whole answer (`ask(q)`: retrieval, the
  answer check and the quoted sentences), which the peers have no counterpart of.
* peak memory: the serving process's peak resident set size (getrusage), after all questions.

Serving is measured `--runs` times (default 3) and the medians are reported, with each
figure's ratio to the project's in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers import (
    CACHE,
    DATASETS,
    REPO,
    SYSTEMS,
    PeersMissingError,
    build_system,
    check_peer_packages,
    default_model_path,
    index_folder,
    open_system,
    read_marker,
    read_records,
    take_slice,
)
from retriever.config import Environment
from retriever.evaluation import load_dataset
from retriever.kernels import Cpu, read_choice
from retriever.models import default_model_dir

logger = logging.getLogger("bench.speed")

K = 10
# The same slice as the smoke test's bench.quality run, so that with --skip-build the peers'
# tiny indexes built there are reused (each build child loads the model: ~8 s).
QUICK_QUESTIONS = 5
QUICK_PASSAGES = 20


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values fall (nearest rank, no interpolation)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


# --------------------------------------------------------------- child processes


def child_build(args: argparse.Namespace) -> None:
    """Build one system's index; print what it cost as one JSON line."""
    records = read_records(args.corpus)
    built = build_system(args.system, records, args.folder, default_model_path())
    result = {
        "seconds": built.seconds,
        "passages": len(records),
        "chunks": built.chunks,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))


def child_serve(args: argparse.Namespace) -> None:
    """Load a built index, answer every question; print timings as one JSON line.

    `args.spawned_at` is the parent's clock when it started this process: cold start counts
    the interpreter's start and imports too.
    """
    questions: list[str] = json.loads(args.questions.read_text(encoding="utf-8"))
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    system = open_system(args.system, args.folder, default_model_path())
    system.search(questions[0], K)
    cold_start = time.time() - args.spawned_at
    latencies = []
    for question in questions:
        started = time.perf_counter()
        system.search(question, K)
        latencies.append((time.perf_counter() - started) * 1000)
    answers = []
    if hasattr(system, "ask"):
        for question in questions:
            started = time.perf_counter()
            system.ask(question)
            answers.append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {
                "cold_start": cold_start,
                "latencies_ms": latencies,
                "ask_latencies_ms": answers,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_child(arguments: list[str], module: str = "bench.speed") -> Any:
    """Run `python -m <module> <arguments>` in a fresh process and parse the JSON line it
    prints last. A fresh process makes peak memory and cold start the measurement's own;
    bench.scale uses this too, so both benchmarks time their children the same way.
    """
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{module} {' '.join(arguments[:3])} failed (exit {completed.returncode}):\n"
            + completed.stderr[-3000:]
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ parent


@dataclass
class SystemSpeed:
    system: str
    passages: int
    chunks: int
    build_seconds: list[float]  # one per build run; empty when the cached build was reused
    cached_build_seconds: float | None  # from the cache marker when not rebuilt
    cold_start: list[float]
    latency_median_ms: list[float]
    latency_p95_ms: list[float]
    ask_median_ms: list[float]  # a whole answer: the project only
    peak_rss_mb: list[float]

    @property
    def build(self) -> float | None:
        """Median build time of this run, else the cached index's own build time."""
        if self.build_seconds:
            return statistics.median(self.build_seconds)
        return self.cached_build_seconds

    @property
    def passages_per_second(self) -> float | None:
        return self.passages / self.build if self.build else None


def measure(
    system: str,
    *,
    corpus: Path,
    folder: Path,
    questions_file: Path,
    runs: int,
    build_runs: int,
    skip_build: bool,
    torch_threads: int | None = None,
) -> SystemSpeed:
    passages = len(read_records(corpus))
    build_seconds: list[float] = []
    chunks = 0
    if not (skip_build and read_marker(folder)):
        for run in range(build_runs):
            print(f"  {system}: build {run + 1}/{build_runs}", file=sys.stderr, flush=True)
            built = run_child(
                ["_build", "--system", system, "--corpus", str(corpus), "--folder", str(folder)]
            )
            build_seconds.append(built["seconds"])
            chunks = built["chunks"]
    marker = read_marker(folder) or {}
    chunks = chunks or int(marker.get("chunks", 0))
    cold, medians, p95s, asks, rss = [], [], [], [], []
    for run in range(runs):
        print(f"  {system}: serve {run + 1}/{runs}", file=sys.stderr, flush=True)
        served = run_child(
            [
                "_serve",
                "--system",
                system,
                "--folder",
                str(folder),
                "--questions",
                str(questions_file),
                *(["--torch-threads", str(torch_threads)] if torch_threads else []),
                "--spawned-at",
                repr(time.time()),
            ]
        )
        cold.append(served["cold_start"])
        medians.append(statistics.median(served["latencies_ms"]))
        p95s.append(percentile(served["latencies_ms"], 0.95))
        if served["ask_latencies_ms"]:
            asks.append(statistics.median(served["ask_latencies_ms"]))
        rss.append(served["peak_rss_mb"])
    return SystemSpeed(
        system,
        passages,
        chunks,
        build_seconds,
        None if build_seconds else marker.get("seconds"),
        cold,
        medians,
        p95s,
        asks,
        rss,
    )


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value and base else "–"


def markdown(
    results: list[SystemSpeed],
    *,
    command: str,
    dataset: str,
    questions: int,
    runs: int,
    torch_threads: int | None = None,
) -> str:
    """The speed table, absolute figures with each one's ratio to the project's."""
    base = next(r for r in results if r.system == "project")
    med = statistics.median

    def build_cell(r: SystemSpeed) -> str:
        if r.build is None:
            return "–"
        mark = "" if r.build_seconds else "*"
        return f"{r.build:.0f} s{mark} ({_ratio(r.build, base.build)})"

    def rate_cell(r: SystemSpeed) -> str:
        rate = r.passages_per_second
        return f"{rate:.1f} ({_ratio(rate, base.passages_per_second)})" if rate else "–"

    cpu = Cpu.this_machine()
    choice = read_choice(default_model_dir(CACHE), cpu)
    kernel = Environment.read().kernel or (choice.kernel if choice else "not yet chosen")
    lines = [
        "# Speed and memory: the project and its peers",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {platform.machine()}, {cpu.model} ({' '.join(cpu.flags)}), {_cores()} cores, "
        f"{_memory_gb()} GB, no GPU  ",
        f"Data: {dataset}, {base.passages} passages, {questions} questions; same model for all "
        f"(multilingual-e5-small, local: the project runs it on its {kernel} kernel, "
        "the peers in fp32 through sentence-transformers). "
        f"Serving: median of {runs} fresh processes; "
        f"builds: {len(base.build_seconds) or 'cached'} run(s) each. "
        "Ratios are to the project, same run."
        + (f" Serving with {torch_threads} torch thread(s)." if torch_threads else ""),
        "",
        "| system | chunks | build | passages/s | cold start | latency p50 | latency p95 "
        "| ask p50 | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cold, p50, p95, rss = (
            med(r.cold_start),
            med(r.latency_median_ms),
            med(r.latency_p95_ms),
            med(r.peak_rss_mb),
        )
        lines.append(
            f"| {r.system} | {r.chunks} | {build_cell(r)} | {rate_cell(r)} "
            f"| {cold:.2f} s ({_ratio(cold, med(base.cold_start))}) "
            f"| {p50:.1f} ms ({_ratio(p50, med(base.latency_median_ms))}) "
            f"| {p95:.1f} ms ({_ratio(p95, med(base.latency_p95_ms))}) "
            f"| {f'{med(r.ask_median_ms):.1f} ms' if r.ask_median_ms else '–'} "
            f"| {rss:.0f} MB ({_ratio(rss, med(base.peak_rss_mb))}) |"
        )
    if any(not r.build_seconds for r in results):
        lines += [
            "",
            "\\* build time recorded when the cached index was built (an earlier run of this "
            "command); the ratios of those builds are to each other within that run.",
        ]
    return "\n".join(lines) + "\n"


def _cores() -> int:

    return os.cpu_count() or 0


def _memory_gb() -> int:
    import psutil

    return round(psutil.virtual_memory().total / 2**30)


def parent(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        check_peer_packages()
    except PeersMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    limit, corpus_limit = (QUICK_QUESTIONS, QUICK_PASSAGES) if args.quick else (None, None)
    runs = 1 if args.quick else args.runs
    bench_cache = args.cache / "bench"
    dataset, _ = take_slice(
        load_dataset(DATASETS / args.set),
        limit=limit,
        corpus_limit=corpus_limit,
        workdir=bench_cache / "slices",
    )
    questions_file = bench_cache / f"questions-{dataset.name}.json"
    questions_file.parent.mkdir(parents=True, exist_ok=True)
    questions_file.write_text(
        json.dumps(list(dataset.questions.values()), ensure_ascii=False), encoding="utf-8"
    )
    default_model_path()  # build the model once here, not inside a timed child
    results = []
    for system in args.systems:
        folder = index_folder(bench_cache, system, dataset.name, dataset.corpus)
        results.append(
            measure(
                system,
                corpus=dataset.corpus,
                folder=folder,
                questions_file=questions_file,
                runs=runs,
                build_runs=args.build_runs,
                skip_build=args.skip_build,
                torch_threads=args.torch_threads,
            )
        )
    command = "python -m bench.speed " + " ".join(argv)
    table = markdown(
        results,
        command=command.strip(),
        dataset=dataset.name,
        questions=len(dataset.questions),
        runs=runs,
        torch_threads=args.torch_threads,
    )
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    threads = f"-t{args.torch_threads}" if args.torch_threads else ""
    raw = bench_cache / f"speed_raw-{dataset.name}{threads}.json"
    raw.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("_build", "_serve"):
        child = argparse.ArgumentParser(prog=f"bench.speed {argv[0]}")
        child.add_argument("--system", choices=SYSTEMS, required=True)
        child.add_argument("--folder", type=Path, required=True)
        child.add_argument("--corpus", type=Path)
        child.add_argument("--questions", type=Path)
        child.add_argument("--spawned-at", type=float)
        child.add_argument("--torch-threads", type=int)
        args = child.parse_args(argv[1:])
        (child_build if argv[0] == "_build" else child_serve)(args)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="dureader_demo", choices=["dureader_demo", "cmrc2018_dev"])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--runs", type=int, default=3, help="serving runs per system (3)")
    parser.add_argument("--build-runs", type=int, default=1, help="builds per system (1)")
    parser.add_argument(
        "--skip-build", action="store_true", help="reuse a cached index instead of building"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="torch threads while serving (default: torch's own, one per core)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny slice, one run (smoke test)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="index cache (.cache)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "speed.md")
    args = parser.parse_args(argv)
    if "project" not in args.systems:
        parser.error("ratios are to the project: keep 'project' in --systems")
    return parent(args, argv)


if __name__ == "__main__":
    sys.exit(main())
