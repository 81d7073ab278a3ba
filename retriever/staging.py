"""Where a build may write, and how it replaces an index so that a crash never breaks it.

The guard: a build replaces its index folder whole, so it replaces only a folder that is
missing, empty, or ours: holding nothing but the entries an index holds (retriever.store),
and marked by its manifest or by the README word for word (a fresh clone's index/ holds only
that README, and a damaged index keeps it). Anything else is an IndexFolderError and nothing
is touched: a file, a folder holding other things, the corpus itself, a folder inside the
corpus or holding it, and a folder holding the working directory.

Crashes: a build or update writes a complete index into `.{name}.building-{pid}-{random}`
beside the index, locks the marker file it creates there first, and swaps the result in by
two renames through `.{name}.previous`. The previous index is never written to, so until the
swap it is what loads. The lock dies with its process, however that ends, so the next build
or load can tell a dead build's staging folder from a live one's: it removes the dead ones,
puts back an index whose swap was cut between the renames, and removes a leftover backup.
Nothing of a live build is touched, so two builds may run at once.
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from retriever.manifest import is_ours
from retriever.store import INDEX_ENTRIES, MANIFEST, README, README_TEXT

logger = logging.getLogger(__name__)

# Created first in a staging folder and locked by its build until the index is complete.
BUILD_LOCK = ".building"
BUILD_LOCK_PENDING = ".building.new"  # the marker's name until it is locked
STAGING_ENTRIES = INDEX_ENTRIES | {BUILD_LOCK, BUILD_LOCK_PENDING}
Written = TypeVar("Written")


class IndexFolderError(ValueError):
    """A build was pointed at a folder it must not replace; nothing was touched."""


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
        return is_ours(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def _is_our_readme(path: Path) -> bool:
    try:
        readme = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False
    return readme.replace("\r\n", "\n") == README_TEXT  # git may check it out with CRLF


# ---------------------------------------------------------------------------- replacing


def replace_folder(folder: Path, write: Callable[[Path], Written]) -> Written:
    """Have `write(staging)` write a complete index into a staging sibling of `folder`, then
    swap it in; returns what `write` returned.

    Raises IndexFolderError, before writing anything, if `folder` is not ours to replace.
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
            written = write(staging)
            _check_replaceable(folder)  # again: a long build leaves time to put files there
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


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
