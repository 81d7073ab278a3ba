"""The answer check on small corpora: a knowledge base of one document, as a new base starts.

The answer check (retriever.answerability) was fitted on corpora of thousands of passages. A
new knowledge base often holds a document or two of a few passages, so this measures
`found` on such corpora, through the public API (`Retriever.build`, then `Retriever.ask`):

- small corpora in four size buckets (1–2, 3–5, 6–10 and 11+ paragraphs), `--per-size` each:
  - drcd_test (never fitted on, the default): one article per corpus (one file: its title,
    then its paragraphs), articles chosen by a hash of their title;
  - cmrc2018_dev, whose articles have one or two paragraphs: consecutive articles (in the
    order of a hash of their title) put together, a file each, until the corpus reaches its
    bucket's size; only articles with no paragraph in the third the answer check holds out
    (bench.fit_answerability). This is the set for choosing how the check treats small
    corpora; drcd_test is for reporting.
- answered: the corpus's own questions answered (`found` true);
- refused: questions of other corpora of the same set, and dureader_demo questions.

    python -m bench.small_corpora                       # drcd_test, 10 per size
    python -m bench.small_corpora --set cmrc2018_dev --per-size 15
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.fit_answerability import third
from retriever import Retriever
from retriever.embedding import load_embedder
from retriever.evaluation import load_dataset
from retriever.search import DEFAULT_CACHE

DATASETS = Path(__file__).resolve().parent / "datasets"
BUCKETS = ((1, 2), (3, 5), (6, 10), (11, 1000))
OTHERS = 5  # questions of each kind a corpus should refuse

Corpus = list[tuple[str, list[str]]]  # its documents: (title, paragraphs)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _bucket(size: int) -> str:
    return next(f"{low}–{high}" for low, high in BUCKETS if low <= size <= high)


def small_corpora(name: str, per_size: int) -> list[tuple[Corpus, list[str]]]:
    """`per_size` small corpora of set `name` per size bucket, each with its own questions."""
    dataset = load_dataset(DATASETS / name)
    paragraphs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    title_of = {}
    held_out = set()
    for line in dataset.corpus.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        paragraphs[doc["title"]].append((doc["id"], doc["text"]))
        title_of[doc["id"]] = doc["title"]
        if name == "cmrc2018_dev" and third(doc["id"]) == 2:
            held_out.add(doc["title"])
    asked: dict[str, list[str]] = defaultdict(list)
    for query_id, relevant in dataset.gold.items():
        titles = {title_of[doc_id] for doc_id in relevant}
        if len(titles) == 1:
            asked[titles.pop()].append(dataset.questions[query_id])
    titles = sorted((t for t in paragraphs if asked.get(t) and t not in held_out), key=_key)
    texts = {title: [text for _, text in sorted(paragraphs[title])] for title in titles}
    chosen: list[tuple[Corpus, list[str]]] = []
    if name == "drcd_test":
        for low, high in BUCKETS:
            fitting = [t for t in titles if low <= len(texts[t]) <= high][:per_size]
            chosen += [([(title, texts[title])], asked[title]) for title in fitting]
        return chosen
    queue = iter(titles)
    for low, _ in BUCKETS:
        for _ in range(per_size):
            corpus: Corpus = []
            while sum(len(part) for _, part in corpus) < low:
                title = next(queue)
                corpus.append((title, texts[title]))
            chosen.append((corpus, [q for title, _ in corpus for q in asked[title]]))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-size", type=int, default=10, help="corpora per size bucket")
    parser.add_argument("--set", choices=["drcd_test", "cmrc2018_dev"], default="drcd_test")
    args = parser.parse_args(argv)
    chosen = small_corpora(args.set, args.per_size)
    same_set = sorted({q for _, questions in chosen for q in questions}, key=_key)
    dureader = sorted(load_dataset(DATASETS / "dureader_demo").questions.values(), key=_key)
    embedder = load_embedder(cache_dir=DEFAULT_CACHE)
    # Per bucket: own answered, own asked, strangers refused, asked, dureader refused, asked.
    rows: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    for number, (documents, questions) in enumerate(chosen):
        row = rows[_bucket(sum(len(part) for _, part in documents))]
        with tempfile.TemporaryDirectory(prefix="small-corpus-") as folder:
            corpus = Path(folder, "corpus")
            corpus.mkdir()
            for index, (title, part) in enumerate(documents):
                (corpus / f"{index}.txt").write_text(
                    title + "\n\n" + "\n\n".join(part) + "\n", encoding="utf-8"
                )
            Retriever.build(corpus, Path(folder, "index"), embedder=embedder)
            retriever = Retriever.load(Path(folder, "index"), embedder=embedder)
            others = [q for q in same_set if q not in questions]
            start = (number * OTHERS) % len(others)
            strangers = others[start : start + OTHERS]
            web = dureader[number * OTHERS : (number + 1) * OTHERS]
            for question in questions:
                row[0] += retriever.ask(question).found
                row[1] += 1
            for column, refusable in ((2, strangers), (4, web)):
                for question in refusable:
                    row[column] += not retriever.ask(question).found
                    row[column + 1] += 1
    print(f"{args.set}: small corpora, {args.per_size} per size\n")
    print("| paragraphs | own questions answered | other corpora's refused | dureader's refused |")
    print("|---|---|---|---|")
    total = [0] * 6
    for bucket in [_bucket(low) for low, _ in BUCKETS]:
        row = rows[bucket]
        total = [a + b for a, b in zip(total, row, strict=True)]
        print(f"| {bucket} | {_shares(row)} |")
    print(f"| all | {_shares(total)} |")
    return 0


def _shares(row: list[int]) -> str:
    pairs = zip(row[::2], row[1::2], strict=True)
    return " | ".join(f"{count / of:.3f} of {of}" if of else "–" for count, of in pairs)


if __name__ == "__main__":
    raise SystemExit(main())
