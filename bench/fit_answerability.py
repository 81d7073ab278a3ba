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
   fitting questions asked of its own corpus. Unanswerable, off the corpus's subjects: the
   other set's fitting questions asked of it. Unanswerable, on its subjects (built from the
   cmrc fitting questions, each asked of the cmrc corpus):
   - answer removed: asked without the passage that answers it (its chunks dropped from the
     candidates), the other paragraphs of the same article still there;
   - name swapped: a question that names its article's title, the title swapped for the
     nearest other title (by the embedder's cosine) of a background- or fitting-third
     article, asked without the chunks that name that sibling: about a thing the corpus never
     mentions, its other words those of a passage that is there (swap_names);
   - kind swapped: a question that asks for no kind of answer, asked for an amount, a share
     or a multiple (KIND_SUFFIXES, by a hash of the question): the corpus's lines about its
     subject rarely give one.
   Every question is asked as `Retriever.ask` asks it (same candidates, same ranking, same
   evidence code).
4. Two logistic models, their probabilities multiplied: the topic part over the passage
   evidence (lift, standout, coverage ×2), fitted on the answerable questions against the
   off-subject ones, which weigh as much; the line part over the line evidence (unheld, line
   coverage, answer line), fitted on them against the three on-subject groups, each weighing
   a third as much. Each weight keeps the sign by which more evidence never lowers the
   confidence (L2-penalised, C = 1). The cut is the highest probability at which
   ANSWERED_GOAL of the fitting answerable questions still count as answered; the goal was
   chosen on the user-style set (the validation set: its answerable questions answered as
   before, docs/answer_check.md).
5. Reported, never fitted on: the held-out cmrc and dureader questions, all of drcd_test, and
   the user-style set (its answerable questions, its unanswerable ones, its English ones), each
   corpus asked its own questions and the other sets' held-out questions. Also the held-out
   cmrc questions and drcd_test's asked of their corpus as the on-subject groups are built
   (answer removed; name swapped, the siblings drawn from the same set's held-out articles,
   or drcd_test's own; kind swapped). (dureader_demo is left out of those rows: other pages
   of the corpus often answer its questions too, and its titles are questions.)
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
from retriever.answerability import gather_evidence
from retriever.answerability_fit import (
    FEATURES,
    FITTED,
    Evidence,
    FittedModel,
    Logistic,
    background_vectors,
    load_fitted,
)
from retriever.answerability_lines import asked_kind
from retriever.background import BACKGROUND_TEXT
from retriever.embedding import load_embedder
from retriever.evaluation import Dataset, load_dataset, open_evaluation_index, passage_id
from retriever.followup import complete_followup
from retriever.fusion import Candidates
from retriever.search import DEFAULT_CACHE, Retriever
from retriever.text import normalize

DATASETS = Path(__file__).resolve().parent / "datasets"
FIT_SETS = ("cmrc2018_dev", "dureader_demo")
PER_DOCUMENT = 3
BACKGROUND_CHARS = 300
ANSWERED_GOAL = 0.995
FOREIGN_LIMIT = 600  # questions of a large set asked of another corpus
# A sibling name is one that at most this many chunks of the corpus hold, all dropped when
# the swapped question is asked.
SIBLING_CHUNKS = 5
# What a kind-swapped question asks for instead: an amount, a share, a multiple.
KIND_SUFFIXES = ("，多少钱？", "，占多少比例？", "，是多少倍？")


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
    variant: str = ""  # how an on-subject group was built: "answer removed", "name swapped"...


def ask_all(
    retriever: Retriever,
    questions: list[str],
    background: np.ndarray,
    removed: list[set[str]] | None = None,
    dropped: list[set[int]] | None = None,
) -> list[tuple]:
    """The evidence of each question, as `Retriever.ask` gathers it; with `removed`, each
    question's candidates lose the chunks of those passages (ids of the evaluation set), with
    `dropped` those chunks (ids of the index)."""
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
        if dropped:
            candidates = _without(candidates, dropped[number])
        hits = searcher.rank(candidates, 5, "hybrid")
        rows.append(astuple(gather_evidence(question, candidates, hits, background)))
    return rows


@dataclass(frozen=True)
class Swapped:
    """Questions whose subject's name is swapped for a sibling's, each to be asked without the
    chunks that name the sibling: the corpus then never mentions what the question asks about,
    while the swapped question's other words still match its first subject's passages."""

    questions: list[str]
    dropped: list[set[int]]
    pairs: list[tuple[str, str, str]]  # (question id, the name, its sibling)


def swap_names(
    dataset: Dataset, retriever: Retriever, ids: list[str], siblings: list[str], embedder
) -> Swapped:
    """For each question that names the title of its gold passage's article, that title
    swapped for the nearest other title of `siblings` (by the embedder's cosine) that names
    at most SIBLING_CHUNKS chunks of the corpus and neither holds nor is held by the title
    or the question; questions without one are left out."""
    titles = _titles(dataset)
    texts = {i: normalize(f"{c.title}\n{c.text}") for i, c in retriever.index.by_id.items()}
    pool = sorted({t for t in siblings if len(t) >= 2})
    vectors = embedder.encode_passages(pool)
    named = [
        (qid, title)
        for qid in ids
        if len(title := titles[sorted(dataset.gold[qid])[0]]) >= 2
        and title in dataset.questions[qid]
    ]
    own_vectors = embedder.encode_passages(sorted({title for _, title in named}))
    own_of = dict(zip(sorted({title for _, title in named}), own_vectors, strict=True))
    swapped = Swapped([], [], [])
    for qid, title in named:
        question = dataset.questions[qid]
        for at in np.argsort(-(vectors @ own_of[title]), kind="stable"):
            sibling, plain = normalize(pool[at]), normalize(title)
            if sibling in plain or plain in sibling or sibling in normalize(question):
                continue
            naming = {i for i, text in texts.items() if sibling in text}
            if len(naming) <= SIBLING_CHUNKS:
                swapped.questions.append(question.replace(title, pool[at]))
                swapped.dropped.append(naming)
                swapped.pairs.append((qid, title, pool[at]))
                break
    return swapped


def swap_kinds(questions: list[str]) -> list[str]:
    """Each question that asks for no kind of answer (retriever.answerability.asked_kind),
    asked for an amount, a share or a multiple instead (KIND_SUFFIXES, by a hash)."""
    return [
        question.rstrip("？?。. ") + KIND_SUFFIXES[hashlib.sha1(question.encode()).digest()[0] % 3]
        for question in questions
        if asked_kind(question) is None
    ]


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


TOPIC = FEATURES[:4]  # the passage evidence
LINES = FEATURES[4:]  # the line evidence
# The sign each weight keeps: more evidence that the corpus answers never lowers the
# confidence (unheld is evidence that it does not).
SIGNS = {name: -1.0 if name == "unheld" else 1.0 for name in FEATURES}


def fit(
    answerable: list[tuple], off_subject: list[tuple], on_subject: list[list[tuple]]
) -> FittedModel:
    """The topic part fitted against `off_subject`, the line part against each group of
    `on_subject` (protocol, step 4); the cut at ANSWERED_GOAL of `answerable`."""
    known = {
        name: [value for row in answerable if (value := getattr(Evidence(*row), name)) is not None]
        for name in FEATURES[2:]
    }
    priors = {name: round(float(np.mean(values)), 6) for name, values in known.items()}
    fitted = FittedModel(
        (
            _logistic(answerable, [off_subject], TOPIC, priors),
            _logistic(answerable, on_subject, LINES, priors),
        ),
        0.0,
        priors,
    )
    probabilities = np.sort([_probability(fitted, row) for row in answerable])
    cut = probabilities[int(np.floor((1 - ANSWERED_GOAL) * len(probabilities)))]
    return replace(fitted, threshold=round(float(cut), 4))


def _logistic(
    answerable: list[tuple],
    unanswerable: list[list[tuple]],
    names: tuple[str, ...],
    priors: dict[str, float],
    penalty: float = 1.0,
) -> Logistic:
    """Weighted logistic regression over `names`, each weight of its sign (SIGNS): the
    answerable questions weigh as much as the unanswerable, each group of these as much as
    each other; an L2 penalty of 1/penalty on the weights (scikit-learn's C)."""
    from scipy.optimize import minimize

    def values(rows: list[tuple]) -> np.ndarray:
        evidence = [Evidence(*row) for row in rows]
        return np.array([[_known(e, name, priors) for name in names] for e in evidence])

    negatives = [values(group) for group in unanswerable if group]
    x = np.vstack([values(answerable), *negatives])
    y = np.concatenate([np.ones(len(answerable)), np.zeros(len(x) - len(answerable))])
    share = len(answerable) / len(negatives)
    weight = np.concatenate(
        [np.ones(len(answerable))] + [np.full(len(g), share / len(g)) for g in negatives]
    )
    means, scales = x.mean(axis=0), x.std(axis=0)
    z = (x - means) / scales
    sign = 2 * y - 1

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (z @ theta[1:] + theta[0])
        slope = -sign * weight / (1 + np.exp(margin))
        value = np.sum(weight * np.logaddexp(0, -margin)) + theta[1:] @ theta[1:] / (2 * penalty)
        return value, np.concatenate([[slope.sum()], z.T @ slope + theta[1:] / penalty])

    bounds = [(None, None)] + [(0, None) if SIGNS[name] > 0 else (None, 0) for name in names]
    theta = minimize(loss, np.zeros(len(names) + 1), jac=True, bounds=bounds).x
    return Logistic(
        names=names,
        means=tuple(means.round(6).tolist()),
        scales=tuple(scales.round(6).tolist()),
        weights=tuple(theta[1:].round(6).tolist()),
        bias=round(float(theta[0]), 6),
    )


def _known(evidence: Evidence, name: str, priors: dict[str, float]) -> float:
    value = getattr(evidence, name)
    return priors[name] if value is None else value


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
    if group.variant:
        return f"own, {group.variant}"
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

    def on_subject(corpus: str, ids: list[str], siblings: list[str]) -> list[Asked]:
        """The corpus's own questions `ids` asked as the on-subject groups are built."""
        retriever, dataset = corpora[corpus], datasets[corpus]
        answers = [dataset.gold[qid] for qid in ids]
        removed = ask_all(retriever, texts(corpus, ids), background, removed=answers)
        swapped = swap_names(dataset, retriever, ids, siblings, embedder)
        named = ask_all(retriever, swapped.questions, background, dropped=swapped.dropped)
        kinds = ask_all(retriever, swap_kinds(texts(corpus, ids)), background)
        return [
            Asked(corpus, corpus, False, removed, variant="answer removed"),
            Asked(corpus, corpus, False, named, variant="name swapped"),
            Asked(corpus, corpus, False, kinds, variant="kind swapped"),
        ]

    titles = _titles(datasets["cmrc2018_dev"])
    if args.report:
        fitted = load_fitted(embedder.name)
        assert fitted is not None, f"no fit for {embedder.name} in {FITTED}"
    else:
        answerable, off_subject = [], []
        for own, other in (FIT_SETS, FIT_SETS[::-1]):
            answerable += ask_all(corpora[own], texts(own, split.fit[own]), background)
            off_subject += ask_all(corpora[own], texts(other, split.fit[other]), background)
        siblings = [title for pid, title in titles.items() if third(pid) in (0, 1)]
        groups = on_subject("cmrc2018_dev", split.fit["cmrc2018_dev"], siblings)
        fitted = fit(answerable, off_subject, [group.evidence for group in groups])
        counts = {
            "answerable": len(answerable),
            "off subject": len(off_subject),
            **{group.variant: len(group.evidence) for group in groups},
        }
        stored = json.loads(FITTED.read_text("utf-8")) if FITTED.is_file() else {"models": {}}
        stored["protocol"] = "bench/fit_answerability.py (docstring)"
        stored["models"][embedder.name] = {**asdict(fitted), "fitted_on": counts}
        FITTED.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"fitted on {counts}")
        for part in fitted.parts:
            print(f"{part.names}: weights {part.weights}")
        print(f"cut {fitted.threshold}")

    held_ids = {
        "cmrc2018_dev": split.held["cmrc2018_dev"],
        "dureader_demo": split.held["dureader_demo"],
        "drcd_test": list(datasets["drcd_test"].questions),
    }
    held_questions = {name: texts(name, ids) for name, ids in held_ids.items()}
    held_siblings = {
        "cmrc2018_dev": [title for pid, title in titles.items() if third(pid) == 2],
        "drcd_test": list(_titles(datasets["drcd_test"]).values()),
    }
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
                held += on_subject(corpus, held_ids[corpus], held_siblings[corpus])
        for other, questions in held_questions.items():
            if other != corpus:
                evidence = ask_all(retriever, questions[:FOREIGN_LIMIT], background)
                held.append(Asked(corpus, other, False, evidence))
    print("\n".join(report(fitted, held)))


def _titles(dataset: Dataset) -> dict[str, str]:
    """Each passage's title, by its id."""
    with dataset.corpus.open(encoding="utf-8") as handle:
        return {(r := json.loads(line))["id"]: r["title"] for line in handle if line.strip()}


if __name__ == "__main__":
    main()
