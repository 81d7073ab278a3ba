"""The office-documents sets (bench/datasets/officedocs*): does `ask` find one row or one item?

Company users upload Word files with tables, PDFs printed from a browser or an office suite,
Markdown handbooks and HTML pages, and ask short questions about one row of a table or one
item of a list. The two sets hold such documents and questions (their SOURCE.md files):
`officedocs` is held out (report it, never tune on it), `officedocs_validation` is where
rules and thresholds may be chosen.

Everything runs through the public API a user gets: `Retriever.build` over the set's
documents folder with the default model (cached under <cache>/eval/<set>), follow-ups
completed as the page completes them, then `Retriever.ask`.

Gold is a list of alternatives, each a few fragments that must all occur in one text,
compared as the set's check.py compares them (`plain`: no whitespace, NFKC, radicals folded).
A question with `need: all` (lists, comparisons) needs every alternative. Per question:

- answer holds the gold: the answer's quoted text (the quotes of all its citations) holds the
  needed alternatives, and `found` is true (a refusal shows no answer, whatever it cites);
- first three sources hold it: among the 3 best-ranked cited passages, one holds an
  alternative (need: all: each alternative is held by one of them);
- answered: `found` is true, for an answerable question;
- refused: `found` is false, for an unanswerable one, on-topic and off-topic apart;
- and how long each `ask` took, asked one after another (median; never asserted anywhere).

    python -m bench.officedocs                                  # the held-out set
    python -m bench.officedocs --set officedocs_validation      # the validation set
    python -m bench.officedocs --misses                         # and each miss, with its answer
    python -m bench.officedocs --peers                          # and the peers' top-3

`--peers` reads the same files the way the usual peer set-ups do (bench/peers.py:
`read_documents`: LangChain's Docx2txtLoader, PyPDFLoader, TextLoader and BSHTMLLoader, a
RecursiveCharacterTextSplitter of 250 characters, BM25 + FAISS ensemble; txtai's Textractor
lines packed into passages) and scores their 3 best passages by the same rule.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.userstyle import read_questions
from retriever.followup import complete_followup
from retriever.kernels import Cpu
from retriever.search import DEFAULT_CACHE, Retriever, index_is_current

DATASETS = Path(__file__).resolve().parent / "datasets"
SETS = ("officedocs", "officedocs_validation")
HELD_OUT = "officedocs"


def _load_check() -> Any:
    """The held-out set's check.py, whose `plain` defines how gold is compared."""
    path = DATASETS / HELD_OUT / "check.py"
    spec = importlib.util.spec_from_file_location("officedocs_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plain: Callable[[str], str] = _load_check().plain


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str
    lang: str
    history: list[str]
    gold: list[list[str]]
    need: str  # "any" or "all"
    answerable: bool
    document: str | None


@dataclass(frozen=True)
class Outcome:
    question: Question
    asked: str  # after follow-up completion
    found: bool
    answer_holds: bool
    top3: bool
    milliseconds: float
    answer: str = ""  # the answer's text, for --misses
    first_source: str = ""  # the best-ranked cited passage, for --misses


def load_questions(folder: Path) -> list[Question]:
    return read_questions(folder, Question, need="any")


# ------------------------------------------------------------------------ gold matching


def holds(text: str, alternative: list[str]) -> bool:
    """Whether every fragment of one gold alternative occurs in the text."""
    flat = plain(text)
    return all(plain(fragment) in flat for fragment in alternative)


def texts_hold(texts: Iterable[str], gold: list[list[str]], need: str) -> bool:
    """Whether the texts hold the gold: one alternative in one text (need any), or each
    alternative in one of the texts (need all)."""
    texts = list(texts)
    held = [any(holds(text, alternative) for text in texts) for alternative in gold]
    return bool(held) and (all(held) if need == "all" else any(held))


def quoted_text(quotes: Iterable[str]) -> str:
    """An answer's quotes as one text; the separator keeps a fragment from spanning two."""
    return " | ".join(quotes)


def judge(
    question: Question,
    asked: str,
    *,
    found: bool,
    quotes: list[str],
    ranked_passages: list[str],
    milliseconds: float,
    answer: str = "",
) -> Outcome:
    """One question's outcome from what `ask` gave: whether it found an answer, the quotes
    of its citations, and its cited passages in rank order."""
    if question.answerable:
        answer_holds = found and texts_hold([quoted_text(quotes)], question.gold, question.need)
        top3 = texts_hold(ranked_passages[:3], question.gold, question.need)
    else:
        answer_holds = top3 = False
    return Outcome(
        question=question,
        asked=asked,
        found=found,
        answer_holds=answer_holds,
        top3=top3,
        milliseconds=milliseconds,
        answer=answer,
        first_source=ranked_passages[0] if ranked_passages else "",
    )


# ---------------------------------------------------------------------------- figures


def _share(items: list[Outcome], test: Callable[[Outcome], bool]) -> float | None:
    return round(sum(map(test, items)) / len(items), 3) if items else None


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """The set's figures: shares (None where a group is empty) and their counts."""
    answerable = [o for o in outcomes if o.question.answerable]
    ontopic = [o for o in outcomes if o.question.kind == "unanswerable"]
    offtopic = [o for o in outcomes if o.question.kind == "offtopic"]
    times = [o.milliseconds for o in outcomes]
    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "answer_holds": _share(answerable, lambda o: o.answer_holds),
        "top3": _share(answerable, lambda o: o.top3),
        "answered": _share(answerable, lambda o: o.found),
        "unanswerable": len(ontopic),
        "refused_ontopic": _share(ontopic, lambda o: not o.found),
        "offtopic": len(offtopic),
        "refused_offtopic": _share(offtopic, lambda o: not o.found),
        "refused": _share(ontopic + offtopic, lambda o: not o.found),
        "median_ms": round(statistics.median(times)) if times else None,
    }


def breakdown(outcomes: list[Outcome], field: str) -> dict[str, dict[str, Any]]:
    """`summary` of each value of a question field (kind, lang), in first-seen order."""
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault(getattr(outcome.question, field), []).append(outcome)
    return {value: summary(items) for value, items in groups.items()}


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def report(
    name: str,
    outcomes: list[Outcome],
    *,
    documents: int,
    cpu: str,
    peers: dict[str, float] | None = None,
    chunks: dict[str, int] | None = None,
) -> str:
    """The figures as Markdown tables, stable to copy into a document."""
    total = summary(outcomes)
    lines = [
        f"## {name} ({total['questions']} questions: {total['answerable']} answerable, "
        f"{total['unanswerable']} on-topic unanswerable, {total['offtopic']} off-topic; "
        f"{documents} documents)",
        "",
        "| measure | share | of |",
        "|---|---|---|",
        f"| answer holds the gold | {_cell(total['answer_holds'])} | {total['answerable']} |",
        f"| first three sources hold it | {_cell(total['top3'])} | {total['answerable']} |",
        f"| answerable answered (found) | {_cell(total['answered'])} | {total['answerable']} |",
        f"| on-topic unanswerable refused | {_cell(total['refused_ontopic'])} | "
        f"{total['unanswerable']} |",
        f"| off-topic refused | {_cell(total['refused_offtopic'])} | {total['offtopic']} |",
        "",
        f"Median `ask`: {total['median_ms']} ms over {total['questions']} questions asked in "
        f"order ({cpu}, {os.cpu_count()} cores).",
        "",
        "| group | questions | answer holds | top-3 | answered | refused |",
        "|---|---|---|---|---|---|",
    ]
    for group, field in (("kind", "kind"), ("lang", "lang")):
        for value, row in breakdown(outcomes, field).items():
            lines.append(
                f"| {group}={value} | {row['questions']} | {_cell(row['answer_holds'])} | "
                f"{_cell(row['top3'])} | {_cell(row['answered'])} | {_cell(row['refused'])} |"
            )
    if peers is not None:
        lines += [
            "",
            f"First three sources hold it, the {total['answerable']} answerable questions:",
            "",
            "| system | top-3 | passages indexed |",
            "|---|---|---|",
        ]
        for system, top3 in peers.items():
            count = (chunks or {}).get(system)
            lines.append(f"| {system} | {top3:.3f} | {count if count is not None else '—'} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running


def open_index(name: str, cache_dir: Path = DEFAULT_CACHE) -> Retriever:
    """The set's documents indexed with the default model, built once into the cache."""
    folder = cache_dir / "eval" / name
    documents = DATASETS / name / "documents"
    if not index_is_current(folder, documents):
        Retriever.build(documents, folder, cache_dir=cache_dir)
    return Retriever.load(folder, cache_dir=cache_dir)


def evaluate(retriever: Retriever, questions: list[Question]) -> list[Outcome]:
    outcomes = []
    for question in questions:
        started = time.perf_counter()
        answer = retriever.ask(question.text, earlier=question.history)
        milliseconds = (time.perf_counter() - started) * 1000
        asked = answer.question  # after follow-up completion
        cited = sorted(answer.citations, key=lambda c: c.hit.rank)
        outcomes.append(
            judge(
                question,
                asked,
                found=answer.found,
                quotes=[quote.text for c in answer.citations for quote in c.quotes],
                ranked_passages=[c.hit.text for c in cited],
                milliseconds=milliseconds,
                answer=answer.answer,
            )
        )
    return outcomes


def peer_top3(name: str, questions: list[Question], cache_dir: Path) -> dict[str, Any]:
    """Each peer's top-3 on the answerable questions, and how many passages it indexed."""
    from bench.peers import (
        PEERS,
        default_model_path,
        ensure_built,
        open_system,
        write_records,
    )
    from bench.quality import _one_torch_thread

    documents = DATASETS / name / "documents"
    answerable = [q for q in questions if q.answerable]
    asked = {q.id: complete_followup(q.text, q.history) for q in answerable}
    results: dict[str, Any] = {"top3": {}, "chunks": {}}
    for peer, kind in PEERS.items():
        records = kind.read_documents(documents)
        # The records as the peer read them, so that the cached index is named by its input.
        corpus = cache_dir / "bench" / "documents" / f"{name}-{peer}" / "corpus.jsonl"
        write_records(records, corpus)
        built = ensure_built(peer, name, corpus, records, cache_dir / "bench")
        system = built.instance or open_system(peer, built.folder, default_model_path())
        with _one_torch_thread():
            held = [texts_hold(system.passages(asked[q.id], 3), q.gold, q.need) for q in answerable]
        results["top3"][peer] = round(sum(held) / len(held), 3) if held else float("nan")
        results["chunks"][peer] = built.chunks
        del system  # one model in memory at a time
    return results


def _misses(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        q = o.question
        missed = not (o.answer_holds and o.top3 and o.found) if q.answerable else o.found
        if missed:
            lines.append(
                f"\n{q.id} [{q.kind}/{q.lang}] {o.asked!r} found={o.found} "
                f"answer_holds={o.answer_holds} top3={o.top3}\n"
                f"  gold: {q.gold if q.gold else '(none)'}\n"
                f"  answer: {o.answer[:160]!r}\n"
                f"  first source: {o.first_source[:120]!r}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default=HELD_OUT, choices=SETS, help="which set to score")
    parser.add_argument("--misses", action="store_true", help="list each miss with its answer")
    parser.add_argument("--peers", action="store_true", help="also the peers' top-3")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="index cache folder")
    args = parser.parse_args(argv)
    questions = load_questions(DATASETS / args.set)
    retriever = open_index(args.set, args.cache)
    retriever.ask("你好")  # loads what a first question loads; not timed
    outcomes = evaluate(retriever, questions)
    peers = chunks = None
    if args.peers:
        found = peer_top3(args.set, questions, args.cache)
        ours = summary(outcomes)["top3"]
        peers = {"project (ask)": ours if ours is not None else float("nan"), **found["top3"]}
        chunks = {"project (ask)": len(retriever.chunks), **found["chunks"]}
    documents = len([p for p in (DATASETS / args.set / "documents").iterdir() if p.is_file()])
    print(
        report(
            args.set,
            outcomes,
            documents=documents,
            cpu=Cpu.this_machine().model,
            peers=peers,
            chunks=chunks,
        )
    )
    command = "python -m bench.officedocs " + " ".join(argv if argv is not None else _argv())
    print(f"\nCommand: `{command.strip()}`")
    if args.misses:
        print("\n".join(_misses(outcomes)))
    return 0


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    raise SystemExit(main())
