"""The index folder: plain files, a manifest that describes them, atomic replacement.

Layout (no pickle anywhere):

    manifest.json   the mark, format version, model, settings, sources with hashes, checksums
    chunks.jsonl    one chunk a line: where it comes from and its text
    vectors.faiss   FAISS index of L2-normalised passage vectors (inner product = cosine)
    bm25/           bm25s's .npy arrays and .json vocabulary
    README.md       says that everything here is generated (the same text in every index)

The mark: every manifest says `"format": "zh-retriever-index"`. Manifests written before the
mark existed are recognised by their shape (format_version 1 with checksums and chunk_count).
Loading validates the manifest's whole schema into a `Manifest`, checks every file against
its checksum and every chunk line against `StoredChunk`; whatever is wrong is an
IndexLoadError that says to rebuild, never a traceback.

The guard: a build replaces its index folder whole, so it replaces only a folder that is
missing, empty, or ours: holding nothing but the entries above, and marked by its manifest
or by the README word for word (a fresh clone's index/ holds only that README, and a damaged
index keeps it). Anything else is an IndexFolderError and nothing is touched: a file, a
folder holding other things, the corpus itself, a folder inside the corpus or holding it, and
a folder holding the working directory.

Crashes: a build writes `.{name}.building-{pid}-{random}` beside the index, locks the marker
file it creates there first, and swaps the result in by two renames through
`.{name}.previous`. The lock dies with its process, however that ends, so the next build or
load can tell a dead build's staging folder from a live one's: it removes the dead ones,
puts back an index whose swap was cut between the renames, and removes a leftover backup.
Nothing of a live build is touched, so two builds may run at once.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn, TypeVar, get_type_hints

from retriever.config import ChunkSettings, LexicalSettings

logger = logging.getLogger(__name__)

FORMAT = "zh-retriever-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.faiss"
BM25_FOLDER = "bm25"
README = "README.md"
# Created first in a staging folder and locked by its build until the index is complete.
BUILD_LOCK = ".building"
BUILD_LOCK_PENDING = ".building.new"  # the marker's name until it is locked
# Everything a build puts in an index folder.
INDEX_ENTRIES = frozenset({MANIFEST, CHUNKS, VECTORS, BM25_FOLDER, README})
STAGING_ENTRIES = INDEX_ENTRIES | {BUILD_LOCK, BUILD_LOCK_PENDING}
REBUILD_HINT = "rebuild it with `python -m retriever build` (or `make index`)"
README_TEXT = """# index/

Built by `python -m retriever build` from the files in corpus/ (`make run` builds it when it
is missing or the corpus changed). Everything here is generated: edit corpus/ and rebuild,
never these files. `manifest.json` says what was built, when, with which model and settings,
and holds a checksum of every other file, so a damaged folder is refused with a clear error.
Only this README is kept in git.
"""


class IndexLoadError(RuntimeError):
    """The index folder cannot be used as it is; the message says what to do."""


class IndexFolderError(ValueError):
    """A build was pointed at a folder it must not replace; nothing was touched."""


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


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file the build left out, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Manifest(Mapping[str, Any]):
    """A manifest.json whose schema has been checked, as typed fields.

    It is also a read-only mapping over the JSON it was parsed from (`raw`), for callers that
    still read `manifest["sources"]`.
    """

    format_version: int
    model_name: str
    model_dim: int
    chunking: ChunkSettings
    lexical: LexicalSettings
    document_count: int
    chunk_count: int
    sources: tuple[dict[str, Any], ...]  # corpus.SourceFile records
    skipped: tuple[SkippedFile, ...]
    corpus_hashes: dict[str, str]
    created_at: str
    checksums: dict[str, str]  # every file of the index but the manifest, by relative path
    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


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


# ----------------------------------------------------------------------------- the guard


def check_index_target(folder: Path, corpus: Path) -> None:
    """Raise IndexFolderError unless a build from `corpus` may replace `folder`.

    Run before a build reads anything, so that a refused build costs nothing.
    """
    target, source = folder.resolve(), corpus.resolve()
    whole = "a build replaces its index folder whole, so give the index a folder of its own"
    if target == source:
        raise IndexFolderError(f"the index folder {folder} is the corpus itself: {whole}")
    if target.is_relative_to(source):
        raise IndexFolderError(
            f"the index folder {folder} is inside the corpus {corpus}: a build would read the "
            "index as documents and replace what the corpus holds there; put the index outside it"
        )
    if source.is_relative_to(target):
        raise IndexFolderError(f"the index folder {folder} holds the corpus {corpus}: {whole}")
    if Path.cwd().resolve().is_relative_to(target):
        raise IndexFolderError(f"the index folder {folder} holds the working directory: {whole}")
    _check_replaceable(target)
    _check_backup(_backup_of(target))


def _check_replaceable(folder: Path) -> None:
    """Raise IndexFolderError unless `folder` (resolved, so no link) is missing, empty, or an
    index this project built."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise IndexFolderError(
            f"{folder} is not a folder: a build would replace it with an index folder, so "
            "give the index a folder of its own"
        )
    problem = _why_not_ours(folder)
    if problem is not None:
        raise IndexFolderError(
            f"{folder} {problem}, so it is not an index this project built and a build will "
            "not replace it: give the index an empty or new folder, or empty this one yourself"
        )


def _why_not_ours(folder: Path) -> str | None:
    """None when `folder` is empty or a (possibly damaged) index; otherwise why it is not."""
    try:
        entries = {entry.name for entry in folder.iterdir()}
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    foreign = sorted(entries - INDEX_ENTRIES)
    if foreign:
        listed = ", ".join(foreign[:3]) + (" and more" if len(foreign) > 3 else "")
        return f"holds {listed}, which a build does not write"
    if not entries or _has_mark(folder):
        return None
    return f"has neither a {MANIFEST} nor a {README} written by a build"


def _check_backup(backup: Path) -> None:
    """Raise IndexFolderError if a swap would delete `backup` and it is not a leftover of ours.

    Its name marks it, so it is ours when it holds nothing but index files (a backup whose
    deletion was cut short may have lost its manifest and README).
    """
    if not backup.exists() and not backup.is_symlink():
        return
    if backup.is_symlink() or not backup.is_dir() or not _holds_only_index_files(backup):
        raise IndexFolderError(
            f"{backup} is in the way: a build keeps the previous index there while it swaps "
            "the new one in, and this is not such a copy: move it away"
        )


def _holds_only_index_files(folder: Path) -> bool:
    """True for a folder that holds nothing a build does not write (staging, backups)."""
    try:
        return {entry.name for entry in folder.iterdir()} <= STAGING_ENTRIES
    except OSError:
        return False


def _has_mark(folder: Path) -> bool:
    """A manifest with the project's mark, or the README every build writes, word for word."""
    return _manifest_is_marked(folder / MANIFEST) or _is_our_readme(folder / README)


def _manifest_is_marked(path: Path) -> bool:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    if "format" in manifest:
        return manifest["format"] == FORMAT
    # Written before the mark existed: recognised by the keys every such manifest has.
    return {"format_version", "checksums", "chunk_count"} <= manifest.keys()


def _is_our_readme(path: Path) -> bool:
    try:
        readme = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False
    return readme.replace("\r\n", "\n") == README_TEXT  # git may check it out with CRLF


# ---------------------------------------------------------------------------- building


def write_index(
    folder: Path,
    *,
    manifest: dict[str, Any],
    chunks: list[StoredChunk],
    write_vectors: Callable[[Path], None],
    write_bm25: Callable[[Path], None],
) -> None:
    """Write a complete index into a staging sibling of `folder`, then swap it in.

    `write_vectors(path)` and `write_bm25(folder)` write the FAISS and BM25 parts. Raises
    IndexFolderError, before writing anything, if `folder` is not ours to replace.
    """
    folder = folder.resolve()
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    clean_up_after_crashes(folder)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.building-{os.getpid()}-", dir=folder.parent)
    )
    try:
        with _locked(staging):
            _write_files(staging, manifest, chunks, write_vectors, write_bm25)
            _check_replaceable(folder)  # again: a long build leaves time to put files there
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def _locked(staging: Path) -> Iterator[None]:
    """Mark `staging` as a live build's until the block ends (or the process dies).

    The marker is locked before it gets its name, so a marker found under BUILD_LOCK whose
    lock is free was left by a dead build, even if its pid now names another process. While
    the folder has no marker (just after it is made, and from the end of writing to the swap)
    the pid in its name tells.
    """
    pending = staging / BUILD_LOCK_PENDING
    with pending.open("w") as marker:
        fcntl.flock(marker, fcntl.LOCK_EX)  # the system frees it when this process dies
        pending.rename(staging / BUILD_LOCK)
        try:
            yield
        finally:
            (staging / BUILD_LOCK).unlink(missing_ok=True)


def _write_files(
    staging: Path,
    manifest: dict[str, Any],
    chunks: list[StoredChunk],
    write_vectors: Callable[[Path], None],
    write_bm25: Callable[[Path], None],
) -> None:
    with (staging / CHUNKS).open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    write_vectors(staging / VECTORS)
    (staging / BM25_FOLDER).mkdir()
    write_bm25(staging / BM25_FOLDER)
    checksums = {
        path.relative_to(staging).as_posix(): _sha256(path)
        for path in sorted(staging.rglob("*"))
        if path.is_file() and path.name not in (BUILD_LOCK, BUILD_LOCK_PENDING)
    }
    full_manifest = {
        "format": FORMAT,
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


def _backup_of(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.previous")


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging`. The old copy is kept as a backup until the new is in place."""
    backup = _backup_of(folder)
    if backup.exists() or backup.is_symlink():
        _check_backup(backup)  # a backup that is not ours is never deleted
        shutil.rmtree(backup)
    if folder.exists():
        os.rename(folder, backup)
    os.rename(staging, folder)
    shutil.rmtree(backup, ignore_errors=True)


# ----------------------------------------------------------------------------- crashes


def clean_up_after_crashes(folder: Path) -> None:
    """Undo what builds of `folder` that died mid-way left beside it.

    Removes dead builds' staging folders; then, unless a build is running, puts back an
    index whose swap was cut between its two renames, or removes the backup a swap left.
    Only folders named as a build names them and holding only index files are touched.
    """
    folder = folder.resolve()
    if not folder.parent.is_dir():
        return
    build_running = False
    for staging in folder.parent.glob(f".{glob.escape(folder.name)}.building-*"):
        if not staging.is_dir() or staging.is_symlink() or not _holds_only_index_files(staging):
            continue
        if _build_is_alive(staging):
            build_running = True
        else:
            logger.warning("removing %s, left by a build that did not finish", staging)
            shutil.rmtree(staging, ignore_errors=True)
    backup = _backup_of(folder)
    if build_running or backup.is_symlink() or not backup.is_dir():
        return
    if not folder.exists() and _why_not_ours(backup) is None:
        logger.warning("restoring %s from an interrupted rebuild", folder)
        try:
            os.rename(backup, folder)
        except OSError as error:  # a read-only folder, say: the load will say what is missing
            logger.warning("could not restore %s: %s", folder, error)
    elif folder.exists() and _holds_only_index_files(backup):
        logger.warning("removing %s, left by a rebuild that did not finish", backup)
        shutil.rmtree(backup, ignore_errors=True)


def _build_is_alive(staging: Path) -> bool:
    """Whether the build that made staging folder `staging` is still running."""
    try:
        marker = (staging / BUILD_LOCK).open("rb")
    except FileNotFoundError:
        # Just created, or just about to be swapped in: the pid in the name decides.
        return _pid_is_alive(staging.name.rsplit(".building-", 1)[1].split("-", 1)[0])
    with marker:
        try:
            fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def _pid_is_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False  # named by a version that wrote neither pid nor lock
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, and another user's
    return True


# ----------------------------------------------------------------------------- loading


def read_manifest(folder: Path) -> Manifest:
    """Read and validate the manifest and check every file it lists. Raises IndexLoadError."""
    clean_up_after_crashes(folder)
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
    manifest = _parse_manifest(data, path)
    for name, expected in manifest.checksums.items():
        file = folder / name
        if not file.is_file():
            raise IndexLoadError(f"{folder} is missing {name}: {REBUILD_HINT}")
        if _sha256(file) != expected:
            raise IndexLoadError(
                f"{file} does not match its checksum in the manifest (damaged or edited by "
                f"hand): {REBUILD_HINT}"
            )
    return manifest


def _parse_manifest(data: object, path: Path) -> Manifest:
    """Check the manifest's schema, key by key. Raises IndexLoadError naming what is wrong."""
    if not isinstance(data, dict):
        raise IndexLoadError(
            f"{path} is damaged (it holds a JSON {type(data).__name__}, not an object): "
            f"{REBUILD_HINT}"
        )
    if data.get("format", FORMAT) != FORMAT:
        raise IndexLoadError(
            f"{path} is not the manifest of an index of this project (format "
            f"{data['format']!r}): {REBUILD_HINT}"
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise IndexLoadError(
            f"{path.parent} has index format {version!r}, this version reads format "
            f"{FORMAT_VERSION}: {REBUILD_HINT}"
        )
    top = _Fields(data, path)
    model = _Fields(top.get("model", dict), path, "model.")
    settings = _Fields(top.get("settings", dict), path, "settings.")
    checksums = top.get_mapping("checksums")
    for name in (CHUNKS, VECTORS):
        if name not in checksums:
            top.fail(f"checksums does not list {name}")
    for name in checksums:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            top.fail(f"checksums lists {name!r}, which is outside the index")
    return Manifest(
        format_version=version,
        model_name=model.get("name", str),
        model_dim=model.get_count("dim", minimum=1),
        chunking=settings.get_settings("chunking", ChunkSettings),
        lexical=settings.get_settings("lexical", LexicalSettings),
        document_count=top.get_count("document_count"),
        chunk_count=top.get_count("chunk_count"),
        sources=tuple(
            _Fields(source, path, f"sources[{i}].").checked({"path": str, "sha256": str})
            for i, source in enumerate(top.get("sources", list))
        ),
        skipped=tuple(
            SkippedFile(**_Fields(item, path, f"skipped[{i}].").checked(_SKIPPED_FIELDS))
            for i, item in enumerate(top.get("skipped", list))
        ),
        corpus_hashes=top.get_mapping("corpus_hashes"),
        created_at=top.get("created_at", str),
        checksums=checksums,
        raw=data,
    )


_SKIPPED_FIELDS: dict[str, type] = get_type_hints(SkippedFile)
_CHUNK_FIELDS: dict[str, type] = get_type_hints(StoredChunk)
Settings = TypeVar("Settings", ChunkSettings, LexicalSettings)
_KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


class _Fields:
    """Typed reads of one JSON object of a manifest; any wrong key is an IndexLoadError."""

    def __init__(self, data: object, path: Path, prefix: str = "") -> None:
        self.path, self.prefix = path, prefix
        if not isinstance(data, dict):
            self.fail(f"{prefix.rstrip('.: ') or 'the manifest'} should be an object")
        self.data: dict[str, Any] = data

    def fail(self, problem: str) -> NoReturn:
        raise IndexLoadError(f"{self.path} is damaged ({problem}): {REBUILD_HINT}")

    def get(self, key: str, kind: type) -> Any:
        if key not in self.data:
            self.fail(f"{self.prefix}{key} is missing")
        value = self.data[key]
        # JSON numbers: an int is a fine float, but true/false is no number.
        kinds = (int, float) if kind is float else kind
        if not isinstance(value, kinds) or (isinstance(value, bool) and kind is not bool):
            shown = json.dumps(value, ensure_ascii=False)
            shown = shown if len(shown) <= 40 else shown[:40] + "…"
            self.fail(f"{self.prefix}{key} should be {_KINDS[kind]}, not {shown}")
        return value

    def get_count(self, key: str, *, minimum: int = 0) -> int:
        value = self.get(key, int)
        if value < minimum:
            self.fail(f"{self.prefix}{key} is {value}, less than {minimum}")
        return value

    def get_mapping(self, key: str) -> dict[str, str]:
        """An object of strings to strings (checksums, corpus hashes)."""
        inner = _Fields(self.get(key, dict), self.path, f"{self.prefix}{key}.")
        return {name: inner.get(name, str) for name in inner.data}

    def checked(self, kinds: dict[str, type]) -> dict[str, Any]:
        """The object itself, after checking that it holds `kinds`' keys with their types."""
        for key, kind in kinds.items():
            self.get(key, kind)
        return self.data

    def get_settings(self, key: str, cls: type[Settings]) -> Settings:
        """A settings dataclass from exactly its fields, each of its default's type."""
        inner = _Fields(self.get(key, dict), self.path, f"{self.prefix}{key}.")
        names = [field.name for field in fields(cls)]
        extra = sorted(set(inner.data) - set(names))
        if extra:
            self.fail(f"{self.prefix}{key} holds unknown settings {', '.join(extra)}")
        values = {field.name: inner.get(field.name, type(field.default)) for field in fields(cls)}
        try:
            return cls(**values)
        except ValueError as error:
            self.fail(f"{self.prefix}{key}: {error}")


def read_chunks(folder: Path) -> list[StoredChunk]:
    """The chunks of an index, each line checked against StoredChunk. Raises IndexLoadError."""
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
    record = _Fields(data, path, f"line {number}: ")
    extra = sorted(set(record.data) - set(_CHUNK_FIELDS))
    if extra:
        record.fail(f"line {number} holds unknown keys {', '.join(extra)}")
    chunk = StoredChunk(**record.checked(_CHUNK_FIELDS))
    if not 0 <= chunk.start <= chunk.end:
        record.fail(f"line {number} has the offsets {chunk.start}..{chunk.end}")
    return chunk
