"""Command line: build, search, ask, eval, info, and the corpus folder's documents and trash
(retriever.documents_cli). `python -m retriever --help` lists them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from retriever.backends import DENSE_BACKENDS
from retriever.config import BackendSettings, ChunkSettings, SearchSettings
from retriever.corpus import CorpusError
from retriever.documents_cli import add_document_commands
from retriever.embedding import DEFAULT_EMBEDDER
from retriever.index import open_manifest
from retriever.models import DEFAULT_MODEL_NAME
from retriever.schema import IndexLoadError
from retriever.search import DEFAULT_CACHE, QuestionError, Retriever, index_is_current
from retriever.staging import check_index_target

logger = logging.getLogger("retriever")

MAX_K = 50  # passages a search or an answer may return; the HTTP API's limit too
MIN_CHUNK_CHARS = 20  # ChunkSettings refuses shorter chunks


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (no upper limit if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {limits}")
        return value

    return parse


def _cosine(text: str) -> float:
    """An argparse type: a cosine, a finite number from -1 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not -1.0 <= value <= 1.0:  # NaN fails every comparison, so it is refused too
        raise argparse.ArgumentTypeError(f"{text} is not a cosine: give a number from -1 to 1")
    return value


def _cache_dir() -> Path:
    return Path(os.environ.get("RETRIEVER_CACHE", DEFAULT_CACHE))


def _embedder(args: argparse.Namespace):
    from retriever.embedding import load_embedder

    return load_embedder(
        args.model,
        cache_dir=_cache_dir(),
        query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix,
    )


def cmd_build(args: argparse.Namespace) -> int:
    check_index_target(Path(args.index), Path(args.corpus))  # before the model takes seconds
    chunking = ChunkSettings(max_chars=args.max_chars)
    # No --backend: the engines the index already uses (retriever.search._backends_of).
    backends = BackendSettings(dense=args.backend) if args.backend else None
    if args.milvus_uri and args.backend != "milvus":
        raise ValueError("--milvus-uri goes with --backend milvus")
    if args.milvus_uri:  # read by the Milvus backend when it creates a collection
        os.environ["RETRIEVER_MILVUS_URI"] = args.milvus_uri
    if args.if_stale and index_is_current(
        args.index, args.corpus, args.model, chunking=chunking, backends=backends
    ):
        print(f"{args.index} is up to date with {args.corpus}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    report = Retriever.build(
        args.corpus,
        args.index,
        embedder=_embedder(args),
        chunking=chunking,
        backends=backends,
        progress=not args.quiet,
    )
    info = report.index
    for skipped in info.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)
    seconds = time.perf_counter() - started
    if not report.changed:
        print(f"{info.folder} is up to date with {args.corpus} ({seconds:.1f} s)", file=sys.stderr)
        return 0
    print(
        f"built {info.folder}: {info.files} files, {info.documents} documents, {info.chunks} "
        f"chunks ({len(report.read)} files read, {len(report.removed)} removed; "
        f"{report.embedded} chunks embedded, {report.reused} kept) with {info.model} "
        f"in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    hits = Retriever.load(args.index, cache_dir=_cache_dir()).search(
        args.question, k=args.k, mode=args.mode
    )
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
        return 0
    for hit in hits:
        where = f"{hit.source} [{hit.start}:{hit.end}]" + (
            f" · {hit.heading}" if hit.heading else ""
        )
        print(f"{hit.rank}. ({hit.score:.4f}) {where}\n   {hit.text}\n")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    settings = SearchSettings(min_answer_score=args.min_score)
    retriever = Retriever.load(args.index, cache_dir=_cache_dir(), settings=settings)
    answer = retriever.ask(args.question, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.answer + "\n")
    for citation in answer.citations:
        hit = citation.hit
        mark = "*" if citation.quotes else " "
        heading = f" · {hit.heading}" if hit.heading else ""
        print(f"{mark}[{citation.number}] {hit.source} [{hit.start}:{hit.end}]{heading}")
        print(f"    {hit.text}\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from retriever.evaluation import find_candidates, load_dataset, open_evaluation_index, score

    dataset = load_dataset(args.dataset, qrels=args.qrels)
    if args.limit:
        keep = list(dataset.questions)[: args.limit]
        dataset = type(dataset)(
            dataset.name,
            dataset.corpus,
            {qid: dataset.questions[qid] for qid in keep},
            {qid: dataset.gold[qid] for qid in keep},
        )
    embedder = _embedder(args)
    retriever = open_evaluation_index(dataset, embedder, _cache_dir(), progress=not args.quiet)
    pool = find_candidates(retriever, dataset, progress=not args.quiet)
    modes = ["bm25", "dense", "hybrid"] if args.compare else [args.mode]
    results = {mode: score(retriever, dataset, pool, mode) for mode in modes}
    if args.json:
        output = results if args.compare else results[args.mode]
        print(json.dumps(output, ensure_ascii=False, indent=2))
        return 0
    print(f"{dataset.name}: {len(dataset.questions)} questions, model {embedder.name}")
    names = list(next(iter(results.values())))
    print("| mode | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for mode, metrics in results.items():
        print(f"| {mode} | " + " | ".join(f"{metrics[n]:.3f}" for n in names) + " |")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    manifest = open_manifest(Path(args.index))
    current = index_is_current(args.index, args.corpus)
    print(json.dumps({**manifest.raw, "up_to_date": current}, ensure_ascii=False, indent=2))
    return 0


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from retriever.modelbuild.onnx_export import ensure_int8_model  # build-time code only

    print(ensure_int8_model(_cache_dir()))
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m retriever", description="Question answering over Chinese documents."
    )
    main.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = main.add_subparsers(dest="command", required=True)

    def with_model(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--model",
            default=DEFAULT_EMBEDDER,
            help=f"embedding model (default: {DEFAULT_EMBEDDER}, built offline, run by ONNX "
            f"Runtime; {DEFAULT_MODEL_NAME} is its fp32 form on torch); any other "
            "sentence-transformers model name or local folder",
        )
        command.add_argument("--query-prefix", help="text put before questions (model default)")
        command.add_argument("--passage-prefix", help="text put before passages (model default)")
        command.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    build = commands.add_parser("build", help="build the index from the corpus folder")
    build.add_argument("--corpus", default="corpus", help="folder of source files (corpus)")
    build.add_argument("--index", default="index", help="index folder to write (index)")
    build.add_argument(
        "--max-chars",
        type=_whole_number(MIN_CHUNK_CHARS),
        default=ChunkSettings().max_chars,
        help="longest chunk in characters (%(default)s)",
    )
    build.add_argument(
        "--if-stale",
        action="store_true",
        help="do nothing when the index already matches the corpus",
    )
    build.add_argument(
        "--backend",
        choices=sorted(DENSE_BACKENDS),
        help="dense engine: faiss, or milvus (Milvus Lite in the index folder); default: what "
        f"the index uses, {BackendSettings().dense} for a new one",
    )
    build.add_argument("--milvus-uri", help="with --backend milvus: a Milvus server's URI")
    with_model(build)
    build.set_defaults(run=cmd_build)

    for name, run, help_text in (
        ("search", cmd_search, "the passages that best match a question"),
        ("ask", cmd_ask, "an answer with cited passages"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("question")
        command.add_argument(
            "-k", type=_whole_number(1, MAX_K), default=5, help=f"passages to return, 1-{MAX_K} (5)"
        )
        command.add_argument("--index", default="index", help="index folder (index)")
        command.add_argument("--json", action="store_true", help="one JSON document on stdout")
        if name == "search":
            command.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
        else:
            command.add_argument(
                "--min-score",
                type=_cosine,
                help="nearest-passage cosine below which the corpus counts as not answering "
                "(default: calibrated for the index's model)",
            )
        command.set_defaults(run=run)

    evaluate = commands.add_parser("eval", help="retrieval metrics on an evaluation folder")
    evaluate.add_argument("dataset", help="folder with corpus.jsonl, queries.jsonl, qrels.tsv")
    evaluate.add_argument("--qrels", default="qrels.tsv", help="judgement file (qrels.tsv)")
    evaluate.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    evaluate.add_argument("--compare", action="store_true", help="all three modes side by side")
    evaluate.add_argument("--limit", type=_whole_number(1), help="only the first N questions")
    evaluate.add_argument("--json", action="store_true", help="one JSON document on stdout")
    with_model(evaluate)
    evaluate.set_defaults(run=cmd_eval)

    info = commands.add_parser("info", help="what the index holds and whether it is current")
    info.add_argument("--index", default="index")
    info.add_argument("--corpus", default="corpus")
    info.set_defaults(run=cmd_info)

    prepare = commands.add_parser("prepare-model", help="build the default model (offline)")
    prepare.set_defaults(run=cmd_prepare_model)
    add_document_commands(commands)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.run(args)
        sys.stdout.flush()  # so that a closed pipe shows here, not as Python exits
        return code
    except (IndexLoadError, QuestionError, CorpusError, FileNotFoundError, ValueError) as error:
        # ValueError covers IndexFolderError and ModelLoadError too.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader has gone (`info | head`): stop quietly, as other command-line tools do.
        # Python flushes stdout again at exit, so point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT


if __name__ == "__main__":
    sys.exit(main())
