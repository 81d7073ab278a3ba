"""An index: its passages, and the dense and lexical backends that search them.

`Index.load(folder)` reads back exactly what `index.save(folder)` wrote (the layout is
retriever.store's), and refuses, with an IndexLoadError that says to rebuild, anything that
is not whole: a file that fails its checksum, a backend that cannot be read, or parts that
disagree on how many passages there are. Saving goes through a staging folder that is
swapped in (retriever.staging), so the folder always holds a complete index.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from retriever.backends import (
    DENSE_BACKENDS,
    LEXICAL_BACKENDS,
    dense_backend,
    lexical_backend,
)
from retriever.backends.base import DenseBackend, LexicalBackend
from retriever.corpus import Skipped
from retriever.manifest import Manifest
from retriever.schema import REBUILD_HINT, IndexLoadError
from retriever.staging import clean_up_after_crashes, replace_folder
from retriever.store import (
    DENSE_FOLDER,
    LEXICAL_FOLDER,
    MANIFEST,
    StoredChunk,
    read_chunks,
    read_manifest,
    write_chunks,
    write_manifest,
)

# What opening a backend can raise: FAISS's RuntimeError, a numpy or JSON ValueError, a
# missing file's OSError, a record's KeyError or TypeError, an unknown backend's ValueError,
# and the ImportError of an engine whose library is not installed.
_READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, TypeError, ImportError)


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds, for display: documents, chunks, model, when built."""

    folder: str
    documents: int
    files: int
    chunks: int
    model: str
    created_at: str
    skipped: list[Skipped]

    @classmethod
    def of(cls, folder: Path, manifest: Manifest) -> IndexInfo:
        return cls(
            folder=str(folder),
            documents=manifest.document_count,
            files=len(manifest.sources),
            chunks=manifest.chunk_count,
            model=manifest.model_name,
            created_at=manifest.created_at,
            skipped=list(manifest.skipped),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_manifest(folder: Path) -> Manifest:
    """The manifest of the index in `folder`, every file checked against it, after undoing
    what builds that died there left (retriever.staging). Raises IndexLoadError."""
    clean_up_after_crashes(folder)
    return read_manifest(folder)


@dataclass(frozen=True)
class Index:
    """Every passage of a corpus in corpus order, and the backends holding the indexed ones.

    Passages that repeat an earlier one are kept with the id None and are in no backend.
    The backends change in place when a build updates the index; a loaded index that is
    only searched is never changed.
    """

    manifest: Manifest
    passages: list[StoredChunk]
    dense: DenseBackend
    lexical: LexicalBackend

    @classmethod
    def create(cls, manifest: Manifest) -> Index:
        """An index without passages, with the backends `manifest` names. The lexical side
        first: it refuses a Milvus server without BM25 before anything is made there."""
        lexical = lexical_backend(manifest.backends.lexical).create(manifest.lexical)
        dense = dense_backend(manifest.backends.dense).create(manifest.model_dim)
        return cls(manifest, [], dense, lexical)

    @classmethod
    def load(cls, folder: Path) -> Index:
        """The index `save` wrote into `folder`. Raises IndexLoadError, saying what to do."""
        return cls.read(folder, open_manifest(folder))

    @classmethod
    def read(cls, folder: Path, manifest: Manifest) -> Index:
        """The index in `folder`, whose manifest (checked by open_manifest) is `manifest`."""
        passages = read_chunks(folder)
        try:
            dense = dense_backend(manifest.backends.dense).load(folder / DENSE_FOLDER)
            lexical = lexical_backend(manifest.backends.lexical).load(
                folder / LEXICAL_FOLDER, manifest.lexical
            )
        except _READ_ERRORS as error:
            reason = " ".join(str(error).split())  # FAISS's messages can span lines
            raise IndexLoadError(f"{folder} cannot be read ({reason}): {REBUILD_HINT}") from error
        index = cls(manifest, passages, dense, lexical)
        index._check(folder)
        return index

    def _check(self, folder: Path) -> None:
        counts = (len(self.chunks), self.dense.count, self.lexical.count)
        if len(self.by_id) != len(self.chunks) or set(counts) != {self.manifest.chunk_count}:
            raise IndexLoadError(
                f"{folder} is inconsistent: its manifest counts {self.manifest.chunk_count} "
                f"chunks, it holds {len(self.by_id)} distinct chunks, {self.dense.count} "
                f"vectors and {self.lexical.count} BM25 rows: {REBUILD_HINT}"
            )
        if self.dense.dim != self.manifest.model_dim:
            raise IndexLoadError(
                f"{folder} is inconsistent: its manifest says the model gives "
                f"{self.manifest.model_dim}-dim vectors, its {self.manifest.backends.dense} "
                f"index holds {self.dense.dim}-dim ones: {REBUILD_HINT}"
            )

    def save(self, folder: Path) -> Manifest:
        """Write the index into `folder`, replacing what is there only once all is written.

        Returns the manifest as written. Raises IndexFolderError, before writing anything,
        when `folder` is not an index folder a build may replace (retriever.staging).
        """

        sides = {DENSE_FOLDER: self.dense, LEXICAL_FOLDER: self.lexical}
        # What the replaced index keeps outside, read before the swap removes it.
        replaced = {side: _kept_outside(folder, side) for side in sides}
        for side, backend in sides.items():
            before = replaced[side]
            backend.claim(folder, before[1] if before and before[0] is type(backend) else None)
        collections = tuple(name for backend in sides.values() for name in backend.collections())

        def write(staging: Path) -> Manifest:
            write_chunks(staging, self.passages)
            (staging / DENSE_FOLDER).mkdir()
            self.dense.save(staging / DENSE_FOLDER)
            (staging / LEXICAL_FOLDER).mkdir()
            self.lexical.save(staging / LEXICAL_FOLDER)
            complete = replace(self.manifest, chunk_count=len(self.chunks), collections=collections)
            return write_manifest(staging, complete)

        written = replace_folder(folder, write)
        # The index owns what it keeps outside its folder, on both sides: the replaced
        # index's collections that the new one does not own go (the backend keeps those
        # not this folder's).
        for backend in sides.values():
            backend.installed()
        for before in replaced.values():
            if before is not None:
                before[0].release(before[1], folder, keep=collections)
        return written

    @cached_property
    def chunks(self) -> list[StoredChunk]:
        """The indexed passages, in corpus order."""
        return [passage for passage in self.passages if passage.id is not None]

    @cached_property
    def by_id(self) -> dict[int, StoredChunk]:
        return {chunk.id: chunk for chunk in self.chunks if chunk.id is not None}


def _kept_outside(folder: Path, side: str) -> tuple[Any, Any] | None:
    """The `side` ("dense" or "lexical") backend of the index in `folder` and what it keeps
    outside the folder (a server's collections), or None: nothing, or no index there that
    can tell."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        name = manifest["backends"][side]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    registry, load = (
        (DENSE_BACKENDS, dense_backend)
        if side == DENSE_FOLDER
        else (LEXICAL_BACKENDS, lexical_backend)
    )
    if name not in registry:
        return None
    backend = load(name)
    record = backend.outside(folder / side)
    return None if record is None else (backend, record)
