"""The user-style set (bench/datasets/userstyle): top-1, top-3 and `found` accuracy of `ask`.

The set holds whole documents and questions typed as users type them, each with the exact
lines that answer it (see its SOURCE.md). It is held out: report on it, never fit on it.
Everything runs through the public API a user gets: `Retriever.build` over the documents
folder, follow-ups completed as the page completes them, then `Retriever.ask`.

A passage *holds* the answer when it contains one of the question's gold lines (compared
without whitespace, after normalisation), or when it is itself part of a gold line longer
than a passage. Measured per question:

- top-1 / top-3: a passage among the first 1 / 3 cited holds the answer (answerable ones);
- found: `found` is true for an answerable question and false for an unanswerable one;
- answer coverage: the share of the gold lines the answer's quoted sentences hold (a list
  question needs every item);
- and how long each `ask` took, the questions asked one after another as a user of one
  knowledge base would (median and 95th percentile; never asserted anywhere).

    python -m bench.userstyle            # the table, by kind and by language
    python -m bench.userstyle --misses   # and each question that missed
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

from retriever import Answer, Retriever
from retriever.kernels import Cpu
from retriever.search import DEFAULT_CACHE, index_is_current
from retriever.text import normalize

Q = TypeVar("Q")

DATASET = Path(__file__).resolve().parent / "datasets" / "userstyle"


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str
    lang: str
    history: list[str]
    gold: list[str]
    answerable: bool


@dataclass(frozen=True)
class Outcome:
    question: Question
    asked: str  # after follow-up completion
    top1: bool
    top3: bool
    found_right: bool
    coverage: float  # share of gold lines the answer quotes
    answer: Answer
    milliseconds: float  # how long `ask` took


def read_questions(folder: Path, question: type[Q], **defaults: object) -> list[Q]:
    """The questions of an evaluation folder's questions.jsonl as `question`s, each field
    from its record or else from `defaults`; an absent or null history is none."""
    names = [field.name for field in fields(question)]
    with (folder / "questions.jsonl").open(encoding="utf-8") as handle:
        rows = [{**defaults, **json.loads(line)} for line in handle if line.strip()]
    for row in rows:
        row["history"] = row.get("history") or []
    return [question(**{name: row[name] for name in names}) for row in rows]


def load_questions(folder: Path = DATASET) -> list[Question]:
    return read_questions(folder, Question)


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def holds(passage: str, gold: list[str]) -> bool:
    """Whether the passage contains a gold line, or is part of one longer than itself."""
    plain = _plain(passage)
    return any(
        (line := _plain(g)) and (line in plain or (len(plain) >= 20 and plain in line))
        for g in gold
    )


def evaluate(retriever: Retriever, questions: list[Question]) -> list[Outcome]:
    outcomes = []
    for question in questions:
        started = time.perf_counter()
        answer = retriever.ask(question.text, earlier=question.history)
        milliseconds = (time.perf_counter() - started) * 1000
        asked = answer.question  # after follow-up completion
        ranked = [c.hit for c in sorted(answer.citations, key=lambda c: c.hit.rank)]
        hits_hold = [holds(hit.text, question.gold) for hit in ranked]
        quoted = " ".join(quote.text for c in answer.citations for quote in c.quotes)
        coverage = (
            sum(_plain(g) in _plain(quoted) for g in question.gold) / len(question.gold)
            if question.gold and answer.found
            else 0.0
        )
        outcomes.append(
            Outcome(
                question=question,
                asked=asked,
                top1=any(hits_hold[:1]),
                top3=any(hits_hold[:3]),
                found_right=answer.found == question.answerable,
                coverage=coverage,
                answer=answer,
                milliseconds=milliseconds,
            )
        )
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]

    def share(items: list[Outcome], test) -> float:
        return round(sum(map(test, items)) / len(items), 3) if items else float("nan")

    return {
        "questions": len(outcomes),
        "top1": share(answerable, lambda o: o.top1),
        "top3": share(answerable, lambda o: o.top3),
        "found_answerable": share(answerable, lambda o: o.found_right),
        "refused_unanswerable": share(unanswerable, lambda o: o.found_right),
        "answer_coverage": round(sum(o.coverage for o in answerable) / len(answerable), 3)
        if answerable
        else float("nan"),
    }


def open_index(cache_dir: Path = DEFAULT_CACHE) -> Retriever:
    """The set's documents indexed with the default model, built once into the cache."""
    folder = cache_dir / "eval" / "userstyle"
    documents = DATASET / "documents"
    if not index_is_current(folder, documents):
        Retriever.build(documents, folder, cache_dir=cache_dir)
    return Retriever.load(folder, cache_dir=cache_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list each question that missed")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    retriever = open_index()
    retriever.ask("你好")  # loads what a first question loads; not timed
    outcomes = evaluate(retriever, load_questions())
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups["all"].append(outcome)
        groups[f"kind={outcome.question.kind}"].append(outcome)
        groups[f"lang={outcome.question.lang}"].append(outcome)
    table = {name: summary(items) for name, items in groups.items()}
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=2))
        return
    names = list(table["all"])
    print("| group | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for group, row in table.items():
        print(f"| {group} | " + " | ".join(str(row[n]) for n in names) + " |")
    times = sorted(o.milliseconds for o in outcomes)
    print(
        f"\n`ask`, the questions asked in order of one knowledge base: median "
        f"{statistics.median(times):.0f} ms, 95th percentile {times[int(0.95 * len(times))]:.0f} "
        f"ms ({Cpu.this_machine().model}, {os.cpu_count()} cores)"
    )
    if args.misses:
        for o in outcomes:
            if not (o.top1 and o.found_right) and (o.question.answerable or not o.found_right):
                top = o.answer.citations and min(o.answer.citations, key=lambda c: c.hit.rank)
                print(
                    f"\n{o.question.id} [{o.question.kind}] {o.asked!r} "
                    f"found={o.answer.found} ({o.answer.confidence}) top1={o.top1} "
                    f"top3={o.top3}\n  answer: {o.answer.answer[:120]}\n"
                    f"  first: {top.hit.text[:80] if top else ''}"
                )


if __name__ == "__main__":
    main()
