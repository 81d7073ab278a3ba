"""The command line's document commands: list, remove (to the trash), list the trash, restore.

    python -m retriever documents            the corpus folder's documents
    python -m retriever remove NAME          move one to corpus/.trash/ (kept, restorable)
    python -m retriever trash                what the trash holds, the latest first
    python -m retriever restore ID           put a trashed file back under its old name

They change only the corpus folder, as the page and the HTTP API do (retriever.trash), and
never the index: run `python -m retriever build` after them (`make run` does it at start).
Each takes --base NAME to work on a knowledge base's corpus (retriever.bases_cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retriever.bases_cli import add_base_option, base_folders, build_command
from retriever.index import open_manifest
from retriever.schema import IndexLoadError
from retriever.trash import document_names, list_trash, remove_file, restore


def cmd_documents(args: argparse.Namespace) -> int:
    corpus, _ = base_folders(args)
    for name in document_names(corpus):
        print(name)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    corpus, index = base_folders(args)
    entry = remove_file(corpus, args.name, _readable(corpus, index))
    base = f" --base {args.base}" if args.base else ""
    print(
        f"moved {entry.name} to the trash as {entry.id} (restore: python -m retriever "
        f"restore{base} {entry.id}); {_rebuild(args)}",
        file=sys.stderr,
    )
    return 0


def cmd_trash(args: argparse.Namespace) -> int:
    corpus, _ = base_folders(args)
    entries = list_trash(corpus)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False, indent=2))
    elif not entries:
        print("the trash is empty", file=sys.stderr)
    for entry in [] if args.json else entries:
        print(f"{entry.id}  {entry.removed_at}  {entry.reason:<13} {entry.size:>10}  {entry.name}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    corpus, _ = base_folders(args)
    entry, displaced = restore(corpus, args.id)
    print(f"restored {entry.name}", file=sys.stderr)
    if displaced is not None:
        print(f"the file it replaced is in the trash as {displaced.id}", file=sys.stderr)
    print(_rebuild(args), file=sys.stderr)
    return 0


def _rebuild(args: argparse.Namespace) -> str:
    return f"rebuild the index with `{build_command(args)}` to search the change"


def _readable(corpus: Path, index: Path) -> list[str]:
    """The files known to be readable: the served index's sources, or, without a usable
    index, every document (the build will then say which of them it could not read)."""
    try:
        return [source.path for source in open_manifest(index).sources]
    except IndexLoadError:
        return document_names(corpus)


def add_document_commands(commands: argparse._SubParsersAction) -> None:
    """Register the document commands on the main parser's subcommands (whose parsers take
    `examples`: retriever.cli.CommandParser)."""

    def command(name: str, run, help_text: str, examples: list[str]) -> argparse.ArgumentParser:
        parser = commands.add_parser(
            name, help=help_text, description=help_text.capitalize() + ".", examples=examples
        )
        parser.add_argument("--corpus", help="the corpus folder (corpus)")
        add_base_option(parser)
        parser.set_defaults(run=run)
        return parser

    command(
        "documents",
        cmd_documents,
        "list the corpus folder's documents",
        [
            "python -m retriever documents",
            "python -m retriever documents --corpus docs",
            "python -m retriever documents --base hr",
        ],
    )
    remove = command(
        "remove",
        cmd_remove,
        "move a document to the trash (restorable)",
        [
            "python -m retriever remove old.txt",
            "python -m retriever remove sub/报销制度.docx && python -m retriever build",
            "python -m retriever remove --base hr old.txt",
        ],
    )
    remove.add_argument("name", help="the document, as `documents` lists it")
    remove.add_argument("--index", help="the index whose sources count as readable (index)")
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
