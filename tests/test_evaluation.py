"""Evaluation metrics as the evaluation sets' README defines them, and the eval command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from test_end_to_end import run_cli

from retriever import Retriever
from retriever.evaluation import Rankings, load_dataset, score


def write_dataset(folder: Path, passages: dict, questions: dict, gold: list) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(
            json.dumps({"id": pid, "title": "", "text": text}, ensure_ascii=False)
            for pid, text in passages.items()
        ),
        encoding="utf-8",
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(
            json.dumps({"id": q, "text": t}, ensure_ascii=False) for q, t in questions.items()
        ),
        encoding="utf-8",
    )
    (folder / "qrels.tsv").write_text("".join(f"{q}\t{p}\t1\n" for q, p in gold), encoding="utf-8")
    return folder


def test_metrics_follow_their_definitions(tmp_path: Path, hashing_embedder) -> None:
    passages = {"a": "苹果是一种水果。", "b": "香蕉产于热带。", "c": "橙子富含维生素。"}
    folder = write_dataset(
        tmp_path / "set",
        passages,
        {"q1": "苹果", "q2": "香蕉和橙子"},
        [("q1", "a"), ("q2", "b"), ("q2", "c")],
    )
    dataset = load_dataset(folder)
    Retriever.build(dataset.corpus, tmp_path / "index", embedder=hashing_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=hashing_embedder)
    ids = {chunk.doc_id.split("#")[1]: i for i, chunk in enumerate(retriever.chunks)}
    # q1: gold first. q2: gold b third, gold c second, a non-gold passage first.
    rankings = Rankings(
        ["q1", "q2"],
        [{ids["a"]: 0.9, ids["b"]: 0.5}, {ids["a"]: 0.9, ids["c"]: 0.8, ids["b"]: 0.7}],
        [{}, {}],
    )
    metrics = score(retriever, dataset, rankings, "dense")
    assert metrics["R@1"] == pytest.approx((1 + 0) / 2)
    assert metrics["R@5"] == pytest.approx((1 + 1) / 2)
    assert metrics["Hit@10"] == pytest.approx(1.0)
    assert metrics["MRR@10"] == pytest.approx((1 + 1 / 2) / 2)


def test_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "corpus.jsonl").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"has no queries\.jsonl"):
        load_dataset(tmp_path / "set")


def test_eval_command_on_a_slice_of_cmrc(tmp_path: Path) -> None:
    """The real model on 20 CMRC passages and their questions, through the command line."""
    source = ROOT / "bench" / "datasets" / "cmrc2018_dev"
    records = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    passages = {record["id"]: record["text"] for record in records[:20]}
    questions = {}
    for line in (source / "queries.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        if record["id"].rsplit("_QUERY_", 1)[0] in passages:
            questions[record["id"]] = record["text"]
    gold = [(q, q.rsplit("_QUERY_", 1)[0]) for q in questions]
    folder = write_dataset(tmp_path / "cmrc_slice", passages, questions, gold)
    result = run_cli("eval", str(folder), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"R@1", "R@5", "R@10", "Hit@10", "MRR@10"}
    assert metrics["R@10"] >= metrics["R@5"] >= metrics["R@1"] > 0.5
