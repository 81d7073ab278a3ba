"""Milvus Lite's working copies, and closing a Milvus backend.

Milvus Lite writes to the folder it opens (its LOCK, WAL and manifest files), so the index
folder's `dense/milvus.db` is never opened: the backend opens a copy in a private temporary
folder. A working copy is a `retriever-milvus-*` folder in the temp dir
(tempfile.gettempdir(), so TMPDIR), deleted by `close`, when the backend is
garbage-collected, or at exit. Its process holds a lock on the marker file OWNER inside for
as long as it lives, so the copies of a process that died without closing them (killed) are
told apart and deleted by the next process that opens or creates a Milvus index.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATA = "milvus.db"  # Milvus Lite's data folder (its name must end in .db)
WORKING_PREFIX = "retriever-milvus-"  # a Lite working copy's folder name in the temp dir
OWNER = "owner.lock"  # in a working copy: locked by the process using it while it lives
OWNER_PENDING = "owner.lock.new"  # the marker's name until it is locked


def new_working_copy() -> tuple[Path, int]:
    """A new private folder for a Lite working copy, and its marker: the OWNER file in it,
    open and locked by this process until `close`. The system frees the lock when the
    process dies, however that happens, which tells `remove_dead_copies` the copy is dead.

    The marker is locked before it gets its name, so an OWNER file whose lock is free is
    never a live process's. (A process killed in the few system calls before that leaves a
    folder with no data and no OWNER, which is never deleted: it may be a live one's.)"""
    folder = Path(tempfile.mkdtemp(prefix=WORKING_PREFIX, dir=tempfile.gettempdir()))
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        marker = os.open(folder / OWNER_PENDING, flags, 0o600)
        fcntl.flock(marker, fcntl.LOCK_EX)
        os.write(marker, f"{os.getpid()}\n".encode())  # for a person looking, not for us
        os.rename(folder / OWNER_PENDING, folder / OWNER)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, marker


def remove_dead_copies() -> None:
    """Delete the working copies that processes which died without closing them left.

    Only a folder this backend made is deleted: in the temp dir, its name starting with
    WORKING_PREFIX, a folder (not a symlink) of this user, holding an OWNER file (not a
    symlink) whose lock is free. A live process holds its copy's lock, so its copy is never
    touched."""
    temp = Path(tempfile.gettempdir())
    try:
        names = [name for name in os.listdir(temp) if name.startswith(WORKING_PREFIX)]
    except OSError:  # no temp dir to read: nothing of ours is there
        return
    for name in names:
        folder = temp / name
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            marker = os.open(folder / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # gone, or no marker: not a working copy, or one being made
            continue
        try:
            fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: its process is alive
            continue
        else:
            logger.warning("removing %s, a Milvus working copy left by a dead process", folder)
            _remove_copy(folder)
        finally:
            os.close(marker)


def release(state: dict[str, Any], uri: str, server: bool) -> None:
    """Close the client in `state` and, for Lite, the in-process database, writing it out."""
    if state["client"] is not None:
        state["client"].close()
        state["client"] = None
    if not server:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def close(state: dict[str, Any], uri: str, server: bool, marker: int | None, pid: int) -> None:
    """On `close`, when the backend is garbage-collected, or at exit: close it, and delete a
    Lite working copy, which nothing else reads."""
    if os.getpid() != pid:  # a forked child: the copy and the database are its parent's
        return
    try:
        release(state, uri, server)
    except Exception:  # at exit, gRPC may be gone already; the copy is deleted anyway
        logger.debug("closing Milvus at %s failed", uri, exc_info=True)
    if not server:
        _remove_copy(Path(uri).parent)
    if marker is not None:
        os.close(marker)  # frees the lock, after the copy is gone


def _remove_copy(folder: Path) -> None:
    """Delete a working copy, the database before its marker, so that a deletion cut short
    (the process killed) leaves a marked folder, which the next start deletes."""
    shutil.rmtree(folder / DATA, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
