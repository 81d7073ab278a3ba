"""`info` as a short summary (its --json the raw manifest), examples under every --help, and
quiet ends when the reader of the output goes away (issue 11).

The index here is built with the stand-in embedder: `info` reads the manifest, never the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from retriever import Retriever
from retriever.__main__ import main
from retriever.cli import parser


@pytest.fixture
def index(small_corpus: Path, tmp_path: Path, hashing_embedder) -> Path:
    folder = tmp_path / "index"
    Retriever.build(small_corpus, folder, embedder=hashing_embedder)
    return folder


def info(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["info", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_info_is_a_short_summary(index: Path, small_corpus: Path, capsys) -> None:
    lines = info(capsys, "--index", str(index), "--corpus", str(small_corpus))
    assert len(lines) <= 12
    assert [line.split()[0] for line in lines] == [
        "index",
        "built",
        "model",
        "engines",
        "holds",
        "skipped",
        "corpus",
    ]
    assert lines[0].startswith(f"index    {index} (") and lines[0].endswith(" kB on disk)")
    assert lines[1].endswith(" UTC, within the hour")
    assert lines[2].startswith("model    test-hashing (64 dimensions), run on test on ")
    assert lines[3] == "engines  faiss for vectors, bm25s for words"
    assert lines[4].endswith("of at most 300 characters, from 2 documents in 2 files")
    assert lines[5] == "skipped  0 files"
    assert lines[6] == f"corpus   {small_corpus}: up to date (2 files)"


def test_info_says_what_changed_and_how_to_catch_up(
    index: Path, small_corpus: Path, capsys
) -> None:
    (small_corpus / "jobs.txt").write_text("行政助理负责考勤。\n", encoding="utf-8")
    (small_corpus / "new.txt").write_text("新的文件。\n", encoding="utf-8")
    (small_corpus / "fruit.md").unlink()
    (small_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    lines = info(capsys, "--index", str(index), "--corpus", str(small_corpus))
    assert lines[-2:] == [
        f"corpus   {small_corpus}: out of date: 2 new, 1 changed, 1 gone since the build",
        f"         update it with `python -m retriever build --corpus {small_corpus} "
        f"--index {index}`",
    ]
    lines = info(capsys, "--index", str(index), "--corpus", str(small_corpus / "nowhere"))
    assert lines[-1].endswith("nowhere: no such folder, so the index cannot be compared")


def test_info_lists_skipped_files(small_corpus: Path, tmp_path: Path, hashing_embedder, capsys):
    (small_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder)
    lines = info(capsys, "--index", str(tmp_path / "index"), "--corpus", str(small_corpus))
    assert "skipped  1 file:" in lines
    assert "         broken.pdf: not a readable PDF: the file is damaged or is not a PDF" in lines


def test_info_json_is_the_manifest(index: Path, small_corpus: Path, capsys) -> None:
    assert main(["info", "--json", "--index", str(index), "--corpus", str(small_corpus)]) == 0
    shown = json.loads(capsys.readouterr().out)
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert shown == {**manifest, "up_to_date": True}


def commands() -> list[str]:
    (subcommands,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subcommands.choices)


def test_every_command_lists_the_examples_in_its_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "\nexamples:\n  python -m retriever build " in capsys.readouterr().out
    names = commands()
    assert {"build", "search", "ask", "eval", "info", "documents", "remove", "trash"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        examples = capsys.readouterr().out.split("\nexamples:\n")[1].splitlines()
        assert any(line.startswith(f"  python -m retriever {name}") for line in examples), name
        # Laid out as written: an example is never wrapped onto the next line.
        assert all(line.startswith("  python -m retriever ") for line in examples), name


@pytest.mark.parametrize(
    "args",
    [["--help"], ["build", "--help"], ["info"], ["info", "--json"], ["documents"]],
    ids=" ".join,
)
def test_closed_pipe_ends_quietly_for_every_command(
    args: list[str], index: Path, small_corpus: Path
) -> None:
    """`python -m retriever ... | head -1`: the reader has gone before the output is written."""
    where = [] if "--help" in args else ["--corpus", str(small_corpus)]
    if args[0] == "info" and "--help" not in args:
        where += ["--index", str(index)]
    child = subprocess.Popen(
        [sys.executable, "-m", "retriever", *args, *where],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        # Buffered output, as in a user's shell: the closed pipe shows when stdout is flushed
        # (unbuffered, argparse would swallow the failed write of --help and exit 0).
        env={name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"},
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    stderr = child.stderr.read().decode()
    # 141 (128 + SIGPIPE), as a shell reports a tool stopped by a closed pipe.
    assert child.wait(timeout=120) == 141
    assert stderr == ""
