"""The command line's question commands: `search` (the passages that match), `ask` (an answer
with citations) and `eval` (retrieval metrics on an evaluation folder). retriever.cli lays out
their options."""

from __future__ import annotations

import argparse
import json

from retriever.answer import Answering
from retriever.bases_cli import base_folders, build_command
from retriever.config import SearchSettings
from retriever.index_cli import cache_dir, embedder
from retriever.schema import IndexLoadError
from retriever.search import Retriever


def _load(args: argparse.Namespace, settings: SearchSettings = SearchSettings()) -> Retriever:
    """The index the arguments name (--base's, or --index), ready to search."""
    _, index = base_folders(args)
    try:
        return Retriever.load(index, cache_dir=cache_dir(), settings=settings)
    except IndexLoadError as error:
        if not args.base:
            raise
        # Its message says to run `build`, which would build the default base.
        raise IndexLoadError(f"{error} (for this base: `{build_command(args)}`)") from None


def cmd_search(args: argparse.Namespace) -> int:
    hits = _load(args).search(args.question, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
        return 0
    for hit in hits:
        where = f"{hit.source} [{hit.start}:{hit.end}]" + (
            f" · {hit.heading}" if hit.heading else ""
        )
        print(f"{hit.rank}. ({hit.score:.4f}) {where}\n   {hit.text}\n")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    retriever = _load(args, SearchSettings(min_confidence=args.min_confidence))
    answerer = _generating(retriever) if args.generate else None
    answer = retriever.ask(args.question, k=args.k, answerer=answerer)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if answer.kind == "generated":
        print("（由模型撰写，每句都已与它所引的段落核对）")
    elif answer.fallback:
        print(f"（没有采用模型写的回答：{answer.fallback}）")
    print(answer.answer + "\n")
    for citation in answer.citations:
        hit = citation.hit
        mark = "*" if citation.quotes else " "
        heading = f" · {hit.heading}" if hit.heading else ""
        print(f"{mark}[{citation.number}] {hit.source} [{hit.start}:{hit.end}]{heading}")
        print(f"    {hit.text}\n")
    return 0


def _generating(retriever: Retriever) -> Answering:
    """The answerer that has the model server of RETRIEVER_GENERATE_* write the answer."""
    from retriever.generation import GeneratingAnswerer, GenerationSettings, ModelServer

    settings = GenerationSettings.from_env()
    if settings is None:
        raise ValueError(
            "--generate needs a model server: set RETRIEVER_GENERATE_URL and "
            "RETRIEVER_GENERATE_MODEL (docs/generation.md)"
        )
    return GeneratingAnswerer(retriever.answerer, ModelServer(settings))


def cmd_eval(args: argparse.Namespace) -> int:
    from retriever.evaluation import find_candidates, load_dataset, open_evaluation_index, score

    dataset = load_dataset(args.dataset, qrels=args.qrels)
    if args.limit:
        keep = list(dataset.questions)[: args.limit]
        dataset = type(dataset)(
            dataset.name,
            dataset.corpus,
            {qid: dataset.questions[qid] for qid in keep},
            {qid: dataset.gold[qid] for qid in keep},
        )
    model = embedder(args)
    retriever = open_evaluation_index(dataset, model, cache_dir(), progress=not args.quiet)
    pool = find_candidates(retriever, dataset, progress=not args.quiet)
    modes = ["bm25", "dense", "hybrid"] if args.compare else [args.mode]
    results = {mode: score(retriever, dataset, pool, mode) for mode in modes}
    if args.json:
        output = results if args.compare else results[args.mode]
        print(json.dumps(output, ensure_ascii=False, indent=2))
        return 0
    print(f"{dataset.name}: {len(dataset.questions)} questions, model {model.name}")
    names = list(next(iter(results.values())))
    print("| mode | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for mode, metrics in results.items():
        print(f"| {mode} | " + " | ".join(f"{metrics[n]:.3f}" for n in names) + " |")
    return 0
