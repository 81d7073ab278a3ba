"""A FAQ-shaped evaluation set made from dureader_demo: one entry per Baidu Zhidao page, its
title (a user's question) as the entry's title, the page's answer text as its text.

A FAQ's title *is* the question, and the answer often shares few of its words: the shape where
a title field matters most (issue 9, item 3). dureader_demo's Zhidao pages have that shape.
Each of its questions is asked of the entries; an entry is relevant when the annotators chose
its page for the question (the page-level judgement of qrels_lenient.tsv). Only questions with
at least one relevant entry are kept.

    python -m bench.faq_view              # writes bench/datasets/dureader_faq
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from bench.peers import Record, read_records, write_records
from retriever.evaluation import load_dataset

DATASETS = Path(__file__).resolve().parent / "datasets"
SOURCE = DATASETS / "dureader_demo"
TARGET = DATASETS / "dureader_faq"
ZHIDAO = "_百度知道"
# An answer longer than this is cut: a FAQ entry is a short answer, and a page's later
# paragraphs are other users' replies.
MAX_ANSWER_CHARS = 500


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)

    pages: dict[str, list[Record]] = defaultdict(list)  # title → its paragraphs, in order
    for passage in read_records(SOURCE / "corpus.jsonl"):
        if passage.title.endswith(ZHIDAO):
            pages[passage.title].append(passage)
    entries, entry_of = [], {}
    for number, (title, paragraphs) in enumerate(pages.items()):
        entry_id = f"faq{number:04d}"
        answer = "\n".join(p.text for p in paragraphs)[:MAX_ANSWER_CHARS]
        entries.append(Record(entry_id, title.removesuffix(ZHIDAO), answer))
        entry_of.update({p.id: entry_id for p in paragraphs})
    dureader = load_dataset(SOURCE, qrels="qrels_lenient.tsv")
    relevant = {
        question_id: sorted({entry_of[p] for p in gold if p in entry_of})
        for question_id, gold in dureader.gold.items()
    }
    questions = {qid: text for qid, text in dureader.questions.items() if relevant.get(qid)}

    write_records(entries, args.output / "corpus.jsonl")
    with (args.output / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for question_id, text in questions.items():
            handle.write(json.dumps({"id": question_id, "text": text}, ensure_ascii=False) + "\n")
    with (args.output / "qrels.tsv").open("w", encoding="utf-8") as handle:
        for question_id in questions:
            handle.writelines(f"{question_id}\t{e}\t1\n" for e in relevant[question_id])
    print(f"{len(entries)} entries, {len(questions)} questions → {args.output}")


if __name__ == "__main__":
    main()
