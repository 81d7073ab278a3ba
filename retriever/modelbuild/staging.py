"""Folders of the model builds: made in a temporary sibling, renamed into place when done.

A crash never leaves a half-built folder that looks usable, and two processes that start a
build at once (the app and the test suite) do it once: the second waits on the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file beside ``target`` while it is built (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: the rename below still keeps the folder consistent
        yield
        return
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(target: Path) -> None:
    """Delete temporary folders of builds that crashed (safe: we hold the build lock)."""
    for pattern in (f".{target.name}.building-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            logger.info("removing leftover %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A temporary sibling of ``target`` to build in, renamed to ``target`` when the block
    ends without error and deleted when it raises: a half-built folder never looks usable.

    An existing (stale) target is moved aside first, as os.replace cannot swap over a
    non-empty folder. Call it holding ``build_lock(target)``.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        # mkdtemp makes the folder private (0700); a cache of a public model need not be.
        staging.chmod(0o755)
        yield staging
        if target.exists():
            aside = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, aside)
            os.replace(staging, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
