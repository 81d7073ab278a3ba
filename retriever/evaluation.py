"""Retrieval metrics on a folder laid out like the evaluation sets (corpus, queries, qrels).

R@k is the share of a question's gold passages in its top k, Hit@k whether any is there,
MRR@10 the mean of 1/rank of the first gold passage within the top 10 — as the evaluation
sets' README defines them. Passages are ranked by their best chunk.

The rankings are what `Retriever.search` returns: the searcher's own stages (candidates,
fusion, reranker, repeats dropped; retriever.searcher), with more candidates per question
(DEPTH) so that ten distinct passages survive. Each question's candidates are found once and
ranked again for each mode or fusion setting (`score`), as bench.fit_fusion does per fold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from retriever.fusion import Mode
from retriever.search import Retriever, index_is_current
from retriever.searcher import Candidates, Hit, Searcher

logger = logging.getLogger(__name__)

CUTOFFS = (1, 5, 10)
# Candidates per question, from each backend: long passages split into several chunks, and
# ten distinct passages must survive the merge. Hits ranked: at most half of them, as a
# search for k hits takes 2k candidates.
DEPTH = 100
HITS = DEPTH // 2


@dataclass(frozen=True)
class Dataset:
    name: str
    corpus: Path
    questions: dict[str, str]  # id → text
    gold: dict[str, set[str]]  # question id → relevant passage ids


def load_dataset(folder: Path | str, qrels: str = "qrels.tsv") -> Dataset:
    """Read corpus.jsonl, queries.jsonl and a qrels file; errors name the missing piece."""
    folder = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", qrels):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder} has no {name}: an evaluation folder holds corpus.jsonl, "
                "queries.jsonl and qrels.tsv"
            )
    questions = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                questions[str(record["id"])] = record["text"]
    gold: dict[str, set[str]] = {}
    with (folder / qrels).open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0] in questions and (len(parts) < 3 or parts[2] != "0"):
                gold.setdefault(parts[0], set()).add(parts[1])
    questions = {qid: text for qid, text in questions.items() if qid in gold}
    return Dataset(folder.name, folder / "corpus.jsonl", questions, gold)


def open_evaluation_index(
    dataset: Dataset, embedder, cache_dir: Path, *, progress: bool = True
) -> Retriever:
    """The dataset's corpus indexed with `embedder` on its kernel, built once into the cache
    and reused."""
    model = embedder.name.replace("/", "_")
    folder = cache_dir / "eval" / f"{dataset.name}-{model}-{embedder.kernel}"
    if not index_is_current(folder, dataset.corpus, embedder.name):
        logger.warning("building the %s index in %s (once)", dataset.name, folder)
        Retriever.build(dataset.corpus, folder, embedder=embedder, progress=progress)
    return Retriever.load(folder, embedder=embedder)


def evaluation_searcher(retriever: Retriever) -> Searcher:
    """The retriever's searcher, with the candidates the evaluation asks for."""
    return retriever.searcher.with_settings(candidates=DEPTH)


@dataclass(frozen=True)
class Pool:
    """Every question's candidates, found once so that modes and fusion settings can be
    compared without searching again: one set for BM25 alone, which does not embed the
    question (as `search(mode="bm25")` does not), one for the modes that do."""

    question_ids: list[str]
    lexical_only: list[Candidates]
    embedded: list[Candidates]

    def of(self, mode: Mode) -> list[Candidates]:
        return self.lexical_only if mode == "bm25" else self.embedded


def find_candidates(retriever: Retriever, dataset: Dataset, *, progress: bool = True) -> Pool:
    """Stage 1 of the search for every question of the dataset."""
    searcher = evaluation_searcher(retriever)
    ids = list(dataset.questions)
    questions = [dataset.questions[qid] for qid in ids]
    return Pool(
        ids,
        searcher.candidates(questions, HITS, "bm25"),
        searcher.candidates(questions, HITS, "hybrid", progress=progress),
    )


def rank_all(searcher: Searcher, pool: Pool, mode: Mode) -> dict[str, list[Hit]]:
    """Stage 2, the hits `search(question, k=HITS, mode=mode)` returns, for every question."""
    return {
        qid: searcher.rank(candidates, HITS, mode)
        for qid, candidates in zip(pool.question_ids, pool.of(mode), strict=True)
    }


def passage_id(doc_id: str) -> str:
    """The evaluation set's passage id of a chunk's document: a corpus.jsonl's records are
    documents named "corpus.jsonl#<id>"."""
    return doc_id.split("#", 1)[-1]


def passage_ranking(hits: list[Hit]) -> list[str]:
    """Passage ids in order of their best chunk, at most max(CUTOFFS) of them."""
    passages: list[str] = []
    for hit in hits:
        passage = passage_id(hit.doc_id)
        if passage not in passages:
            passages.append(passage)
            if len(passages) == max(CUTOFFS):
                break
    return passages


def metrics(dataset: Dataset, rankings: dict[str, list[str]]) -> dict[str, float]:
    """R@1, R@5, R@10, Hit@10 and MRR@10 of a ranking of passage ids per question."""
    totals = {f"R@{k}": 0.0 for k in CUTOFFS} | {"Hit@10": 0.0, "MRR@10": 0.0}
    for qid, passages in rankings.items():
        gold = dataset.gold[qid]
        for k in CUTOFFS:
            totals[f"R@{k}"] += len(gold & set(passages[:k])) / len(gold)
        found = [rank for rank, pid in enumerate(passages[:10], start=1) if pid in gold]
        totals["Hit@10"] += bool(found)
        totals["MRR@10"] += 1 / found[0] if found else 0.0
    return {name: round(total / len(rankings), 4) for name, total in totals.items()}


def score(
    retriever: Retriever, dataset: Dataset, pool: Pool, mode: Mode, **settings: float
) -> dict[str, float]:
    """The metrics of one mode, with the retriever's search settings or these changes."""
    searcher = evaluation_searcher(retriever).with_settings(**settings)
    hits = rank_all(searcher, pool, mode)
    return metrics(dataset, {qid: passage_ranking(found) for qid, found in hits.items()})
