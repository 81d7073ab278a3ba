"""The command line's knowledge bases: `bases list|create|rename|delete|trash|restore`, and the
`--base NAME` option of the commands that read or change one base.

    python -m retriever bases create hr              a new, empty base in bases/hr/
    python -m retriever bases list                   the default base, then the others
    python -m retriever remove --base hr old.txt     any document command, on base hr
    python -m retriever build --base hr              index bases/hr/corpus into bases/hr/index

Without --base a command uses the default base, the corpus/ and index/ folders (or those its
--corpus and --index name), as it always did. The bases live in RETRIEVER_BASES (bases/ by
default), the same folder the web app uses (retriever.bases describes its layout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retriever.bases import DEFAULT, DEFAULT_ROOT, MAX_NAME_CHARS, NAME_RULE, Bases, folders
from retriever.config import Environment
from retriever.trash import document_names


def bases_root() -> Path:
    return Environment.read().bases or DEFAULT_ROOT


def add_base_option(command: argparse.ArgumentParser) -> None:
    """--base NAME, on a command that also takes --corpus and/or --index (default None, so
    that naming both a base and a folder can be refused)."""
    command.add_argument(
        "--base",
        metavar="NAME",
        help=f"the knowledge base to use (`bases list` names them; default: {DEFAULT}, the "
        "corpus and index folders)",
    )


def base_folders(args: argparse.Namespace) -> tuple[Path, Path]:
    """The corpus and index folders the arguments name: --base's, or --corpus and --index."""
    options = vars(args)
    return folders(args.base, options.get("corpus"), options.get("index"), root=bases_root())


def build_command(args: argparse.Namespace) -> str:
    """The command that rebuilds the index these arguments name, for hints."""
    options = vars(args)
    if args.base:
        where = f" --base {args.base}"
    else:
        given = [option for option in ("corpus", "index") if options.get(option)]
        where = "".join(f" --{option} {options[option]}" for option in given)
    return f"python -m retriever build{where}"


def cmd_list(args: argparse.Namespace) -> int:
    bases = Bases(bases_root()).list()
    if args.json:
        rows = [{**base.to_dict(), "documents": _documents(base.corpus)} for base in bases]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for base in bases:
        built = "indexed" if (base.index / "manifest.json").is_file() else "not built yet"
        # The name last: CJK names are twice as wide as their length, so no column after it.
        print(f"{_documents(base.corpus):>5} documents  {built:<13}  {base.name} ({base.corpus})")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    base = Bases(bases_root()).create(args.name)
    print(
        f"created {base.name}: put documents in {base.corpus} (or upload them on the page), "
        f"then run `python -m retriever build --base {base.name}`",
        file=sys.stderr,
    )
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    base = Bases(bases_root()).rename(args.name, args.new_name)
    print(f"renamed {args.name} to {base.name}", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    entry = Bases(bases_root()).delete(args.name)
    print(
        f"moved {entry.name} to the trash as {entry.id} (restore: python -m retriever bases "
        f"restore {entry.id})",
        file=sys.stderr,
    )
    return 0


def cmd_trash(args: argparse.Namespace) -> int:
    entries = Bases(bases_root()).trash()
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False, indent=2))
    elif not entries:
        print("the bases trash is empty", file=sys.stderr)
    for entry in [] if args.json else entries:
        print(f"{entry.id}  {entry.removed_at}  {entry.name}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    base = Bases(bases_root()).restore(args.id, args.name)
    print(f"restored the knowledge base {base.name}", file=sys.stderr)
    return 0


def _documents(corpus: Path) -> int:
    return len(document_names(corpus)) if corpus.is_dir() else 0


def add_base_commands(commands: argparse._SubParsersAction) -> None:
    """Register `bases` and its subcommands on the main parser's subcommands (whose parsers
    take `examples`: retriever.cli.CommandParser)."""
    bases = commands.add_parser(
        "bases",
        help="list, create, rename and delete knowledge bases",
        description="Knowledge bases: named collections, each with its own documents and\n"
        f"index, in {DEFAULT_ROOT}/ (or RETRIEVER_BASES). The default base is the corpus\n"
        "and index folders. Names: letters, digits (CJK included), '-' and '_', at most\n"
        f"{MAX_NAME_CHARS} characters, not starting with '-'.",
        examples=[
            "python -m retriever bases list",
            "python -m retriever bases create hr",
            "python -m retriever bases rename hr 人事",
            "python -m retriever bases delete 人事       to the bases trash, restorable",
            "python -m retriever bases restore 20260101T120000Z-1a2b3c4d",
        ],
    )
    actions = bases.add_subparsers(dest="action", required=True)

    def action(name: str, run, help_text: str, examples: list[str]) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name, help=help_text, description=help_text.capitalize() + ".", examples=examples
        )
        parser.set_defaults(run=run)
        return parser

    listing = action(
        "list",
        cmd_list,
        "the knowledge bases, the default first",
        ["python -m retriever bases list", "python -m retriever bases list --json"],
    )
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout")
    create = action(
        "create",
        cmd_create,
        "a new, empty knowledge base",
        ["python -m retriever bases create hr"],
    )
    create.add_argument("name", help=f"its name: {NAME_RULE}")
    rename = action(
        "rename",
        cmd_rename,
        "rename a knowledge base (its documents and index move with it)",
        ["python -m retriever bases rename hr 人事"],
    )
    rename.add_argument("name", help="its name now")
    rename.add_argument("new_name", help="its new name")
    delete = action(
        "delete",
        cmd_delete,
        "move a knowledge base to the bases trash (restorable)",
        ["python -m retriever bases delete hr"],
    )
    delete.add_argument("name")
    trash = action(
        "trash",
        cmd_trash,
        "list the deleted knowledge bases",
        ["python -m retriever bases trash", "python -m retriever bases trash --json"],
    )
    trash.add_argument("--json", action="store_true", help="one JSON document on stdout")
    restore = action(
        "restore",
        cmd_restore,
        "put a deleted knowledge base back",
        [
            "python -m retriever bases restore 20260101T120000Z-1a2b3c4d",
            "python -m retriever bases restore 20260101T120000Z-1a2b3c4d --name hr2",
        ],
    )
    restore.add_argument("id", help="the entry's id, as `bases trash` lists it")
    restore.add_argument("--name", help="restore under this name (default: its old name)")
