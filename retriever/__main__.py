"""Command line: build, search, ask, eval, info, prepare-model, the corpus folder's documents
and trash (retriever.documents_cli) and the knowledge bases (retriever.bases_cli).
`python -m retriever --help` lists them; retriever.cli lays out their options."""

from __future__ import annotations

import logging
import os
import sys

from retriever.cli import parser
from retriever.query import QuestionError
from retriever.schema import IndexLoadError
from retriever.text import CorpusError


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
