"""The command line's index commands: `build` (the corpus folder into an index), `info` (what an
index holds and whether it is current) and `prepare-model` (the default model, built offline).
retriever.cli lays out their options."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from retriever.backends.milvus_settings import MilvusSettings
from retriever.backends.milvus_settings import configured as milvus_configured
from retriever.bases_cli import base_folders, build_command
from retriever.config import BackendSettings, ChunkSettings, Environment
from retriever.corpus import file_hashes
from retriever.embedding import DEFAULT_EMBEDDER
from retriever.index import open_manifest
from retriever.manifest import Manifest
from retriever.schema import IndexLoadError
from retriever.search import Retriever, index_is_current
from retriever.staging import check_index_target


def cache_dir() -> Path:
    """Where models and evaluation indexes are cached: RETRIEVER_CACHE, or the default."""
    return Environment.read().cache


def embedder(args: argparse.Namespace):
    """The embedding model of the --model, --kernel and --*-prefix options."""
    from retriever.embedding import load_embedder

    return load_embedder(
        args.model,
        cache_dir=cache_dir(),
        kernel=args.kernel,
        query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix,
    )


def _milvus_settings(args: argparse.Namespace) -> MilvusSettings:
    """The --milvus-* options (and the token in RETRIEVER_MILVUS_TOKEN, kept out of `ps`)."""
    given = args.milvus_uri or args.milvus_database or args.milvus_consistency
    if given and "milvus" not in (args.backend, args.lexical):
        raise ValueError(
            "--milvus-uri, --milvus-database and --milvus-consistency go with --backend milvus "
            "or --lexical milvus"
        )
    if (args.milvus_database or args.milvus_consistency) and not args.milvus_uri:
        raise ValueError("--milvus-database and --milvus-consistency go with --milvus-uri")
    return MilvusSettings(
        uri=args.milvus_uri or None,
        token=Environment.read().milvus_token,
        database=args.milvus_database or "",
        consistency=args.milvus_consistency or MilvusSettings.consistency,
    )


def _backends(args: argparse.Namespace, index: Path) -> BackendSettings | None:
    """The engines of --backend and --lexical; a side not given keeps the engine the index
    uses (the default for a new index). Neither given: None, the engines the index uses."""
    if not args.backend and not args.lexical:
        return None
    try:
        recorded = open_manifest(index).backends
    except (IndexLoadError, OSError):
        recorded = BackendSettings()
    return BackendSettings(
        dense=args.backend or recorded.dense, lexical=args.lexical or recorded.lexical
    )


def cmd_build(args: argparse.Namespace) -> int:
    corpus, index = base_folders(args)
    check_index_target(index, corpus)  # before the model takes seconds
    chunking = ChunkSettings(max_chars=args.max_chars)
    backends = _backends(args, index)
    milvus = _milvus_settings(args)  # passed to the Milvus backend around the build
    if args.if_stale and index_is_current(
        index, corpus, args.model, chunking=chunking, backends=backends
    ):
        print(f"{index} is up to date with {corpus}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    with milvus_configured(milvus):
        report = Retriever.build(
            corpus,
            index,
            embedder=embedder(args),
            chunking=chunking,
            backends=backends,
            progress=not args.quiet,
        )
    info = report.index
    for skipped in info.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)
    seconds = time.perf_counter() - started
    if not report.changed:
        print(f"{info.folder} is up to date with {corpus} ({seconds:.1f} s)", file=sys.stderr)
        return 0
    print(
        f"built {info.folder}: {info.files} files, {info.documents} documents, {info.chunks} "
        f"chunks ({len(report.read)} files read, {len(report.removed)} removed; "
        f"{report.embedded} chunks embedded, {report.reused} kept) with {info.model} "
        f"in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    corpus, folder = base_folders(args)
    manifest = open_manifest(folder)
    current = corpus.exists() and index_is_current(folder, corpus)
    if args.json:
        print(json.dumps({**manifest.raw, "up_to_date": current}, ensure_ascii=False, indent=2))
    else:
        lines = _index_lines(folder, manifest) + _corpus_lines(
            manifest, corpus, current, build_command(args)
        )
        print("\n".join(lines))
    return 0


def _index_lines(folder: Path, manifest: Manifest) -> list[str]:
    """What `info` says of the index: where, when and with what it was built, what it holds."""
    # What ran the model (retriever.kernels); indexes built before the choice do not say.
    if manifest.kernel:
        runtime = {"onnx": "onnxruntime", "torch": "torch"}.get(manifest.kernel.split("-")[0])
        version = f" ({runtime} {manifest.versions.get(runtime, '?')})" if runtime else ""
        kernel = f"run on {manifest.kernel}{version} on {manifest.cpu}"
    else:
        kernel = "kernel not recorded (built before kernels were chosen per machine)"
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    skipped = [item.reason for item in manifest.skipped]
    return [
        f"index    {folder} ({_size(size)} on disk)",
        f"built    {_when(manifest.created_at)}",
        f"model    {manifest.model_name} ({manifest.model_dim} dimensions), {kernel}",
        f"engines  {manifest.backends.dense} for vectors, {manifest.backends.lexical} for words",
        f"holds    {_count(manifest.chunk_count, 'passage')} of at most "
        f"{manifest.chunking.max_chars} characters, from "
        f"{_count(manifest.document_count, 'document')} in {_count(len(manifest.sources), 'file')}",
        f"skipped  {_count(len(skipped), 'file')}{':' if skipped else ''}",
        *(f"         {reason}" for reason in skipped[:3]),
        *(
            [f"         and {len(skipped) - 3} more (--json lists them)"]
            if len(skipped) > 3
            else []
        ),
    ]


def _corpus_lines(manifest: Manifest, corpus: Path, current: bool, rebuild: str) -> list[str]:
    """Whether the index still matches the corpus folder, and if not, what changed and the
    command (`rebuild`) that catches up."""
    if current:
        return [f"corpus   {corpus}: up to date ({_count(len(manifest.corpus_hashes), 'file')})"]
    if not corpus.exists():
        return [f"corpus   {corpus}: no such folder, so the index cannot be compared"]
    now, then = file_hashes(corpus), manifest.corpus_hashes
    if now == then:  # so index_is_current found other settings than a build now uses
        why = "built with other chunking or word settings than a build now uses"
    else:
        changed = sum(now[name] != then[name] for name in now.keys() & then.keys())
        why = (
            f"{len(now.keys() - then.keys())} new, {changed} changed, "
            f"{len(then.keys() - now.keys())} gone since the build"
        )
    return [f"corpus   {corpus}: out of date: {why}", f"         update it with `{rebuild}`"]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _size(size: float) -> str:
    """A number of bytes in decimal units, as the README and the limits count them."""
    if size < 1000:
        return f"{size:.0f} bytes"
    size /= 1000
    units = ["kB", "MB", "GB"]
    while round(size, 1) >= 1000 and len(units) > 1:
        size /= 1000
        units.pop(0)
    return f"{size:,.1f} {units[0]}"


def _when(created_at: str) -> str:
    """The build's time in UTC, as the manifest records it, and how long ago that was."""
    try:
        built = datetime.fromisoformat(created_at)
    except ValueError:
        return created_at or "unknown"
    if built.tzinfo is None:  # manifests record UTC, with its offset
        built = built.replace(tzinfo=UTC)
    hours = round((datetime.now(UTC) - built).total_seconds() / 3600)
    ago = (
        "within the hour"
        if hours < 1
        else f"{_count(hours, 'hour')} ago"
        if hours < 48
        else f"{_count(round(hours / 24), 'day')} ago"
    )
    return f"{built.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {ago}"


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from retriever.answerability_fit import background_vectors
    from retriever.embedding import load_embedder, machine_kernel
    from retriever.modelbuild.onnx_export import ensure_int8_model  # build-time code only

    print(ensure_int8_model(cache_dir()))
    choice = machine_kernel(cache_dir(), force=args.kernel, remeasure=True)
    for measured in choice.measurements:
        print(
            f"{measured.kernel:<11} {measured.passages_per_second:>7.1f} passages/s, "
            f"cosine to fp32 at least {measured.min_cosine:.4f}, "
            f"R@10 {measured.recall_at_10:.3f} (fp32 {measured.reference_recall_at_10:.3f})"
            + ("" if measured.passed else " (too far: not kept)")
        )
    how = "forced" if choice.forced else "the fastest"
    print(f"kernel {choice.kernel} ({how}) on {choice.cpu.model} ({' '.join(choice.cpu.flags)})")
    # The answer check's baseline, embedded once here rather than on the first question.
    background_vectors(load_embedder(DEFAULT_EMBEDDER, cache_dir=cache_dir()), cache_dir())
    return 0
