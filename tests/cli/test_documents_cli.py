"""The command line's document commands: remove to the trash, list it, restore, refuse."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "retriever", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the trash included), by relative path, with its hash."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "apple.txt").write_text("苹果是一种水果，富含维生素。\n", encoding="utf-8")
    (folder / "sub" / "banana.md").write_text("# 香蕉\n香蕉产于热带地区。\n", encoding="utf-8")
    return folder


def test_remove_moves_the_file_to_the_trash_and_restore_puts_it_back(corpus: Path) -> None:
    original = (corpus / "sub" / "banana.md").read_bytes()
    listed = cli("documents", "--corpus", str(corpus))
    assert listed.returncode == 0 and listed.stdout.split() == ["apple.txt", "sub/banana.md"]

    removed = cli("remove", "sub/banana.md", "--corpus", str(corpus), "--index", "missing")
    assert removed.returncode == 0, removed.stderr
    assert "moved sub/banana.md to the trash" in removed.stderr
    assert not (corpus / "sub" / "banana.md").exists()

    trash = cli("trash", "--corpus", str(corpus), "--json")
    entries = json.loads(trash.stdout)
    assert [(e["name"], e["reason"]) for e in entries] == [("sub/banana.md", "removed")]

    restored = cli("restore", entries[0]["id"], "--corpus", str(corpus))
    assert restored.returncode == 0 and "restored sub/banana.md" in restored.stderr
    assert (corpus / "sub" / "banana.md").read_bytes() == original
    assert json.loads(cli("trash", "--corpus", str(corpus), "--json").stdout) == []


def test_restore_over_a_new_file_keeps_the_new_one_in_the_trash(corpus: Path) -> None:
    cli("remove", "apple.txt", "--corpus", str(corpus), "--index", "missing")
    (entry,) = json.loads(cli("trash", "--corpus", str(corpus), "--json").stdout)
    (corpus / "apple.txt").write_text("新写的苹果文件。\n", encoding="utf-8")
    restored = cli("restore", entry["id"], "--corpus", str(corpus))
    assert "the file it replaced is in the trash as" in restored.stderr
    assert "富含维生素" in (corpus / "apple.txt").read_text(encoding="utf-8")
    (kept,) = json.loads(cli("trash", "--corpus", str(corpus), "--json").stdout)
    assert kept["name"] == "apple.txt" and kept["reason"] == "restored-over"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("remove", "../outside.txt"), "is not a document of"),
        (("remove", "/etc/passwd"), "is not a document of"),
        (("remove", "nothere.txt"), "is not a document of"),
        (("restore", "20990101T000000Z-deadbeef"), "no entry '20990101T000000Z-deadbeef'"),
        (("restore", "../../etc"), "no entry '../../etc'"),
    ],
)
def test_bad_names_and_ids_change_nothing(corpus: Path, args: tuple[str, ...], message: str):
    before = snapshot(corpus.parent)
    result = cli(*args, "--corpus", str(corpus))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(corpus.parent) == before


def test_removing_the_last_readable_document_is_refused(corpus: Path) -> None:
    assert cli("remove", "apple.txt", "--corpus", str(corpus), "--index", "x").returncode == 0
    before = snapshot(corpus.parent)
    result = cli("remove", "sub/banana.md", "--corpus", str(corpus), "--index", "x")
    assert result.returncode == 2 and "would leave no readable document" in result.stderr
    assert snapshot(corpus.parent) == before
