"""The index folder: plain files, a manifest that describes them, atomic replacement.

Layout (no pickle anywhere):

    manifest.json   format version, model, settings, sources with hashes, file checksums
    chunks.jsonl    one chunk a line: where it comes from and its text
    vectors.faiss   FAISS index of L2-normalised passage vectors (inner product = cosine)
    bm25/           bm25s's .npy arrays and .json vocabulary

A build writes a sibling temporary folder and swaps it in whole, so a crash mid-build leaves
the previous index usable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.faiss"
BM25_FOLDER = "bm25"
REBUILD_HINT = "rebuild it with `python -m retriever build` (or `make index`)"
README = "README.md"
README_TEXT = """# index/

Built by `python -m retriever build` from the files in corpus/ (`make run` builds it when it
is missing or the corpus changed). Everything here is generated: edit corpus/ and rebuild,
never these files. `manifest.json` says what was built, when, with which model and settings,
and holds a checksum of every other file, so a damaged folder is refused with a clear error.
Only this README is kept in git.
"""


class IndexLoadError(RuntimeError):
    """The index folder cannot be used as it is; the message says what to do."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as saved: enough to cite it without reopening the source file."""

    doc_id: str
    source: str
    title: str
    heading: str
    start: int
    end: int
    text: str


# The libraries whose versions decide what an index holds; recorded in its manifest.
ENGINE_LIBRARIES = (
    "onnxruntime",
    "sentence-transformers",
    "torch",
    "faiss-cpu",
    "bm25s",
    "jieba",
    "opencc",
)


def library_versions(packages: tuple[str, ...] = ENGINE_LIBRARIES) -> dict[str, str]:
    """Installed version of each package ("not installed" where it is missing)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_index(
    folder: Path,
    *,
    manifest: dict[str, Any],
    chunks: list[StoredChunk],
    write_vectors,
    write_bm25,
) -> None:
    """Write a complete index into a temporary sibling of `folder`, then swap it in.

    `write_vectors(path)` and `write_bm25(folder)` write the FAISS and BM25 parts.
    """
    folder = folder.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.building-", dir=folder.parent))
    try:
        with (staging / CHUNKS).open("w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        write_vectors(staging / VECTORS)
        (staging / BM25_FOLDER).mkdir()
        write_bm25(staging / BM25_FOLDER)
        checksums = {
            path.relative_to(staging).as_posix(): _sha256(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        full_manifest = {
            "format_version": FORMAT_VERSION,
            **manifest,
            "chunk_count": len(chunks),
            "versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "checksums": checksums,
        }
        (staging / MANIFEST).write_text(
            json.dumps(full_manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        (staging / README).write_text(README_TEXT, encoding="utf-8")
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging`. The old copy is kept as a backup until the new is in place."""
    backup = folder.with_name(f".{folder.name}.previous")
    shutil.rmtree(backup, ignore_errors=True)
    if folder.exists():
        os.rename(folder, backup)
    os.rename(staging, folder)
    shutil.rmtree(backup, ignore_errors=True)


def restore_interrupted_swap(folder: Path) -> None:
    """If a crash came between the two renames of a swap, put the previous index back."""
    backup = folder.with_name(f".{folder.name}.previous")
    if not folder.exists() and backup.is_dir():
        logger.warning("restoring %s from an interrupted rebuild", folder)
        os.rename(backup, folder)


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check the manifest and every file it lists. Raises IndexLoadError."""
    restore_interrupted_swap(folder)
    if not folder.is_dir():
        raise IndexLoadError(f"no index at {folder}: build one with `python -m retriever build`")
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexLoadError(
            f"{folder} has no {MANIFEST}, so it is not a complete index: {REBUILD_HINT}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IndexLoadError(f"{path} is damaged ({error}): {REBUILD_HINT}") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise IndexLoadError(
            f"{folder} has index format {version!r}, this version reads format "
            f"{FORMAT_VERSION}: {REBUILD_HINT}"
        )
    checksums = manifest.get("checksums", {})
    for name in (CHUNKS, VECTORS):
        if name not in checksums:
            raise IndexLoadError(f"{path} does not list {name}: {REBUILD_HINT}")
    for name, expected in checksums.items():
        file = folder / name
        if not file.is_file():
            raise IndexLoadError(f"{folder} is missing {name}: {REBUILD_HINT}")
        if _sha256(file) != expected:
            raise IndexLoadError(
                f"{file} does not match its checksum in the manifest (damaged or edited by "
                f"hand): {REBUILD_HINT}"
            )
    return manifest


def read_chunks(folder: Path) -> list[StoredChunk]:
    with (folder / CHUNKS).open(encoding="utf-8") as handle:
        return [StoredChunk(**json.loads(line)) for line in handle]
