"""Changes to the corpus folder that never lose a file: what is replaced or removed goes to a trash.

The trash is the hidden folder `.trash/` inside the corpus folder; builds skip hidden paths
(`corpus.corpus_files`), so what lies there is never indexed. Each file put there gets a
folder of its own, named by the time it was moved plus a random suffix:

    corpus/.trash/20261129T011502Z-3f9a1c2e/
        entry.json   {"name": "sub/规章.txt", "removed_at": "2026-11-29T01:15:02+00:00",
                      "reason": "removed", "size": 1234}
        规章.txt      the file as it was

Nothing here deletes a file: `put_file` moves the file it replaces to the trash, `remove_file`
moves the file, and `restore` moves the current file of the same name to the trash before
putting the old one back. Every move is a rename within one file system, so a crash leaves
each file either where it was or in the trash. Callers serialise changes to one corpus folder
(the web app holds a lock); the command line runs one change at a time.

Errors are `DocumentError`s with English messages, for the command line; the web app says the
same in Chinese.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from retriever.corpus import corpus_files

logger = logging.getLogger(__name__)

TRASH = ".trash"
ENTRY = "entry.json"
# Why a file went to the trash: removed by a user, replaced by an upload of the same name,
# or replaced by a restored older version.
Reason = Literal["removed", "replaced", "restored-over"]


class DocumentError(ValueError):
    """A change to the corpus folder that was refused before anything was touched."""


class NoSuchDocument(DocumentError):
    """The name is not one of the corpus folder's documents."""


class NothingReadableLeft(DocumentError):
    """Removing the file would leave no readable document to build an index from."""


class NoSuchTrashEntry(DocumentError):
    """The id is not one of the trash's entries."""


@dataclass(frozen=True)
class TrashEntry:
    """A file in the trash: where it came from, when and why it was moved there."""

    id: str
    name: str  # its path relative to the corpus folder, where restore puts it back
    removed_at: str  # ISO 8601, UTC
    reason: Reason
    size: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def document_names(corpus_dir: Path) -> list[str]:
    """The corpus folder's documents, as paths relative to it (what a build reads)."""
    return [path.relative_to(corpus_dir).as_posix() for path in corpus_files(corpus_dir)]


def put_file(corpus_dir: Path, name: str, data: bytes) -> TrashEntry | None:
    """Write `data` as the corpus file `name`; a file already there goes to the trash first.

    The bytes are written to a hidden temporary file (builds skip hidden files) and renamed
    into place, so a build never reads half a file. Returns the trash entry of the replaced
    file, or None when there was none.
    """
    target = _document_path(corpus_dir, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a document is not secret
        replaced = _to_trash(corpus_dir, name, "replaced") if target.is_file() else None
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return replaced


def remove_file(corpus_dir: Path, name: str, readable: Collection[str]) -> TrashEntry:
    """Move the corpus file `name` to the trash.

    `readable` names the files the caller knows to be readable (the sources of the index it
    serves). The removal is refused, with nothing touched, unless another of them is still in
    the corpus folder: an index cannot be built from nothing.
    """
    if name not in document_names(corpus_dir):  # also keeps every name inside the folder
        raise NoSuchDocument(f"{name!r} is not a document of {corpus_dir}")
    others = [other for other in readable if other != name and (corpus_dir / other).is_file()]
    if not others:
        raise NothingReadableLeft(
            f"removing {name!r} would leave no readable document in {corpus_dir}; "
            "add another document first"
        )
    return _to_trash(corpus_dir, name, "removed")


def list_trash(corpus_dir: Path) -> list[TrashEntry]:
    """The trash's entries, the most recently removed first."""
    folder = corpus_dir / TRASH
    if not folder.is_dir():
        return []
    entries = []
    for entry_dir in folder.iterdir():
        entry = _read_entry(entry_dir)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda entry: (entry.removed_at, entry.id), reverse=True)


def restore(corpus_dir: Path, entry_id: str) -> tuple[TrashEntry, TrashEntry | None]:
    """Put a trashed file back under its old name; returns it and the entry of the file it
    displaced (the current file of that name, now in the trash), if there was one."""
    # Only a listed id is accepted, so no id can point outside the trash.
    entry = next((item for item in list_trash(corpus_dir) if item.id == entry_id), None)
    if entry is None:
        raise NoSuchTrashEntry(f"no entry {entry_id!r} in the trash of {corpus_dir}")
    target = _document_path(corpus_dir, entry.name)
    displaced = _to_trash(corpus_dir, entry.name, "restored-over") if target.is_file() else None
    entry_dir = corpus_dir / TRASH / entry.id
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(entry_dir / PurePosixPath(entry.name).name, target)
    shutil.rmtree(entry_dir)
    return entry, displaced


def _to_trash(corpus_dir: Path, name: str, reason: Reason) -> TrashEntry:
    """Move the corpus file `name` into a new trash entry (its record is written first, so a
    crash between the two steps leaves an empty entry, never a file without its record)."""
    source = corpus_dir / name
    moment = datetime.now(UTC).replace(microsecond=0)
    entry = TrashEntry(
        id=f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}",
        name=name,
        removed_at=moment.isoformat(),
        reason=reason,
        size=source.stat().st_size,
    )
    entry_dir = corpus_dir / TRASH / entry.id
    entry_dir.mkdir(parents=True)
    (entry_dir / ENTRY).write_text(
        json.dumps(entry.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    os.replace(source, entry_dir / PurePosixPath(name).name)
    return entry


def _read_entry(entry_dir: Path) -> TrashEntry | None:
    """The entry recorded in `entry_dir`, or None when it is incomplete or not one of ours."""
    try:
        record = json.loads((entry_dir / ENTRY).read_text(encoding="utf-8"))
        entry = TrashEntry(**record)
    except (OSError, ValueError, TypeError) as error:
        logger.warning("ignoring %s in the trash: %s", entry_dir, error)
        return None
    if entry.id != entry_dir.name or not (entry_dir / PurePosixPath(entry.name).name).is_file():
        logger.warning("ignoring %s in the trash: its file is missing", entry_dir)
        return None
    return entry


def _document_path(corpus_dir: Path, name: str) -> Path:
    """`corpus_dir / name`, refusing names that would leave the folder or hide from builds."""
    parts = PurePosixPath(name).parts
    if (
        not parts
        or PurePosixPath(name).is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
    ):
        raise DocumentError(f"{name!r} is not a plain relative file name")
    return corpus_dir.joinpath(*parts)
