"""The command line's knowledge bases: `bases list|create|rename|delete|trash|restore`, and
`--base` on build, ask, search, info and the document commands, with the default base (the
corpus and index folders) untouched.

Commands run in-process through `main`, with the stand-in embedder in place of the model,
in a folder of their own (corpus/, index/ and bases/ there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import HashingEmbedder
from web_server import snapshot

import retriever.index_cli
import retriever.search
from retriever.__main__ import main

HR = "年假\n员工入职满一年后每年享有五天带薪年假，满十年后享有十天。\n"


@pytest.fixture
def here(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch, hashing_embedder
) -> Path:
    """A working folder with corpus/ (the small corpus), its index/ built, and no bases."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETRIEVER_BASES", raising=False)
    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(retriever.index_cli, "embedder", lambda args: HashingEmbedder())
    monkeypatch.setattr(retriever.search, "load_embedder", lambda name, **kw: HashingEmbedder())
    assert small_corpus == tmp_path / "corpus"
    assert main(["build", "-q"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_build_and_ask_in_a_base_leave_the_default_base_alone(here: Path, capsys) -> None:
    default_index = snapshot(here / "index")
    status, _, err = run(capsys, "bases", "create", "人事")
    assert status == 0 and "python -m retriever build --base 人事" in err
    (here / "bases" / "人事" / "corpus" / "leave.txt").write_text(HR, encoding="utf-8")

    status, _, err = run(capsys, "build", "-q", "--base", "人事")
    assert status == 0 and "built bases/人事/index: 1 files" in err
    status, out, _ = run(capsys, "ask", "--json", "--base", "人事", "年假有几天?")
    answer = json.loads(out)
    assert status == 0 and {c["source"] for c in answer["citations"]} == {"leave.txt"}
    status, out, _ = run(capsys, "search", "--json", "--base", "人事", "年假")
    assert status == 0 and json.loads(out)[0]["source"] == "leave.txt"

    # The default base answers from its own documents, and its index was not rebuilt.
    status, out, _ = run(capsys, "search", "--json", "年假")
    assert status == 0 and "leave.txt" not in {hit["source"] for hit in json.loads(out)}
    assert snapshot(here / "index") == default_index

    status, out, _ = run(capsys, "info", "--base", "人事")
    assert status == 0 and "index    bases/人事/index (" in out
    assert "corpus   bases/人事/corpus: up to date (1 file)" in out
    (here / "bases" / "人事" / "corpus" / "more.txt").write_text("病假。\n", encoding="utf-8")
    status, out, _ = run(capsys, "info", "--base", "人事")
    assert "update it with `python -m retriever build --base 人事`" in out

    status, out, _ = run(capsys, "bases", "list", "--json")
    listed = {base["name"]: base for base in json.loads(out)}
    assert listed["default"]["default"] and listed["default"]["documents"] == 2
    assert listed["人事"]["documents"] == 2 and not listed["人事"]["default"]


def test_document_commands_take_a_base(here: Path, capsys) -> None:
    run(capsys, "bases", "create", "hr")
    corpus = here / "bases" / "hr" / "corpus"
    (corpus / "leave.txt").write_text(HR, encoding="utf-8")
    (corpus / "old.txt").write_text("旧制度。\n", encoding="utf-8")
    assert run(capsys, "documents", "--base", "hr")[1].split() == ["leave.txt", "old.txt"]

    status, _, err = run(capsys, "remove", "--base", "hr", "old.txt")
    assert status == 0 and "python -m retriever build --base hr" in err
    (entry,) = json.loads(run(capsys, "trash", "--json", "--base", "hr")[1])
    assert entry["name"] == "old.txt"
    assert json.loads(run(capsys, "trash", "--json")[1]) == []  # the default base's trash
    assert run(capsys, "restore", "--base", "hr", entry["id"])[0] == 0
    assert (corpus / "old.txt").is_file()
    assert run(capsys, "documents")[1].split() == ["fruit.md", "jobs.txt"]


def test_rename_delete_and_restore(here: Path, capsys) -> None:
    run(capsys, "bases", "create", "hr")
    (here / "bases" / "hr" / "corpus" / "leave.txt").write_text(HR, encoding="utf-8")
    assert run(capsys, "build", "-q", "--base", "hr")[0] == 0
    assert run(capsys, "bases", "rename", "hr", "人事")[0] == 0
    status, out, _ = run(capsys, "search", "--json", "--base", "人事", "年假")
    assert status == 0 and json.loads(out)[0]["source"] == "leave.txt"

    status, _, err = run(capsys, "bases", "delete", "人事")
    assert status == 0 and "python -m retriever bases restore " in err
    (entry,) = json.loads(run(capsys, "bases", "trash", "--json")[1])
    assert entry["name"] == "人事"
    assert run(capsys, "bases", "list")[1].splitlines()[1:] == []
    assert run(capsys, "bases", "restore", entry["id"], "--name", "hr")[0] == 0
    status, out, _ = run(capsys, "ask", "--json", "--base", "hr", "年假有几天?")
    assert status == 0 and json.loads(out)["citations"][0]["source"] == "leave.txt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "--base", "nothere", "年假"], "no knowledge base called 'nothere'"),
        (["build", "--base", "../up"], "cannot name a knowledge base"),
        (["build", "--base", "hr", "--corpus", "corpus"], "not both"),
        (["info", "--base", "hr", "--index", "index"], "not both"),
        (["ask", "--base", "hr", "年假"], "`python -m retriever build --base hr`"),
        (["bases", "create", "hr"], "bases/hr already exists"),
        (["bases", "create", ".hidden"], "cannot name a knowledge base"),
        (["bases", "delete", "default"], "the default base cannot be deleted"),
        (["bases", "rename", "default", "x"], "the default base cannot be renamed"),
        (["bases", "delete", "photos"], "was not created as a knowledge base"),
        (["bases", "restore", "20990101T000000Z-deadbeef"], "no entry"),
    ],
)
def test_refusals_are_one_line_and_touch_nothing(
    here: Path, capsys, args: list[str], message: str
) -> None:
    run(capsys, "bases", "create", "hr")  # no documents, so no index
    (here / "bases" / "photos").mkdir()
    (here / "bases" / "photos" / "cat.jpg").write_bytes(b"a cat")
    status, out, err = run(capsys, *args)
    assert status == 2 and out == "" and message in err, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert (here / "bases" / "photos" / "cat.jpg").read_bytes() == b"a cat"


def test_the_bases_folder_comes_from_the_environment(
    here: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRIEVER_BASES", str(here / "elsewhere"))
    assert run(capsys, "bases", "create", "hr")[0] == 0
    assert (here / "elsewhere" / "hr" / "base.json").is_file() and not (here / "bases").exists()
    shutil.rmtree(here / "elsewhere")
