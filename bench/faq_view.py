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

DATASETS = Path(__file__).resolve().parent / "datasets"
SOURCE = DATASETS / "dureader_demo"
TARGET = DATASETS / "dureader_faq"
ZHIDAO = "_百度知道"
# An answer longer than this is cut: a FAQ entry is a short answer, and a page's later
# paragraphs are other users' replies.
MAX_ANSWER_CHARS = 500


def read_jsonl(path: Path) -> list[dict]:
    # Split on "\n" only: a passage may hold U+2028, which splitlines() would cut at.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)

    pages: dict[str, list[dict]] = defaultdict(list)  # title → its paragraphs, in order
    for passage in read_jsonl(SOURCE / "corpus.jsonl"):
        if passage["title"].endswith(ZHIDAO):
            pages[passage["title"]].append(passage)
    entries, entry_of = [], {}
    for number, (title, paragraphs) in enumerate(pages.items()):
        entry_id = f"faq{number:04d}"
        answer = "\n".join(p["text"] for p in paragraphs)[:MAX_ANSWER_CHARS]
        entries.append({"id": entry_id, "title": title.removesuffix(ZHIDAO), "text": answer})
        entry_of.update({p["id"]: entry_id for p in paragraphs})
    relevant: dict[str, set[str]] = defaultdict(set)
    for line in (SOURCE / "qrels_lenient.tsv").read_text(encoding="utf-8").split("\n")[:-1]:
        query_id, passage_id, _ = line.split("\t")
        if passage_id in entry_of:
            relevant[query_id].add(entry_of[passage_id])
    queries = [q for q in read_jsonl(SOURCE / "queries.jsonl") if q["id"] in relevant]

    args.output.mkdir(parents=True, exist_ok=True)
    with (args.output / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    with (args.output / "queries.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(query, ensure_ascii=False) + "\n" for query in queries)
    with (args.output / "qrels.tsv").open("w", encoding="utf-8") as handle:
        for query in queries:
            handle.writelines(f"{query['id']}\t{e}\t1\n" for e in sorted(relevant[query["id"]]))
    print(f"{len(entries)} entries, {len(queries)} questions → {args.output}")


if __name__ == "__main__":
    main()
