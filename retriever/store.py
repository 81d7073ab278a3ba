"""The index folder's plain files: their names, chunks.jsonl, and manifest.json with the
checksum of every other file.

Layout (no pickle anywhere):

    manifest.json   the mark, format version, model, settings, backends, sources with
                    hashes, checksums (retriever.manifest)
    chunks.jsonl    every passage of the corpus, in corpus order, one a line: where it comes
                    from, its text, its id in the backends, and the key a repeat is known by
    dense/          the dense backend's files (FAISS: vectors.faiss)
    lexical/        the lexical backend's files (bm25s: .npy arrays, .json vocabulary, tokens)
    README.md       says that everything here is generated (the same text in every index)

A passage that repeats an earlier one is kept in chunks.jsonl with the id null and is in no
backend: when the earlier one goes, an update can index it without reading its file again.
Loading checks every file against its checksum and every chunk line against `StoredChunk`;
whatever is wrong is an IndexLoadError that says to rebuild, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import get_type_hints

from retriever.manifest import Manifest, parse_manifest
from retriever.schema import REBUILD_HINT, Fields, IndexLoadError

MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
DENSE_FOLDER = "dense"
LEXICAL_FOLDER = "lexical"
README = "README.md"
# Everything a build puts in an index folder; format 1 wrote vectors.faiss and bm25/ instead
# of the two backend folders, and a build may replace such an index too.
INDEX_ENTRIES = frozenset(
    {MANIFEST, CHUNKS, DENSE_FOLDER, LEXICAL_FOLDER, README, "vectors.faiss", "bm25"}
)
README_TEXT = """# index/

Built by `python -m retriever build` from the files in corpus/ (`make run` builds it when it
is missing or the corpus changed). Everything here is generated: edit corpus/ and rebuild,
never these files. `manifest.json` says what was built, when, with which model and settings,
and holds a checksum of every other file, so a damaged folder is refused with a clear error.
Only this README is kept in git.
"""

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


@dataclass(frozen=True)
class StoredChunk:
    """A passage as saved: enough to cite it without reopening the source file.

    `id` is its key in every backend, fixed for as long as the passage is in the index; it is
    None for a passage that repeats an earlier one and so is not indexed. `key` is a digest
    of the normalised heading and text, by which repeats are recognised.
    """

    id: int | None
    key: str
    doc_id: str
    source: str
    title: str
    heading: str
    start: int
    end: int
    text: str


# Every field but the id, which may be null and is checked on its own.
_CHUNK_KINDS = {name: kind for name, kind in get_type_hints(StoredChunk).items() if name != "id"}
_CHUNK_KEYS = {"id", *_CHUNK_KINDS}


def library_versions(packages: tuple[str, ...] = ENGINE_LIBRARIES) -> dict[str, str]:
    """Installed version of each package ("not installed" where it is missing)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- writing


def write_chunks(folder: Path, chunks: list[StoredChunk]) -> None:
    with (folder / CHUNKS).open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            # vars(), not asdict(): asdict copies every field deeply, 4 s at 100k chunks.
            handle.write(json.dumps(vars(chunk), ensure_ascii=False) + "\n")


def write_manifest(folder: Path, manifest: Manifest) -> Manifest:
    """Write manifest.json and the README into a folder that holds everything else.

    The manifest gets the checksum of every file beside it (hidden files, such as a build's
    lock marker, are not part of an index), the library versions and the time. Returns it
    as a load would read it back.
    """
    checksums = {
        path.relative_to(folder).as_posix(): sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    complete = replace(
        manifest,
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        checksums=checksums,
    )
    data = complete.to_json()
    (folder / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / README).write_text(README_TEXT, encoding="utf-8")
    return replace(complete, raw=data)


# ----------------------------------------------------------------------------- reading


def read_manifest(folder: Path) -> Manifest:
    """Read and validate the manifest and check every file it lists. Raises IndexLoadError."""
    if not folder.is_dir():
        raise IndexLoadError(f"no index at {folder}: build one with `python -m retriever build`")
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexLoadError(
            f"{folder} has no {MANIFEST}, so it is not a complete index: {REBUILD_HINT}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise IndexLoadError(f"{path} cannot be read ({error.strerror}): {REBUILD_HINT}") from None
    except ValueError as error:  # not JSON, or not UTF-8
        raise IndexLoadError(f"{path} is damaged ({error}): {REBUILD_HINT}") from None
    manifest = parse_manifest(data, path)
    top = Fields(data, path)
    if CHUNKS not in manifest.checksums:
        top.fail(f"checksums does not list {CHUNKS}")
    for name, expected in manifest.checksums.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            top.fail(f"checksums lists {name!r}, which is outside the index")
        file = folder / name
        if not file.is_file():
            raise IndexLoadError(f"{folder} is missing {name}: {REBUILD_HINT}")
        if sha256(file) != expected:
            raise IndexLoadError(
                f"{file} does not match its checksum in the manifest (damaged or edited by "
                f"hand): {REBUILD_HINT}"
            )
    return manifest


def read_chunks(folder: Path) -> list[StoredChunk]:
    """The passages of an index, each line checked against StoredChunk. Raises
    IndexLoadError."""
    path = folder / CHUNKS
    try:
        with path.open("rb") as handle:
            return [_chunk(line, path, number) for number, line in enumerate(handle, 1)]
    except OSError as error:
        raise IndexLoadError(f"{path} cannot be read ({error.strerror}): {REBUILD_HINT}") from None


def _chunk(line: bytes, path: Path, number: int) -> StoredChunk:
    try:
        data = json.loads(line.decode("utf-8"))
    except ValueError as error:  # not UTF-8, or not JSON
        raise IndexLoadError(
            f"{path} is damaged (line {number}: {error}): {REBUILD_HINT}"
        ) from None
    if _is_sound(data):  # every line of a sound index: checked in one pass
        return StoredChunk(**data)
    # Something is wrong: find what, key by key, to say it.
    record = Fields(data, path, f"line {number}: ")
    if "id" not in record.data:
        record.fail(f"line {number}: id is missing")
    chunk_id = record.data.pop("id")
    if chunk_id is not None and (type(chunk_id) is not int or chunk_id < 0):
        record.fail(f"line {number}: id should be a whole number or null, not {chunk_id!r}")
    record.checked(_CHUNK_KINDS, exact=True)
    record.fail(f"line {number} has the offsets {data['start']}..{data['end']}")


def _is_sound(data: object) -> bool:
    """A chunk line holding exactly StoredChunk's keys, with their types and sane offsets.

    The fast check a load makes of every line (an index has one per passage); `bool` is
    refused where a number is due, as JSON's true is no offset.
    """
    return (
        type(data) is dict
        and data.keys() == _CHUNK_KEYS
        and (data["id"] is None or (type(data["id"]) is int and data["id"] >= 0))
        and all(type(data[key]) is kind for key, kind in _CHUNK_KINDS.items())
        and 0 <= data["start"] <= data["end"]
    )
