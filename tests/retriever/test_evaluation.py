"""Evaluation metrics as the evaluation sets' README defines them, and the eval command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from retriever import Candidate, Retriever
from retriever.evaluation import (
    DEPTH,
    HITS,
    evaluation_searcher,
    find_candidates,
    load_dataset,
    metrics,
    passage_ranking,
    rank_all,
    score,
)


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


def test_metrics_follow_their_definitions(tmp_path: Path) -> None:
    passages = {"a": "苹果是一种水果。", "b": "香蕉产于热带。", "c": "橙子富含维生素。"}
    folder = write_dataset(
        tmp_path / "set",
        passages,
        {"q1": "苹果", "q2": "香蕉和橙子"},
        [("q1", "a"), ("q2", "b"), ("q2", "c")],
    )
    # q1: gold first. q2: gold b third, gold c second, a non-gold passage first.
    result = metrics(load_dataset(folder), {"q1": ["a", "b"], "q2": ["a", "c", "b"]})
    assert result["R@1"] == pytest.approx((1 + 0) / 2)
    assert result["R@5"] == pytest.approx((1 + 1) / 2)
    assert result["Hit@10"] == pytest.approx(1.0)
    assert result["MRR@10"] == pytest.approx((1 + 1 / 2) / 2)


class Reverse:
    """A reranking stage: the fused candidates in the opposite order."""

    def rerank(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        return [Candidate(c.chunk, -c.score) for c in reversed(candidates)]


@pytest.mark.parametrize("reranker", [None, Reverse()], ids=["fusion", "with a reranker"])
def test_evaluation_ranks_exactly_what_search_returns(
    tmp_path: Path, hashing_embedder, reranker
) -> None:
    """The evaluation's hits for a question are search()'s, stage for stage."""
    passages = {
        "a": "苹果是一种很常见的水果，富含多种维生素和膳食纤维。每天吃一个苹果有益健康。",
        "b": "香蕉产于热带地区，口感软糯香甜。",
        "c": "橙子富含维生素C，是柑橘类水果。",
        "d": "苹果是一种很常见的水果，富含多种维生素和膳食纤维。",  # repeats a's start
        "e": "行政助理负责员工的考勤和办公用品采购。",
    }
    questions = {"q1": "苹果有什么好处", "q2": "哪种水果维生素多", "q3": "谁负责考勤"}
    gold = [("q1", "a"), ("q2", "c"), ("q3", "e")]
    dataset = load_dataset(write_dataset(tmp_path / "set", passages, questions, gold))
    Retriever.build(dataset.corpus, tmp_path / "index", embedder=hashing_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=hashing_embedder, reranker=reranker)
    pool = find_candidates(retriever, dataset, progress=False)
    as_users_search = retriever.with_settings(candidates=DEPTH)
    for mode in ("bm25", "dense", "hybrid"):
        ranked = rank_all(evaluation_searcher(retriever), pool, mode)
        searched = {
            qid: as_users_search.search(question, k=HITS, mode=mode)
            for qid, question in questions.items()
        }
        assert ranked == searched, mode
        # The repeat-dropping stage ran: a and d are never listed together.
        assert {"a", "d"} - {hit.doc_id.split("#")[1] for hit in ranked["q1"]}
        expected = {qid: passage_ranking(hits) for qid, hits in searched.items()}
        assert score(retriever, dataset, pool, mode) == metrics(dataset, expected)


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
