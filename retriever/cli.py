"""The command line's parser: every command's options, help and examples. The commands
themselves are in index_cli (build, info, prepare-model), questions_cli (search, ask, eval),
documents_cli and bases_cli; retriever.__main__ runs them."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from retriever.backends import DENSE_BACKENDS, LEXICAL_BACKENDS
from retriever.backends.milvus_settings import CONSISTENCY_LEVELS, MilvusSettings
from retriever.bases_cli import add_base_commands, add_base_option
from retriever.config import KERNEL_ENV, MILVUS_TOKEN_VARIABLE, BackendSettings, ChunkSettings
from retriever.documents_cli import add_document_commands
from retriever.embedding import DEFAULT_EMBEDDER
from retriever.index_cli import cmd_build, cmd_info, cmd_prepare_model
from retriever.kernels import KERNELS
from retriever.questions_cli import cmd_ask, cmd_eval, cmd_search

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
            "python -m retriever build --backend milvus --lexical milvus   all in Milvus Lite",
            "python -m retriever build --backend milvus --lexical milvus "
            "--milvus-uri http://127.0.0.1:19530   all on a Milvus 2.5+ server",
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
        help="dense engine: faiss, or milvus (Milvus Lite in the index folder, or a server at "
        "--milvus-uri); default: what "
        f"the index uses, {BackendSettings().dense} for a new one",
    )
    build.add_argument(
        "--lexical",
        choices=sorted(LEXICAL_BACKENDS),
        help="BM25 engine: bm25s, or milvus (Milvus's BM25: Lite in the index folder, or a "
        "2.5+ server at --milvus-uri); "
        f"default: what the index uses, {BackendSettings().lexical} for a new one",
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
                'python -m retriever ask --generate "年假有几天?"  # RETRIEVER_GENERATE_* set',
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
