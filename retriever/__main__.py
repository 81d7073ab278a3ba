"""Command line: build, search, ask, eval, info, and the corpus folder's documents and trash
(retriever.documents_cli). `python -m retriever --help` lists them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from retriever.answer import Answering
from retriever.backends import DENSE_BACKENDS
from retriever.backends.milvus_dense import CONSISTENCY_LEVELS, MilvusSettings
from retriever.backends.milvus_dense import configured as milvus_configured
from retriever.bases_cli import add_base_commands, add_base_option, base_folders, build_command
from retriever.config import BackendSettings, ChunkSettings, SearchSettings
from retriever.corpus import file_hashes
from retriever.documents_cli import add_document_commands
from retriever.embedding import DEFAULT_EMBEDDER, KERNEL_ENV
from retriever.index import open_manifest
from retriever.kernels import KERNELS
from retriever.manifest import Manifest
from retriever.schema import IndexLoadError
from retriever.search import DEFAULT_CACHE, QuestionError, Retriever, index_is_current
from retriever.staging import check_index_target
from retriever.text import CorpusError

MILVUS_TOKEN_VARIABLE = "RETRIEVER_MILVUS_TOKEN"  # read by the CLI only, passed in

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


def _probability(text: str) -> float:
    """An argparse type: a confidence, a finite number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # NaN fails every comparison, so it is refused too
        raise argparse.ArgumentTypeError(f"{text} is not a confidence: give a number from 0 to 1")
    return value


def _cache_dir() -> Path:
    return Path(os.environ.get("RETRIEVER_CACHE", DEFAULT_CACHE))


def _embedder(args: argparse.Namespace):
    from retriever.embedding import load_embedder

    return load_embedder(
        args.model,
        cache_dir=_cache_dir(),
        kernel=args.kernel,
        query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix,
    )


def _milvus_settings(args: argparse.Namespace) -> MilvusSettings:
    """The --milvus-* options (and the token in RETRIEVER_MILVUS_TOKEN, kept out of `ps`)."""
    given = args.milvus_uri or args.milvus_database or args.milvus_consistency
    if given and args.backend != "milvus":
        raise ValueError(
            "--milvus-uri, --milvus-database and --milvus-consistency go with --backend milvus"
        )
    if (args.milvus_database or args.milvus_consistency) and not args.milvus_uri:
        raise ValueError("--milvus-database and --milvus-consistency go with --milvus-uri")
    return MilvusSettings(
        uri=args.milvus_uri or None,
        token=os.environ.get(MILVUS_TOKEN_VARIABLE, ""),
        database=args.milvus_database or "",
        consistency=args.milvus_consistency or MilvusSettings.consistency,
    )


def cmd_build(args: argparse.Namespace) -> int:
    corpus, index = base_folders(args)
    check_index_target(index, corpus)  # before the model takes seconds
    chunking = ChunkSettings(max_chars=args.max_chars)
    # No --backend: the engines the index already uses (retriever.search._backends_of).
    backends = BackendSettings(dense=args.backend) if args.backend else None
    milvus = _milvus_settings(args)  # passed to the Milvus backend around the build
    if args.if_stale and index_is_current(
        index, corpus, args.model, chunking=chunking, backends=backends
    ):
        print(f"{index} is up to date with {corpus}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    with milvus_configured(milvus):
        report = Retriever.build(
            corpus,
            index,
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
        print(f"{info.folder} is up to date with {corpus} ({seconds:.1f} s)", file=sys.stderr)
        return 0
    print(
        f"built {info.folder}: {info.files} files, {info.documents} documents, {info.chunks} "
        f"chunks ({len(report.read)} files read, {len(report.removed)} removed; "
        f"{report.embedded} chunks embedded, {report.reused} kept) with {info.model} "
        f"in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def _load(args: argparse.Namespace, settings: SearchSettings = SearchSettings()) -> Retriever:
    """The index the arguments name (--base's, or --index), ready to search."""
    _, index = base_folders(args)
    try:
        return Retriever.load(index, cache_dir=_cache_dir(), settings=settings)
    except IndexLoadError as error:
        if not args.base:
            raise
        # Its message says to run `build`, which would build the default base.
        raise IndexLoadError(f"{error} (for this base: `{build_command(args)}`)") from None


def cmd_search(args: argparse.Namespace) -> int:
    hits = _load(args).search(args.question, k=args.k, mode=args.mode)
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
    retriever = _load(args, SearchSettings(min_confidence=args.min_confidence))
    answerer = _generating(retriever) if args.generate else None
    answer = retriever.ask(args.question, k=args.k, answerer=answerer)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if answer.kind == "generated":
        print("（由模型撰写，每句都已与它所引的段落核对）")
    elif answer.fallback:
        print(f"（没有采用模型写的回答：{answer.fallback}）")
    print(answer.answer + "\n")
    for citation in answer.citations:
        hit = citation.hit
        mark = "*" if citation.quotes else " "
        heading = f" · {hit.heading}" if hit.heading else ""
        print(f"{mark}[{citation.number}] {hit.source} [{hit.start}:{hit.end}]{heading}")
        print(f"    {hit.text}\n")
    return 0


def _generating(retriever: Retriever) -> Answering:
    """The answerer that has the model server of RETRIEVER_GENERATE_* write the answer."""
    from retriever.generation import GeneratingAnswerer, GenerationSettings, ModelServer

    settings = GenerationSettings.from_env()
    if settings is None:
        raise ValueError(
            "--generate needs a model server: set RETRIEVER_GENERATE_URL and "
            "RETRIEVER_GENERATE_MODEL (docs/generation.md)"
        )
    return GeneratingAnswerer(retriever.answerer, ModelServer(settings))


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
    corpus, folder = base_folders(args)
    manifest = open_manifest(folder)
    current = corpus.exists() and index_is_current(folder, corpus)
    if args.json:
        print(json.dumps({**manifest.raw, "up_to_date": current}, ensure_ascii=False, indent=2))
    else:
        lines = _index_lines(folder, manifest) + _corpus_lines(
            manifest, corpus, current, build_command(args)
        )
        print("\n".join(lines))
    return 0


def _index_lines(folder: Path, manifest: Manifest) -> list[str]:
    """What `info` says of the index: where, when and with what it was built, what it holds."""
    # What ran the model (retriever.kernels); indexes built before the choice do not say.
    if manifest.kernel:
        runtime = {"onnx": "onnxruntime", "torch": "torch"}.get(manifest.kernel.split("-")[0])
        version = f" ({runtime} {manifest.versions.get(runtime, '?')})" if runtime else ""
        kernel = f"run on {manifest.kernel}{version} on {manifest.cpu}"
    else:
        kernel = "kernel not recorded (built before kernels were chosen per machine)"
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    skipped = [item.reason for item in manifest.skipped]
    return [
        f"index    {folder} ({_size(size)} on disk)",
        f"built    {_when(manifest.created_at)}",
        f"model    {manifest.model_name} ({manifest.model_dim} dimensions), {kernel}",
        f"engines  {manifest.backends.dense} for vectors, {manifest.backends.lexical} for words",
        f"holds    {_count(manifest.chunk_count, 'passage')} of at most "
        f"{manifest.chunking.max_chars} characters, from "
        f"{_count(manifest.document_count, 'document')} in {_count(len(manifest.sources), 'file')}",
        f"skipped  {_count(len(skipped), 'file')}{':' if skipped else ''}",
        *(f"         {reason}" for reason in skipped[:3]),
        *(
            [f"         and {len(skipped) - 3} more (--json lists them)"]
            if len(skipped) > 3
            else []
        ),
    ]


def _corpus_lines(manifest: Manifest, corpus: Path, current: bool, rebuild: str) -> list[str]:
    """Whether the index still matches the corpus folder, and if not, what changed and the
    command (`rebuild`) that catches up."""
    if current:
        return [f"corpus   {corpus}: up to date ({_count(len(manifest.corpus_hashes), 'file')})"]
    if not corpus.exists():
        return [f"corpus   {corpus}: no such folder, so the index cannot be compared"]
    now, then = file_hashes(corpus), manifest.corpus_hashes
    if now == then:  # so index_is_current found other settings than a build now uses
        why = "built with other chunking or word settings than a build now uses"
    else:
        changed = sum(now[name] != then[name] for name in now.keys() & then.keys())
        why = (
            f"{len(now.keys() - then.keys())} new, {changed} changed, "
            f"{len(then.keys() - now.keys())} gone since the build"
        )
    return [f"corpus   {corpus}: out of date: {why}", f"         update it with `{rebuild}`"]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _size(size: float) -> str:
    """A number of bytes in decimal units, as the README and the limits count them."""
    if size < 1000:
        return f"{size:.0f} bytes"
    size /= 1000
    units = ["kB", "MB", "GB"]
    while round(size, 1) >= 1000 and len(units) > 1:
        size /= 1000
        units.pop(0)
    return f"{size:,.1f} {units[0]}"


def _when(created_at: str) -> str:
    """The build's time in UTC, as the manifest records it, and how long ago that was."""
    try:
        built = datetime.fromisoformat(created_at)
    except ValueError:
        return created_at or "unknown"
    if built.tzinfo is None:  # manifests record UTC, with its offset
        built = built.replace(tzinfo=UTC)
    hours = round((datetime.now(UTC) - built).total_seconds() / 3600)
    ago = (
        "within the hour"
        if hours < 1
        else f"{_count(hours, 'hour')} ago"
        if hours < 48
        else f"{_count(round(hours / 24), 'day')} ago"
    )
    return f"{built.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {ago}"


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from retriever.answerability_fit import background_vectors
    from retriever.embedding import load_embedder, machine_kernel
    from retriever.modelbuild.onnx_export import ensure_int8_model  # build-time code only

    print(ensure_int8_model(_cache_dir()))
    choice = machine_kernel(_cache_dir(), force=args.kernel, remeasure=True)
    for measured in choice.measurements:
        print(
            f"{measured.kernel:<11} {measured.passages_per_second:>7.1f} passages/s, "
            f"cosine to fp32 at least {measured.min_cosine:.4f}, "
            f"R@10 {measured.recall_at_10:.3f} (fp32 {measured.reference_recall_at_10:.3f})"
            + ("" if measured.passed else " (too far: not kept)")
        )
    how = "forced" if choice.forced else "the fastest"
    print(f"kernel {choice.kernel} ({how}) on {choice.cpu.model} ({' '.join(choice.cpu.flags)})")
    # The answer check's baseline, embedded once here rather than on the first question.
    background_vectors(load_embedder(DEFAULT_EMBEDDER, cache_dir=_cache_dir()), _cache_dir())
    return 0


class CommandParser(argparse.ArgumentParser):
    """An argparse parser that ends its --help with `examples`, laid out as written.

    Subcommands get this class too (argparse makes them of their parent's class), so each
    `add_parser(..., examples=[...])` has its own.
    """

    def __init__(self, *args, examples: Sequence[str] = (), **kwargs) -> None:
        if examples:
            kwargs["epilog"] = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        super().__init__(*args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def add_kernel_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--kernel",
        choices=KERNELS,
        help="what runs the default model (default: the fastest on this machine, chosen by "
        f"prepare-model; the {KERNEL_ENV} environment variable sets it for every command)",
    )


def parser() -> argparse.ArgumentParser:
    main = CommandParser(
        prog="python -m retriever",
        description="Question answering over Chinese documents.",
        examples=[
            "python -m retriever build               index corpus/ into index/",
            "python -m retriever info                what index/ holds; whether it is current",
            'python -m retriever ask "行政助理负责什么工作?"',
            'python -m retriever search -k 3 "考勤报表"',
            "python -m retriever remove old.txt      move a document to the trash",
            "python -m retriever bases create hr     a knowledge base of its own",
            'python -m retriever ask --base hr "年假有几天?"',
            "python -m retriever COMMAND --help      a command's options and examples",
        ],
    )
    main.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = main.add_subparsers(dest="command", required=True)

    def with_model(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--model",
            default=DEFAULT_EMBEDDER,
            help=f"embedding model (default: {DEFAULT_EMBEDDER}, built offline, run on this "
            "machine's fastest kernel); any other sentence-transformers model name or local "
            "folder, run by torch",
        )
        add_kernel_option(command)
        command.add_argument("--query-prefix", help="text put before questions (model default)")
        command.add_argument("--passage-prefix", help="text put before passages (model default)")
        command.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    build = commands.add_parser(
        "build",
        help="build the index from the corpus folder",
        description="Build the index from the corpus folder (files unchanged since the last\n"
        "build are not read again).",
        examples=[
            "python -m retriever build",
            "python -m retriever build --if-stale      nothing to do when index/ is current",
            "python -m retriever build --corpus docs --index docs-index --max-chars 200",
            "python -m retriever build --base hr         the knowledge base hr",
            "python -m retriever build --backend milvus",
            "python -m retriever build --backend milvus --milvus-uri http://127.0.0.1:19530",
        ],
    )
    build.add_argument("--corpus", help="folder of source files (corpus)")
    build.add_argument("--index", help="index folder to write (index)")
    add_base_option(build)
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
    build.add_argument(
        "--milvus-uri",
        help="with --backend milvus: a Milvus server's URI (http://host:19530); its token, if "
        f"it asks for one, in {MILVUS_TOKEN_VARIABLE}",
    )
    build.add_argument("--milvus-database", help="with --milvus-uri: the database (default)")
    build.add_argument(
        "--milvus-consistency",
        choices=CONSISTENCY_LEVELS,
        help=f"with --milvus-uri: the level searches read at ({MilvusSettings.consistency})",
    )
    with_model(build)
    build.set_defaults(run=cmd_build)

    for name, run, help_text, examples in (
        (
            "search",
            cmd_search,
            "the passages that best match a question",
            [
                'python -m retriever search "办公室主任的职责"',
                'python -m retriever search -k 3 --mode bm25 "考勤报表"',
                'python -m retriever search --json "考勤" > hits.json',
                'python -m retriever search --base hr "年假"',
            ],
        ),
        (
            "ask",
            cmd_ask,
            "an answer with cited passages",
            [
                'python -m retriever ask "行政助理负责什么工作?"',
                'python -m retriever ask -k 3 --json "办公室主任和行政主管哪个大?"',
                'python -m retriever ask --base hr "年假有几天?"',
                "RETRIEVER_GENERATE_URL=http://127.0.0.1:11434/v1 RETRIEVER_GENERATE_MODEL=qwen2.5"
                ' python -m retriever ask --generate "年假有几天?"',
            ],
        ),
    ):
        command = commands.add_parser(
            name, help=help_text, description=help_text.capitalize() + ".", examples=examples
        )
        command.add_argument("question")
        command.add_argument(
            "-k", type=_whole_number(1, MAX_K), default=5, help=f"passages to return, 1-{MAX_K} (5)"
        )
        command.add_argument("--index", help="index folder (index)")
        add_base_option(command)
        command.add_argument("--json", action="store_true", help="one JSON document on stdout")
        if name == "search":
            command.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
        else:
            command.add_argument(
                "--min-confidence",
                type=_probability,
                help="confidence (0-1) below which the corpus counts as not answering "
                "(default: the cut fitted for the index's model)",
            )
            command.add_argument(
                "--generate",
                action="store_true",
                help="have the model server of RETRIEVER_GENERATE_URL/_MODEL write the answer, "
                "each sentence checked against its passages (docs/generation.md)",
            )
        command.set_defaults(run=run)

    evaluate = commands.add_parser(
        "eval",
        help="retrieval metrics on an evaluation folder",
        description="Retrieval metrics on an evaluation folder; its index is built once into\n"
        "the cache.",
        examples=[
            "python -m retriever eval bench/datasets/cmrc2018_dev",
            "python -m retriever eval bench/datasets/dureader_demo --compare --limit 200",
        ],
    )
    evaluate.add_argument("dataset", help="folder with corpus.jsonl, queries.jsonl, qrels.tsv")
    evaluate.add_argument("--qrels", default="qrels.tsv", help="judgement file (qrels.tsv)")
    evaluate.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    evaluate.add_argument("--compare", action="store_true", help="all three modes side by side")
    evaluate.add_argument("--limit", type=_whole_number(1), help="only the first N questions")
    evaluate.add_argument("--json", action="store_true", help="one JSON document on stdout")
    with_model(evaluate)
    evaluate.set_defaults(run=cmd_eval)

    info = commands.add_parser(
        "info",
        help="what the index holds and whether it is current",
        description="What the index holds, how it was built, and whether it still matches\n"
        "the corpus folder.",
        examples=[
            "python -m retriever info",
            "python -m retriever info --index docs-index --corpus docs",
            "python -m retriever info --base hr",
            "python -m retriever info --json       the whole manifest, and up_to_date",
        ],
    )
    info.add_argument("--index", help="index folder (index)")
    info.add_argument("--corpus", help="corpus folder to compare (corpus)")
    add_base_option(info)
    info.add_argument(
        "--json", action="store_true", help="the index's manifest.json and up_to_date, as JSON"
    )
    info.set_defaults(run=cmd_info)

    prepare = commands.add_parser(
        "prepare-model",
        help="build the default model (offline)",
        description="Build the default model's folders, once, offline (about a minute), then\n"
        "time each kernel this CPU can run it on and keep the fastest whose vectors stay\n"
        "within a cosine of 0.99 of fp32's (seconds). `build` does both by itself when\n"
        "they are missing.",
        examples=[
            "python -m retriever prepare-model",
            "python -m retriever prepare-model --kernel torch-fp32   keep fp32 on this machine",
        ],
    )
    add_kernel_option(prepare)
    prepare.set_defaults(run=cmd_prepare_model)
    add_document_commands(commands)
    add_base_commands(commands)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit status. Every command, and --help, goes through here."""
    try:
        try:
            return _run(argv)
        finally:
            # Flushed here, so that a reader gone early shows as BrokenPipeError below rather
            # than as a traceback while Python exits. argparse's --help exits through here too.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader has gone (`info | head -1`): stop quietly, as other command-line tools
        # do. Python flushes stdout again at exit, so point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe


def _run(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except (IndexLoadError, QuestionError, CorpusError, FileNotFoundError, ValueError) as error:
        # ValueError covers IndexFolderError and ModelLoadError too.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT


if __name__ == "__main__":
    sys.exit(main())
