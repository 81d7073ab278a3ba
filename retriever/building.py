"""Building an index from a corpus folder, as an update of the index it replaces.

A build compares the corpus with the previous index, file by file, by content (SHA-256):
an unchanged file keeps its passages, and their vectors and BM25 words stay in the backends
untouched; only a new or changed file is read, chunked, embedded and tokenised, and a gone
file's passages are deleted from the backends. So adding one file to a large corpus costs
the time of that file (reading a PDF, Word or HTML file alone takes 0.2-0.3 s), and a build
over an unchanged corpus checks the index and returns: nothing is read, embedded or written.

The result is the index a build from nothing would make (retriever.passages). The previous
index is not used, and the build starts from nothing, when there is none, when it cannot be
loaded, or when it was made with another model, other settings or other backends.

Nothing is written in place: the updated index goes to a staging folder that is swapped in
(retriever.staging), so a crash mid-update leaves the previous index working.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retriever.backends import DENSE_BACKENDS, LEXICAL_BACKENDS
from retriever.config import BackendSettings, ChunkSettings, LexicalSettings
from retriever.corpus import (
    SUPPORTED_SUFFIXES,
    Skipped,
    SourceFile,
    file_hashes,
    list_corpus,
    read_one,
    relative_name,
)
from retriever.embedding import Embedder
from retriever.index import Index, IndexInfo, open_manifest
from retriever.kernels import Cpu
from retriever.manifest import Manifest
from retriever.models import canonical_model_name
from retriever.passages import assign_ids, dense_text, lexical_text, passages_of
from retriever.schema import IndexLoadError
from retriever.staging import check_index_target
from retriever.store import StoredChunk
from retriever.text import normalize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What a build did. `changed` is False when the corpus, model and settings matched the
    index already there, which was then left as it was."""

    index: IndexInfo
    embedded: int  # passages that went through the model
    reused: int  # indexed passages whose vectors were kept from the previous index
    read: tuple[str, ...] = ()  # corpus files read: new or changed ones (all, from nothing)
    removed: tuple[str, ...] = ()  # files of the previous index that are gone
    changed: bool = True


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    *,
    embedder: Embedder,
    chunking: ChunkSettings,
    lexical: LexicalSettings,
    backends: BackendSettings | None,
    progress: bool = False,
) -> BuildReport:
    """Update (or build) the index in `index_dir` to hold exactly the files of `corpus_dir`.

    `backends` None keeps the engines the existing index uses (the defaults for a new one,
    or when it names an engine this installation lacks), so a rebuild from the page or
    `make index` never moves a Milvus index to FAISS. Raises IndexFolderError, before
    reading anything, when `index_dir` is not a folder a build may replace, and ValueError
    when no file of the corpus can be indexed.
    """
    check_index_target(index_dir, corpus_dir)
    recorded = _recorded_manifest(index_dir)
    if backends is None:
        backends = _usable_backends(recorded)
    hashes = file_hashes(corpus_dir)
    # How the index is to be made; what it holds is filled in once the corpus is read.
    cpu = Cpu.this_machine()
    wanted = Manifest(
        model_name=embedder.name,
        model_dim=embedder.dim,
        kernel=embedder.kernel,
        cpu=cpu.model,
        cpu_flags=cpu.flags,
        chunking=chunking,
        lexical=lexical,
        backends=backends,
        sources=(),
        skipped=(),
        corpus_hashes={},
        document_count=0,
    )
    previous = _previous_index(index_dir, recorded, wanted)
    if previous is not None and previous.manifest.corpus_hashes == hashes:
        logger.info("%s is up to date with %s", index_dir, corpus_dir)
        info = IndexInfo.of(index_dir, previous.manifest)
        return BuildReport(info, embedded=0, reused=info.chunks, changed=False)
    old = previous or Index.create(wanted)

    sources, skipped, passages, read = _read_changes(corpus_dir, hashes, old, chunking)
    documents = sum(source.documents for source in sources)
    if not documents:
        problems = "; ".join(item.reason for item in skipped) or (
            "no files of a supported kind (" + " ".join(SUPPORTED_SUFFIXES) + ")"
        )
        raise ValueError(f"nothing to index in {corpus_dir}: {problems}")
    changes = assign_ids(passages, old.passages)
    before = {item.path for item in (*old.manifest.sources, *old.manifest.skipped)}
    removed = sorted(before - hashes.keys())
    logger.info(
        "%d documents, %d passages; %d files read, %d removed; %d passages to add, %d to delete",
        documents,
        len(passages),
        len(read),
        len(removed),
        len(changes.added),
        len(changes.deleted),
    )

    ids = [chunk.id for chunk in changes.added]
    texts = [normalize(dense_text(chunk)) for chunk in changes.added]
    vectors = (
        embedder.encode_passages(texts, progress=progress)
        if texts
        else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    old.dense.delete(changes.deleted)
    old.dense.add(ids, vectors)
    old.lexical.delete(changes.deleted)
    old.lexical.add(ids, [lexical_text(chunk) for chunk in changes.added])

    manifest = replace(
        wanted,
        sources=tuple(sources),
        skipped=tuple(skipped),
        corpus_hashes=hashes,
        document_count=documents,
    )
    index = Index(manifest, changes.passages, old.dense, old.lexical)
    written = index.save(index_dir)
    return BuildReport(
        index=IndexInfo.of(index_dir, written),
        embedded=len(ids),
        reused=len(index.chunks) - len(ids),
        read=tuple(read),
        removed=tuple(removed),
    )


def _recorded_manifest(index_dir: Path) -> Manifest | None:
    """The manifest of the index in `index_dir`, every file checked, or None if it has none
    that is sound (the build then starts from nothing)."""
    try:
        return open_manifest(index_dir)
    except IndexLoadError as error:
        logger.info("building %s from nothing: %s", index_dir, error)
        return None


def _usable_backends(recorded: Manifest | None) -> BackendSettings:
    """The engines the existing index uses, when this installation has them; else the
    defaults."""
    if (
        recorded is not None
        and recorded.backends.dense in DENSE_BACKENDS
        and recorded.backends.lexical in LEXICAL_BACKENDS
    ):
        return recorded.backends
    return BackendSettings()


def _previous_index(index_dir: Path, manifest: Manifest | None, wanted: Manifest) -> Index | None:
    """The index in `index_dir` (whose checked manifest is `manifest`) if an update can start
    from it: it loads, and it was built with the wanted model, settings and backends."""
    if manifest is None:
        return None
    if _made_by(manifest) != _made_by(wanted):
        logger.info("building %s from nothing: another model, settings or backends", index_dir)
        return None
    try:
        return Index.read(index_dir, manifest)
    except IndexLoadError as error:
        logger.warning("building %s from nothing: %s", index_dir, error)
        return None


def _made_by(manifest: Manifest) -> tuple[object, ...]:
    """What decides every passage's vector and words: the model, the settings, the backends.
    Not the kernel: each gives the model's vectors to a cosine of 0.99 (retriever.kernels)."""
    return (
        canonical_model_name(manifest.model_name),
        manifest.model_dim,
        manifest.chunking,
        manifest.lexical,
        manifest.backends,
    )


def _read_changes(
    corpus_dir: Path, hashes: dict[str, str], old: Index, chunking: ChunkSettings
) -> tuple[list[SourceFile], list[Skipped], list[StoredChunk], list[str]]:
    """Every file of the corpus, in corpus order: an unchanged one as the previous index
    holds it (its record, or its reason to be skipped, and its passages), any other read and
    chunked; a symbolic link is skipped unread. Returns the sources, the skipped files, the
    passages and the files read."""
    before = old.manifest
    sources_before = {source.path: source for source in before.sources}
    skipped_before = {item.path: item for item in before.skipped}
    passages_before: dict[str, list[StoredChunk]] = defaultdict(list)
    for passage in old.passages:
        passages_before[passage.source].append(passage)
    listing = list_corpus(corpus_dir)
    sources: list[SourceFile] = []
    skipped: list[Skipped] = list(listing.links)
    passages: list[StoredChunk] = []
    read: list[str] = []
    for path in listing.files:
        name = relative_name(path, corpus_dir)
        if before.corpus_hashes.get(name) == hashes.get(name):
            if name in sources_before:
                sources.append(sources_before[name])
                passages.extend(passages_before[name])
                continue
            if name in skipped_before:
                skipped.append(skipped_before[name])
                continue
        read.append(name)
        outcome = read_one(path, corpus_dir)
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            continue
        documents, source = outcome
        sources.append(source)
        for document in documents:
            passages.extend(passages_of(document, chunking))
    return sources, skipped, passages, read
