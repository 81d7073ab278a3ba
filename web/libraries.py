"""The knowledge bases the web app serves: one Library per base, opened when first asked for.

The default base's Library is opened at start-up (app.py), the others on their first request:
their index is loaded with the app's one model, and rebuilt in the background if it is stale
(web/library.py). Each Library has its own lock, quota and rebuild worker, so uploads into
one base never wait for another's rebuild, and each base may hold as much as the quota says.

Creating, renaming, deleting and restoring bases (retriever.bases) run one at a time. A
rename or deletion first closes the base's Library (its running rebuild finishes, and no
change starts after), then moves the folder, then forgets the Library: the next request
opens the base afresh under its new name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retriever.bases import (
    DEFAULT,
    Base,
    BaseError,
    Bases,
    BaseTrashEntry,
)
from retriever.config import MAX_BASES
from web.access import Identity
from web.library import Library


class TooManyBases(BaseError):
    """Creating or restoring one more base would pass the limit."""


class BaseBusy(BaseError):
    """The base is being renamed or deleted right now."""


class NotAllowed(BaseError):
    """The access file does not let this user or token use the base (web.access)."""


def check_allowed(identity: Identity, name: str) -> None:
    """Raise NotAllowed unless `identity` may use the base named `name`."""
    if identity.role_in(name) is None:
        raise NotAllowed(f"{identity.name!r} may not use the knowledge base {name!r}")


class Libraries:
    """Every knowledge base: the default Library, and the bases in `root`, each opened lazily."""

    def __init__(self, default: Library, root: Path, *, max_bases: int = MAX_BASES) -> None:
        self.default = default
        self.bases = Bases(root, default_corpus=default.corpus_dir, default_index=default.index_dir)
        self.max_bases = max_bases
        self._open: dict[str, Library] = {}  # the bases opened so far, but the default
        self._closing: set[str] = set()  # bases being renamed or deleted: not to be opened
        self._lock = threading.Lock()  # guards _open and _closing
        self._changing = threading.Lock()  # one create, rename, delete or restore at a time

    def get(self, name: str) -> Library:
        """The Library of base `name`, opened if it is not yet. Raises BadBaseName,
        NoSuchBase or NotABase (retriever.bases), or BaseBusy."""
        if name == DEFAULT:  # never closed, so never waits for another base to open
            return self.default
        with self._lock:
            if name in self._closing:
                raise BaseBusy(f"the knowledge base {name!r} is being renamed or deleted")
            library = self._open.get(name)
            if library is None:
                # Under the lock, so that two first requests open the base once, and a rename
                # never moves a base while it opens. Opening reads the index files only (the
                # model is loaded already), so requests to other bases wait briefly, once.
                library = Library.open_base(
                    self.bases.get(name), self.default.opener, quota=self.default.quota
                )
                self._open[name] = library
            return library

    def list(self) -> list[Base]:
        """Every base, the default first, then by name."""
        return self.bases.list()

    def create(self, name: str) -> Base:
        with self._changing:
            self._check_room()
            return self.bases.create(name)

    def rename(self, name: str, new_name: str) -> Base:
        with self._changing:
            if name == DEFAULT:
                return self.bases.rename(name, new_name)  # refused, saying why
            self.bases.get(name)  # checked before the base's Library is closed
            if new_name != name:
                self.bases.check_free(new_name, renaming=name)
            with self._closed(name):
                return self.bases.rename(name, new_name)

    def delete(self, name: str) -> BaseTrashEntry:
        with self._changing:
            if name == DEFAULT:
                return self.bases.delete(name)  # refused, saying why
            self.bases.get(name)  # checked before the base's Library is closed
            with self._closed(name):
                return self.bases.delete(name)

    def trash(self) -> list[BaseTrashEntry]:
        return self.bases.trash()

    def restore(self, entry_id: str, name: str | None = None) -> Base:
        with self._changing:
            self._check_room()
            return self.bases.restore(entry_id, name)

    @contextmanager
    def _closed(self, name: str) -> Iterator[None]:
        """Close and forget the base's Library, if open, and keep it from being opened again
        until the block (which moves its folder) ends."""
        with self._lock:
            self._closing.add(name)
            library = self._open.pop(name, None)
        try:
            if library is not None:
                library.close()
            yield
        finally:
            with self._lock:
                self._closing.discard(name)

    def _check_room(self) -> None:
        others = len(self.bases.list()) - 1
        if others >= self.max_bases:
            raise TooManyBases(
                f"there are {others} knowledge bases besides the default, the most allowed"
            )
