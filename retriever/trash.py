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
each file either where it was or in the trash. A change the file system fails (a full disk,
say) is undone before it is reported, as a `WriteFailed`: no half-made trash entry is left,
and each file is where it was. Callers serialise changes to one corpus folder (the web app
holds a lock); the command line runs one change at a time.

No symbolic link is followed: a name whose path in the corpus passes through one is refused,
and a trash entry that is one, or whose record or file is one, is not listed (restoring it
would move a file from outside the corpus into it), nor is any entry of a trash folder that
is itself a link.

Errors are `DocumentError`s with English messages, for the command line; the web app says the
same in Chinese.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
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
# The errors of a write that mean the disk (or the user's quota on it) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DocumentError(ValueError):
    """A change to the corpus folder that was refused, or failed and was undone: nothing
    changed."""


class NoSuchDocument(DocumentError):
    """The name is not one of the corpus folder's documents."""


class NothingReadableLeft(DocumentError):
    """Removing the file would leave no readable document to build an index from."""


class NoSuchTrashEntry(DocumentError):
    """The id is not one of the trash's entries."""


class WriteFailed(DocumentError):
    """The file system failed a change (a full disk, say); what was done of it was undone."""

    def __init__(self, doing: str, error: OSError) -> None:
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        super().__init__(f"{doing} failed, so nothing was changed: {self.strerror}")

    @property
    def disk_full(self) -> bool:
        return self.errno in DISK_FULL_ERRNOS


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
    file, or None when there was none. WriteFailed when the file system fails it: the
    temporary file is removed and a replaced file put back (a sub-folder made for it may stay).
    """
    with _undone_on_failure(f"writing {name!r}"):
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
            try:
                os.replace(temporary, target)
            except BaseException:
                if replaced is not None:
                    _take_back(corpus_dir, replaced)
                raise
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return replaced


def remove_file(corpus_dir: Path, name: str, readable: Collection[str]) -> TrashEntry:
    """Move the corpus file `name` to the trash.

    `readable` names the files the caller knows to be readable (the sources of the index it
    serves). The removal is refused, with nothing touched, unless another of them is still in
    the corpus folder: an index cannot be built from nothing. WriteFailed, with the file where
    it was, when the file system fails the move.
    """
    with _undone_on_failure(f"moving {name!r} to the trash"):
        # Only a listed name is accepted: inside the folder, and no symbolic link.
        if name not in document_names(corpus_dir):
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
    if folder.is_symlink():  # its entries lie outside the corpus: none is ours to restore
        logger.warning("ignoring the trash %s: it is a symbolic link", folder)
        return []
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
    displaced (the current file of that name, now in the trash), if there was one.

    WriteFailed, with every file where it was, when the file system fails it.
    """
    with _undone_on_failure(f"restoring {entry_id!r}"):
        # Only a listed id is accepted: no link, and no id or name pointing outside the trash
        # or the corpus (_read_entry), checked before anything is touched.
        entry = next((item for item in list_trash(corpus_dir) if item.id == entry_id), None)
        if entry is None:
            raise NoSuchTrashEntry(f"no entry {entry_id!r} in the trash of {corpus_dir}")
        target = _document_path(corpus_dir, entry.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        displaced = _to_trash(corpus_dir, entry.name, "restored-over") if target.is_file() else None
        entry_dir = corpus_dir / TRASH / entry.id
        try:
            os.replace(entry_dir / PurePosixPath(entry.name).name, target)
        except BaseException:
            if displaced is not None:
                _take_back(corpus_dir, displaced)
            raise
        # The file is back: what may be left of its entry (its record) is not listed.
        shutil.rmtree(entry_dir, ignore_errors=True)
    return entry, displaced


@contextmanager
def _undone_on_failure(doing: str) -> Iterator[None]:
    """Turn the OSError of a change, which undid itself, into WriteFailed."""
    try:
        yield
    except OSError as error:
        logger.warning("%s failed: %s", doing, error)
        raise WriteFailed(doing, error) from error


def _to_trash(corpus_dir: Path, name: str, reason: Reason) -> TrashEntry:
    """Move the corpus file `name` into a new trash entry. Its record is written first, so a
    crash between the two steps leaves an entry without its file, which is not listed, never
    a file without its record; a failed step removes the entry, the file staying in place."""
    folder = corpus_dir / TRASH
    if folder.is_symlink():
        raise DocumentError("the trash folder is a symbolic link: nothing is moved out there")
    source = corpus_dir / name
    moment = datetime.now(UTC).replace(microsecond=0)
    entry = TrashEntry(
        id=f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}",
        name=name,
        removed_at=moment.isoformat(),
        reason=reason,
        size=source.stat().st_size,
    )
    entry_dir = folder / entry.id
    entry_dir.mkdir(parents=True)
    try:
        (entry_dir / ENTRY).write_text(
            json.dumps(entry.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        os.replace(source, entry_dir / PurePosixPath(name).name)
    except BaseException:
        shutil.rmtree(entry_dir, ignore_errors=True)
        raise
    return entry


def _take_back(corpus_dir: Path, entry: TrashEntry) -> None:
    """Undo `_to_trash`, when the change it was part of failed: the file goes back to its
    name, and its entry is removed."""
    entry_dir = corpus_dir / TRASH / entry.id
    os.replace(entry_dir / PurePosixPath(entry.name).name, corpus_dir / entry.name)
    shutil.rmtree(entry_dir)


def _read_entry(entry_dir: Path) -> TrashEntry | None:
    """The entry recorded in `entry_dir`, or None when it is incomplete, not one of ours, or
    reaches outside the trash or the corpus: a symbolic link (the folder, its record or its
    file), or a name that is not a plain relative one."""
    record = entry_dir / ENTRY
    if entry_dir.is_symlink() or record.is_symlink():
        logger.warning("ignoring %s in the trash: a symbolic link", entry_dir)
        return None
    try:
        entry = TrashEntry(**json.loads(record.read_text(encoding="utf-8")))
        kept = entry_dir / _plain_parts(entry.name)[-1]
    except (OSError, ValueError, TypeError) as error:  # DocumentError is a ValueError
        logger.warning("ignoring %s in the trash: %s", entry_dir, error)
        return None
    if entry.id != entry_dir.name or kept.is_symlink() or not kept.is_file():
        logger.warning("ignoring %s in the trash: its file is missing or a link", entry_dir)
        return None
    return entry


def _document_path(corpus_dir: Path, name: str) -> Path:
    """`corpus_dir / name`, refusing names that would leave the folder or hide from builds,
    and paths through a symbolic link (a folder or the file itself), which may lead anywhere."""
    parts = _plain_parts(name)
    for depth in range(1, len(parts) + 1):
        if corpus_dir.joinpath(*parts[:depth]).is_symlink():
            raise DocumentError(f"{name!r} passes through a symbolic link in the corpus folder")
    return corpus_dir.joinpath(*parts)


def _plain_parts(name: str) -> tuple[str, ...]:
    """The parts of `name`; DocumentError unless it is a plain relative name of a file that
    builds read: no "..", nothing absolute or hidden."""
    parts = PurePosixPath(name).parts
    if (
        not parts
        or PurePosixPath(name).is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
    ):
        raise DocumentError(f"{name!r} is not a plain relative file name")
    return parts
