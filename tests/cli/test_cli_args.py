"""The command line checks its arguments and never ends in a traceback (issue 8).

Each case runs `python -m retriever` as a user would. The commands that search load the
model named in the index's manifest, so the index here is built with the real default model
over a two-file corpus (a few seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from retriever import QuestionError, Retriever
from retriever.__main__ import main
from retriever.query import check_question

pytestmark = pytest.mark.model

# A hub name must fail at once: offline, the hub is not asked (online, it is asked, with
# retries, and fails the same way a minute later).
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(*args: str | bytes, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retriever", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


def assert_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit code 2, the message on stderr, nothing on stdout, no traceback."""
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def assert_one_error_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert_error(result, message)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "corpus"
    folder.mkdir()
    (folder / "jobs.txt").write_text(
        "行政助理的职责\n负责员工的考勤,于次月第一个工作日提供考勤报表并存档;负责办公用品采购。\n"
        "办公室主任和行政主管哪个大?\n办公室主任和行政主管,在没有特定公司的前提下,根本无法进行比较。\n",
        encoding="utf-8",
    )
    (folder / "fruit.md").write_text("# 苹果\n苹果是一种水果,富含维生素。\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path) -> str:
    folder = corpus.parent / "index"
    result = run("build", "--corpus", str(corpus), "--index", str(folder), "-q")
    assert result.returncode == 0, result.stderr
    return str(folder)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "考勤", "-k", "0"], "argument -k: 0 is out of range: give from 1 to 50"),
        (["ask", "考勤", "-k", "0"], "argument -k: 0 is out of range: give from 1 to 50"),
        (["ask", "考勤", "-k", "51"], "argument -k: 51 is out of range"),
        (["search", "考勤", "-k", "two"], "argument -k: 'two' is not a whole number"),
        (
            ["ask", "考勤", "--min-confidence", "nan"],
            "argument --min-confidence: nan is not a confidence",
        ),
        (
            ["ask", "考勤", "--min-confidence", "inf"],
            "argument --min-confidence: inf is not a confidence",
        ),
        (
            ["ask", "考勤", "--min-confidence", "1.5"],
            "argument --min-confidence: 1.5 is not a confidence",
        ),
        (
            ["ask", "考勤", "--min-confidence", "high"],
            "argument --min-confidence: 'high' is not a number",
        ),
        (["build", "--max-chars", "10"], "argument --max-chars: 10 is out of range: give at least"),
        (["eval", "bench/datasets/cmrc2018_dev", "--limit", "0"], "argument --limit: 0 is out"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_bad_arguments_are_refused_by_the_parser(args: list[str], message: str) -> None:
    assert_error(run(*args), message)


def test_unknown_model_name_is_an_error_line(tmp_path: Path, corpus: Path) -> None:
    result = run(
        "build", "--corpus", str(corpus), "--index", str(tmp_path / "i"), "--model", "no-such-model"
    )
    assert_one_error_line(result, "error: no model named 'no-such-model'")
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize("kind", ["missing folder", "folder without a model"])
def test_model_folder_that_is_no_model_is_an_error_line(
    tmp_path: Path, corpus: Path, kind: str
) -> None:
    model = tmp_path / "my-model"
    if kind == "folder without a model":
        model.mkdir()
        (model / "notes.txt").write_text("不是模型", encoding="utf-8")
    result = run(
        "build", "--corpus", str(corpus), "--index", str(tmp_path / "i"), "--model", str(model)
    )
    assert_one_error_line(result, f"error: no model named '{model}'")


@pytest.mark.parametrize("command", ["search", "ask"])
def test_question_that_is_not_utf8_is_an_error_line(index: str, command: str) -> None:
    # Python passes bytes that are not UTF-8 on as lone surrogates.
    result = run(command, "考勤".encode() + b"\xff\xfe", "--index", index)
    assert_one_error_line(result, "error: the question is not valid Unicode text")


def test_lone_surrogate_is_refused(small_corpus: Path, tmp_path: Path, hashing_embedder) -> None:
    """As JSON's "\\ud800办" arrives in the HTTP API; OpenCC used to fail on it."""
    Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=hashing_embedder)
    for ask in (retriever.search, retriever.ask, check_question):
        with pytest.raises(QuestionError, match=r"not valid Unicode text \(character 1 is a lone"):
            ask("\ud800办")


def test_arguments_at_their_limits_are_accepted(index: str) -> None:
    result = run("ask", "行政助理负责考勤吗", "-k", "50", "--min-confidence", "0", "--index", index)
    assert result.returncode == 0, result.stderr
    result = run("search", "考勤报表", "-k", "1", "--json", "--index", index)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1


def test_refused_index_folder_is_an_error_line(tmp_path: Path, corpus: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("我的笔记", encoding="utf-8")
    result = run("build", "--corpus", str(corpus), "--index", str(mine))
    assert_one_error_line(result, "is not an index this project built")
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def test_closed_pipe_ends_quietly(index: str, corpus: Path) -> None:
    """`info | head`: the reader has gone before the output is written."""
    child = subprocess.Popen(
        [sys.executable, "-m", "retriever", "info", "--index", index, "--corpus", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141
    assert stderr == ""


def test_interrupt_is_a_short_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("retriever.cli.cmd_info", interrupted)
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
