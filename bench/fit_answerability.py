"""Fit the answer check (retriever.answerability) and report it on questions kept apart.

    python -m bench.fit_answerability            # fits; writes retriever/data/ (two files)
    python -m bench.fit_answerability --report   # the held-out table only, with the shipped fit

Protocol (nothing held out is ever fitted on):

1. cmrc2018_dev's documents and dureader_demo's pages are split by a hash of their id (cmrc:
   the passage, dureader: the page title) into thirds: background, fitting, held out.
2. Background (retriever/data/background.txt): at most 3 passages per document of the
   background third, their first 300 characters. Passages that occur in a user-style set
   document are left out, so that the held-out set is not part of the fitting data.
3. Fitting questions: cmrc questions of fitting-third documents; dureader questions whose gold
   pages are in no background document, split in two by question id. Answerable: a set's
   fitting questions asked of its own corpus. Unanswerable: the other set's fitting questions
   asked of it. Every question is asked as `Retriever.ask` asks it (same candidates, same
   ranking, same evidence code).
4. A logistic regression with balanced class weights over the four pieces of evidence. The
   cut is the highest probability at which ANSWERED_GOAL of the fitting answerable questions
   still count as answered.
5. Reported, never fitted on: the held-out cmrc and dureader questions, all of drcd_test, and
   the user-style set (its answerable questions, its unanswerable ones, its English ones), each
   corpus asked its own questions and the other sets' held-out questions. Also the held-out
   cmrc questions and drcd_test's asked of their corpus without the passage that answers them
   (its chunks dropped from the candidates): unanswerable questions about the corpus's own
   subjects, the other paragraphs of the same article still there. (dureader_demo is left
   out of that row: other pages of the corpus often answer its questions too.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import asdict, astuple, dataclass, replace
from pathlib import Path

import numpy as np

from bench.userstyle import DATASET as USERSTYLE
from bench.userstyle import load_questions
from bench.userstyle import open_index as open_userstyle_index
from retriever.answerability import (
    BACKGROUND_TEXT,
    FITTED,
    Evidence,
    FittedModel,
    background_vectors,
    gather_evidence,
    load_fitted,
)
from retriever.corpus import normalize
from retriever.embedding import load_embedder
from retriever.evaluation import load_dataset, open_evaluation_index, passage_id
from retriever.followup import complete_followup
from retriever.fusion import Candidates
from retriever.search import DEFAULT_CACHE, Retriever

DATASETS = Path(__file__).resolve().parent / "datasets"
FIT_SETS = ("cmrc2018_dev", "dureader_demo")
PER_DOCUMENT = 3
BACKGROUND_CHARS = 300
ANSWERED_GOAL = 0.985
FOREIGN_LIMIT = 600  # questions of a large set asked of another corpus


def third(key: str) -> int:
    """0 background, 1 fitting, 2 held out: a stable split by the hash of a document's id."""
    return hashlib.sha1(key.encode()).digest()[0] % 3


def _cmrc_document(question_id: str) -> str:
    return question_id.split("_QUERY")[0]


@dataclass(frozen=True)
class Split:
    background: list[str]
    fit: dict[str, list[str]]  # set name → question ids
    held: dict[str, list[str]]


def split_sets() -> Split:
    documents = "".join(p.read_text("utf-8") for p in (USERSTYLE / "documents").iterdir())
    userstyle_text = re.sub(r"\s+", "", normalize(documents))
    background: list[str] = []
    taken: dict[str, int] = {}
    dureader_background_titles: set[str] = set()
    titles: dict[str, str] = {}
    for name in FIT_SETS:
        with (DATASETS / name / "corpus.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                document = record["id"] if name == "cmrc2018_dev" else record["title"]
                titles[record["id"]] = record["title"]
                if third(document) != 0:
                    continue
                if name == "dureader_demo":
                    dureader_background_titles.add(document)
                text = " ".join(record["text"].split())[:BACKGROUND_CHARS]
                if re.sub(r"\s+", "", normalize(text))[:40] in userstyle_text:
                    continue
                if taken.get(record["title"], 0) < PER_DOCUMENT and len(text) >= 20:
                    taken[record["title"]] = taken.get(record["title"], 0) + 1
                    background.append(text)
    fit: dict[str, list[str]] = {name: [] for name in FIT_SETS}
    held: dict[str, list[str]] = {name: [] for name in FIT_SETS}
    cmrc = load_dataset(DATASETS / "cmrc2018_dev")
    for qid in cmrc.questions:
        part = third(_cmrc_document(qid))
        if part:
            (fit if part == 1 else held)["cmrc2018_dev"].append(qid)
    dureader = load_dataset(DATASETS / "dureader_demo")
    for qid, gold in dureader.gold.items():
        if {titles[p] for p in gold} & dureader_background_titles:
            continue
        half = hashlib.sha1(qid.encode()).digest()[0] % 2
        (fit if half == 0 else held)["dureader_demo"].append(qid)
    return Split(background, fit, held)


@dataclass(frozen=True)
class Asked:
    corpus: str
    questions: str  # the set the questions come from
    answerable: bool
    evidence: list[tuple]
    english: bool = False
    answer_removed: bool = False  # asked without the passages that answer them


def ask_all(
    retriever: Retriever,
    questions: list[str],
    background: np.ndarray,
    removed: list[set[str]] | None = None,
) -> list[tuple]:
    """The evidence of each question, as `Retriever.ask` gathers it; with `removed`, each
    question's candidates lose the chunks of those passages (ids of the evaluation set)."""
    searcher = retriever.searcher
    chunks_of: dict[str, set[int]] = {}
    for chunk_id, chunk in retriever.index.by_id.items() if removed else ():
        chunks_of.setdefault(passage_id(chunk.doc_id), set()).add(chunk_id)
    rows = []
    for number, (question, candidates) in enumerate(
        zip(questions, searcher.candidates(questions, 5, "hybrid"), strict=True)
    ):
        if removed:
            candidates = _without(candidates, {c for p in removed[number] for c in chunks_of[p]})
        hits = searcher.rank(candidates, 5, "hybrid")
        rows.append(astuple(gather_evidence(question, candidates, hits, background)))
    return rows


def _without(candidates: Candidates, dropped: set[int]) -> Candidates:
    def kept(scores: dict[int, float]) -> dict[int, float]:
        return {chunk: score for chunk, score in scores.items() if chunk not in dropped}

    return replace(
        candidates,
        dense=kept(candidates.dense),
        lexical=kept(candidates.lexical),
        coverage=kept(candidates.coverage),
        title_coverage=kept(candidates.title_coverage),
    )


def fit(answerable: list[tuple], unanswerable: list[tuple]) -> FittedModel:
    from sklearn.linear_model import LogisticRegression

    rows = answerable + unanswerable
    known = [row for row in answerable if row[2] is not None]
    prior = (float(np.mean([r[2] for r in known])), float(np.mean([r[3] for r in known])))
    values = np.array([[*r[:2], *(prior if r[2] is None else r[2:])] for r in rows], float)
    labels = np.array([1] * len(answerable) + [0] * len(unanswerable))
    means, scales = values.mean(axis=0), values.std(axis=0)
    model = LogisticRegression(class_weight="balanced", C=1.0)
    model.fit((values - means) / scales, labels)
    fitted = FittedModel(
        means=tuple(means.round(6).tolist()),
        scales=tuple(scales.round(6).tolist()),
        weights=tuple(model.coef_[0].round(6).tolist()),
        bias=round(float(model.intercept_[0]), 6),
        threshold=0.0,
        coverage_prior=(round(prior[0], 6), round(prior[1], 6)),
    )
    probabilities = np.sort([_probability(fitted, row) for row in answerable])
    cut = probabilities[int(np.floor((1 - ANSWERED_GOAL) * len(probabilities)))]
    return replace(fitted, threshold=round(float(cut), 4))


def _probability(fitted: FittedModel, row: tuple) -> float:
    return fitted.probability(Evidence(*row))


def report(fitted: FittedModel, held: list[Asked]) -> list[str]:
    def answered(row: tuple) -> bool:
        return _probability(fitted, row) >= fitted.threshold

    lines = [
        "| corpus | questions | kind | n | answered |",
        "|---|---|---|---|---|",
    ]
    for group in held:
        share = np.mean([answered(row) for row in group.evidence]) if group.evidence else np.nan
        lines.append(
            f"| {group.corpus} | {group.questions} | {_kind(group)} "
            f"| {len(group.evidence)} | {share:.3f} |"
        )
    return lines


def _kind(group: Asked) -> str:
    if group.english:
        return "own, English"
    if group.answer_removed:
        return "own, answering passage removed"
    return "own" if group.answerable else "unanswerable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="report the shipped fit only")
    args = parser.parse_args()
    split = split_sets()
    if not args.report:
        BACKGROUND_TEXT.parent.mkdir(exist_ok=True)
        BACKGROUND_TEXT.write_text("\n".join(split.background) + "\n", encoding="utf-8")
    embedder = load_embedder(cache_dir=DEFAULT_CACHE)
    background = background_vectors(embedder, DEFAULT_CACHE)
    datasets = {name: load_dataset(DATASETS / name) for name in (*FIT_SETS, "drcd_test")}
    corpora = {
        name: open_evaluation_index(d, embedder, DEFAULT_CACHE) for name, d in datasets.items()
    }
    corpora["userstyle"] = open_userstyle_index()

    def texts(name: str, ids: list[str]) -> list[str]:
        return [datasets[name].questions[qid] for qid in ids]

    if args.report:
        fitted = load_fitted(embedder.name)
        assert fitted is not None, f"no fit for {embedder.name} in {FITTED}"
    else:
        answerable, unanswerable = [], []
        for own, other in (FIT_SETS, FIT_SETS[::-1]):
            answerable += ask_all(corpora[own], texts(own, split.fit[own]), background)
            unanswerable += ask_all(corpora[own], texts(other, split.fit[other]), background)
        fitted = fit(answerable, unanswerable)
        stored = json.loads(FITTED.read_text("utf-8")) if FITTED.is_file() else {"models": {}}
        stored["protocol"] = "bench/fit_answerability.py (docstring)"
        stored["models"][embedder.name] = {
            **asdict(fitted),
            "fitted_on": {"answerable": len(answerable), "unanswerable": len(unanswerable)},
        }
        FITTED.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
        print(f"fitted on {len(answerable)} answerable, {len(unanswerable)} unanswerable")
        print(f"weights {fitted.weights}, cut {fitted.threshold}")

    held_ids = {
        "cmrc2018_dev": split.held["cmrc2018_dev"],
        "dureader_demo": split.held["dureader_demo"],
        "drcd_test": list(datasets["drcd_test"].questions),
    }
    held_questions = {name: texts(name, ids) for name, ids in held_ids.items()}
    userstyle = load_questions()
    held: list[Asked] = []
    for corpus, retriever in corpora.items():
        if corpus == "userstyle":
            for answerable, english in ((True, False), (True, True), (False, False)):
                chosen = [
                    complete_followup(q.text, q.history)
                    for q in userstyle
                    if q.answerable == answerable and (q.lang == "en") == english
                ]
                evidence = ask_all(retriever, chosen, background)
                held.append(Asked(corpus, "userstyle", answerable, evidence, english))
        else:
            own = held_questions[corpus]
            held.append(Asked(corpus, corpus, True, ask_all(retriever, own, background)))
            if corpus != "dureader_demo":
                answers = [datasets[corpus].gold[qid] for qid in held_ids[corpus]]
                evidence = ask_all(retriever, own, background, removed=answers)
                held.append(Asked(corpus, corpus, False, evidence, answer_removed=True))
        for other, questions in held_questions.items():
            if other != corpus:
                evidence = ask_all(retriever, questions[:FOREIGN_LIMIT], background)
                held.append(Asked(corpus, other, False, evidence))
    print("\n".join(report(fitted, held)))


if __name__ == "__main__":
    main()
