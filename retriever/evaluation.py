"""Retrieval metrics on a folder laid out like the evaluation sets (corpus, queries, qrels).

R@k is the share of a question's gold passages in its top k, Hit@k whether any is there,
MRR@10 the mean of 1/rank of the first gold passage within the top 10 — as the evaluation
sets' README defines them. Passages are ranked by their best chunk.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from retriever.config import SearchSettings
from retriever.corpus import normalize
from retriever.search import Mode, Retriever, fuse

logger = logging.getLogger(__name__)

CUTOFFS = (1, 5, 10)
# Chunks looked at per question: long passages split into several chunks, and ten distinct
# passages must survive the merge.
DEPTH = 100


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
    """The dataset's corpus indexed with `embedder`, built once into the cache and reused."""
    from retriever.search import index_is_current

    folder = cache_dir / "eval" / f"{dataset.name}-{embedder.name.replace('/', '_')}"
    if not index_is_current(folder, dataset.corpus, embedder.name):
        logger.warning("building the %s index in %s (once)", dataset.name, folder)
        Retriever.build(dataset.corpus, folder, embedder=embedder, progress=progress)
    return Retriever.load(folder, embedder=embedder)


@dataclass(frozen=True)
class Rankings:
    """Both rankings of every question, computed once so that modes and fusion settings can be
    compared without searching again."""

    question_ids: list[str]
    dense: list[dict[int, float]]
    lexical: list[dict[int, float]]


def compute_rankings(retriever: Retriever, dataset: Dataset, *, progress: bool = True) -> Rankings:
    ids = list(dataset.questions)
    normalized = [normalize(dataset.questions[qid]) for qid in ids]
    vectors = retriever.embedder.encode_queries(normalized)
    dense, lexical = [], []
    for question, vector in tqdm(
        list(zip(normalized, vectors, strict=True)), desc="searching", disable=not progress
    ):
        d, b = retriever.rankings(question, vector, depth=DEPTH)
        dense.append(d)
        lexical.append(b)
    return Rankings(ids, dense, lexical)


def score(
    retriever: Retriever,
    dataset: Dataset,
    rankings: Rankings,
    mode: Mode,
    settings: SearchSettings | None = None,
) -> dict[str, float]:
    """R@1, R@5, R@10, Hit@10 and MRR@10 for one mode (and fusion settings)."""
    settings = settings or retriever.settings
    totals = {f"R@{k}": 0.0 for k in CUTOFFS} | {"Hit@10": 0.0, "MRR@10": 0.0}
    for qid, dense, lexical in zip(
        rankings.question_ids, rankings.dense, rankings.lexical, strict=True
    ):
        passages = _passage_ranking(retriever, fuse(dense, lexical, settings, mode))
        gold = dataset.gold[qid]
        for k in CUTOFFS:
            totals[f"R@{k}"] += len(gold & set(passages[:k])) / len(gold)
        found = [rank for rank, pid in enumerate(passages[:10], start=1) if pid in gold]
        totals["Hit@10"] += bool(found)
        totals["MRR@10"] += 1 / found[0] if found else 0.0
    count = len(rankings.question_ids)
    return {name: round(total / count, 4) for name, total in totals.items()}


def _passage_ranking(retriever: Retriever, ranked: list[tuple[int, float]]) -> list[str]:
    """Passage ids in order of their best chunk."""
    passages: list[str] = []
    for chunk_id, _ in ranked:
        passage = retriever.chunks[chunk_id].doc_id.split("#", 1)[-1]
        if passage not in passages:
            passages.append(passage)
            if len(passages) == max(CUTOFFS):
                break
    return passages
