"""The command line's document commands: list, remove (to the trash), list the trash, restore.

    python -m retriever documents            the corpus folder's documents
    python -m retriever remove NAME          move one to corpus/.trash/ (kept, restorable)
    python -m retriever trash                what the trash holds, the latest first
    python -m retriever restore ID           put a trashed file back under its old name

They change only the corpus folder, as the page and the HTTP API do (retriever.trash), and
never the index: run `python -m retriever build` after them (`make run` does it at start).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retriever.index import open_manifest
from retriever.schema import IndexLoadError
from retriever.trash import document_names, list_trash, remove_file, restore

REBUILD = "rebuild the index with `python -m retriever build` to search the change"


def cmd_documents(args: argparse.Namespace) -> int:
    for name in document_names(Path(args.corpus)):
        print(name)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    corpus = Path(args.corpus)
    entry = remove_file(corpus, args.name, _readable(corpus, Path(args.index)))
    print(
        f"moved {entry.name} to the trash as {entry.id} (restore: python -m retriever "
        f"restore {entry.id}); {REBUILD}",
        file=sys.stderr,
    )
    return 0


def cmd_trash(args: argparse.Namespace) -> int:
    entries = list_trash(Path(args.corpus))
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False, indent=2))
    elif not entries:
        print("the trash is empty", file=sys.stderr)
    for entry in [] if args.json else entries:
        print(f"{entry.id}  {entry.removed_at}  {entry.reason:<13} {entry.size:>10}  {entry.name}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    entry, displaced = restore(Path(args.corpus), args.id)
    print(f"restored {entry.name}", file=sys.stderr)
    if displaced is not None:
        print(f"the file it replaced is in the trash as {displaced.id}", file=sys.stderr)
    print(REBUILD, file=sys.stderr)
    return 0


def _readable(corpus: Path, index: Path) -> list[str]:
    """The files known to be readable: the served index's sources, or, without a usable
    index, every document (the build will then say which of them it could not read)."""
    try:
        return [source.path for source in open_manifest(index).sources]
    except IndexLoadError:
        return document_names(corpus)


def add_document_commands(commands: argparse._SubParsersAction) -> None:
    """Register the document commands on the main parser's subcommands (whose parsers take
    `examples`: retriever.__main__.CommandParser)."""

    def command(name: str, run, help_text: str, examples: list[str]) -> argparse.ArgumentParser:
        parser = commands.add_parser(
            name, help=help_text, description=help_text.capitalize() + ".", examples=examples
        )
        parser.add_argument("--corpus", default="corpus", help="the corpus folder (corpus)")
        parser.set_defaults(run=run)
        return parser

    command(
        "documents",
        cmd_documents,
        "list the corpus folder's documents",
        ["python -m retriever documents", "python -m retriever documents --corpus docs"],
    )
    remove = command(
        "remove",
        cmd_remove,
        "move a document to the trash (restorable)",
        [
            "python -m retriever remove old.txt",
            "python -m retriever remove sub/报销制度.docx && python -m retriever build",
        ],
    )
    remove.add_argument("name", help="the document, as `documents` lists it")
    remove.add_argument(
        "--index", default="index", help="the index whose sources count as readable (index)"
    )
    trash = command(
        "trash",
        cmd_trash,
        "list the trash: removed and replaced files",
        ["python -m retriever trash", "python -m retriever trash --json"],
    )
    trash.add_argument("--json", action="store_true", help="one JSON document on stdout")
    back = command(
        "restore",
        cmd_restore,
        "put a file from the trash back in the corpus",
        [
            "python -m retriever trash          the entries, with their ids",
            "python -m retriever restore 20260101T120000Z-1a2b3c4d",
        ],
    )
    back.add_argument("id", help="the entry's id, as `trash` lists it")
