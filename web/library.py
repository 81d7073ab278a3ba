"""One knowledge base as the web app serves it: its corpus folder and live index, with
rebuilds in the background (web/libraries.py holds one Library per base).

Questions are always answered by a loaded `Retriever`. A rebuild runs on one worker
thread: `Retriever.build` writes the new index beside the old folder and swaps it in
whole, then the new index is loaded and replaces the served one under a lock. Until that
moment questions go on being answered from the old index, and a failed build leaves it
in place. A new base has no index until its first documents are built into one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from retriever import IndexLoadError, Retriever
from retriever.bases import DEFAULT, Base
from retriever.config import DEFAULT_QUOTA, Quota
from retriever.trash import (
    DocumentError,
    NoSuchDocument,
    NothingReadableLeft,
    TrashEntry,
    WriteFailed,
    document_names,
    list_trash,
    put_file,
    remove_file,
    restore,
)
from web.builds import LOADING, READING, BuildState, Opener, build_index, embedded_state
from web.outcomes import DocumentRow, Outcome, document_rows, write_failed
from web.uploads import UploadError, check_content, check_name, check_quota

logger = logging.getLogger(__name__)

# Why a change is refused after the base was renamed or deleted under it (see close()).
CLOSED = "知识库已被改名或删除，请重新选择知识库"


class NotIndexed(LookupError):
    """The base has no index to answer from yet: its documents have not been built into one."""


class Library:
    """The corpus folder, the index built from it, and the Retriever serving that index."""

    def __init__(
        self,
        corpus_dir: Path,
        index_dir: Path,
        retriever: Retriever | None,
        quota: Quota = DEFAULT_QUOTA,
        *,
        name: str = DEFAULT,
        opener: Opener | None = None,
    ) -> None:
        """`retriever` None: no index yet, and `opener` builds and opens the first one;
        without `opener`, every later index is opened as `retriever` was."""
        self.name = name  # the knowledge base's (retriever.bases)
        self.corpus_dir = corpus_dir
        self.index_dir = index_dir
        self.quota = quota
        self._retriever = retriever
        if opener is None:
            if retriever is None:
                raise ValueError("a Library without an index needs an Opener to build one")
            opener = Opener.like(retriever)
        self.opener = opener  # the model is loaded once; every later index reuses it
        self._closed = False  # renamed or deleted: see close()
        self._lock = threading.Condition()  # guards the served Retriever and build state
        # Serialises changes to the corpus folder, so that two removals cannot both pass
        # the last-document check, nor two uploads the quota.
        self._corpus_lock = threading.Lock()
        self._requested = 0  # rebuilds asked for
        self._finished = 0  # the request number the last finished build covered
        self._worker: threading.Thread | None = None
        self._state = BuildState(running=False, stage="", fraction=1.0, error=None)

    @classmethod
    def open(
        cls,
        corpus_dir: Path,
        index_dir: Path,
        *,
        cache_dir: Path,
        quota: Quota = DEFAULT_QUOTA,
        opener: Opener | None = None,
    ) -> Library:
        """Load the index (and the model its manifest names, once, unless `opener` brings
        one); rebuild in the background if it is stale."""
        if opener is None:
            retriever = Retriever.load(index_dir, cache_dir=cache_dir)
        else:
            retriever = opener.open(index_dir)
        library = cls(corpus_dir, index_dir, retriever, quota, opener=opener)
        if library.retriever.is_stale(corpus_dir):
            logger.info("%s differs from the files in %s: rebuilding", index_dir, corpus_dir)
            library.rebuild()
        return library

    @classmethod
    def open_base(cls, base: Base, opener: Opener, *, quota: Quota = DEFAULT_QUOTA) -> Library:
        """Serve the base's index as `opener` opens indexes (the app's one model, reranker
        and answerer), rebuilding it in the background when it is stale, or missing or
        unusable while the base has documents."""
        # Made with the base; made again if removed by hand (the folder is ours: it has our
        # marker), so that listing and uploading work.
        base.corpus.mkdir(exist_ok=True)
        try:
            retriever = opener.open(base.index)
        except IndexLoadError as error:
            # A new base (no index yet), or an index this model cannot serve: rebuilt below.
            logger.info("%s: %s", base.name, error)
            retriever = None
        library = cls(base.corpus, base.index, retriever, quota, name=base.name, opener=opener)
        if (retriever is None and document_names(base.corpus)) or (
            retriever is not None and retriever.is_stale(base.corpus)
        ):
            logger.info("rebuilding %s from %s", base.index, base.corpus)
            library.rebuild()
        return library

    @property
    def retriever(self) -> Retriever:
        """The Retriever serving questions now; replaced whole when a rebuild finishes.

        Raises NotIndexed for a base that has no index yet."""
        with self._lock:
            if self._retriever is None:
                raise NotIndexed(self.name)
            return self._retriever

    @property
    def indexed(self) -> bool:
        """Whether the base has an index to answer from."""
        with self._lock:
            return self._retriever is not None

    @property
    def state(self) -> BuildState:
        """Whether a rebuild runs and how far it is, or why the last one failed."""
        with self._lock:
            return self._state

    # ------------------------------------------------------------------ documents

    def documents(self) -> list[DocumentRow]:
        """The corpus folder's files, each with whether the served index holds it."""
        with self._lock:
            manifest = self._retriever.manifest if self._retriever else {}
            building = self._state.running
        return document_rows(self.corpus_dir, manifest, building=building)

    def add(self, uploads: list[tuple[Path, str]]) -> list[Outcome]:
        """Check each (file, name) and copy the good ones into the corpus folder.

        A refused file is reported and nothing is written for it. A file of the same name
        already in the corpus goes to the trash (retriever/trash.py), never overwritten.
        Does not rebuild: call rebuild() after.
        """
        outcomes = []
        for path, name in uploads:
            try:
                check_name(name)
                with self._corpus_lock:
                    if self._closed:
                        raise UploadError(CLOSED)
                    check_quota(self.quota, self.documents(), name, path.stat().st_size)
                data = check_content(path, name)
            except UploadError as error:
                outcomes.append(Outcome(name, False, str(error)))
                continue
            except OSError as error:
                outcomes.append(Outcome(name, False, f"{name} 无法读取：{error.strerror}"))
                continue
            with self._corpus_lock:
                try:  # checked again: another upload may have filled the corpus meanwhile
                    if self._closed:  # or the base was renamed or deleted
                        raise UploadError(CLOSED)
                    check_quota(self.quota, self.documents(), name, len(data))
                except UploadError as error:
                    outcomes.append(Outcome(name, False, str(error)))
                    continue
                try:
                    replaced = put_file(self.corpus_dir, name, data)
                except WriteFailed as error:
                    outcomes.append(write_failed(name, error))
                    continue
                except DocumentError as error:  # a symbolic link of that name, put by hand
                    outcomes.append(Outcome(name, False, f"{name} 未加入：{error}"))
                    continue
            if replaced:
                message = f"{name} 已替换同名文件，原来的文件已移到回收站"
                outcomes.append(Outcome(name, True, message, replaced.id))
            else:
                outcomes.append(Outcome(name, True, f"{name} 已加入文档库"))
        return outcomes

    def remove(self, name: str) -> Outcome:
        """Move one file of the corpus folder to the trash. Does not rebuild.

        Refused, with nothing touched, when no other file of the corpus is in the served
        index: the rebuild would have nothing to index. (Without an index yet, every other
        document counts: the build will say which it cannot read.)
        """
        with self._lock:
            served = self._retriever
        if served is None:
            readable = document_names(self.corpus_dir)
        else:
            readable = [source.path for source in served.manifest.sources]
        with self._corpus_lock:
            if self._closed:
                return Outcome(name, False, CLOSED)
            try:  # only a listed name is accepted, so none can point outside the folder
                entry = remove_file(self.corpus_dir, name, readable)
            except NoSuchDocument:
                return Outcome(name, False, f"文档库里没有 {name}")
            except NothingReadableLeft:
                return Outcome(
                    name,
                    False,
                    f"{name} 是最后一篇可读的文档：索引不能是空的，请先上传别的文档",
                )
            except WriteFailed as error:
                return write_failed(name, error)
            except DocumentError as error:  # a trash folder made a symbolic link by hand
                return Outcome(name, False, f"{name} 无法删除：{error}")
        return Outcome(name, True, f"{name} 已从文档库删除，移到了回收站", entry.id)

    def trash(self) -> list[TrashEntry]:
        """The files in the trash, the most recently removed first."""
        return list_trash(self.corpus_dir)

    def restore(self, entry_id: str) -> Outcome:
        """Put a file of the trash back in the corpus; a current file of the same name goes
        to the trash in its place. Does not rebuild."""
        with self._corpus_lock:
            if self._closed:
                return Outcome(entry_id, False, CLOSED)
            entry = next((item for item in self.trash() if item.id == entry_id), None)
            if entry is None:
                return Outcome(entry_id, False, "回收站里没有这一项")
            try:
                check_quota(self.quota, self.documents(), entry.name, entry.size)
                _, displaced = restore(self.corpus_dir, entry.id)
            except UploadError as error:
                return Outcome(entry.name, False, str(error))
            except WriteFailed as error:
                return write_failed(entry.name, error)
            except DocumentError as error:  # a trash entry edited by hand
                return Outcome(entry.name, False, f"{entry.name} 无法恢复：{error}")
        if displaced:
            message = f"{entry.name} 已从回收站恢复，原来的同名文件已移到回收站"
            return Outcome(entry.name, True, message, displaced.id)
        return Outcome(entry.name, True, f"{entry.name} 已从回收站恢复")

    # ------------------------------------------------------------------ rebuilding

    def rebuild(self) -> int:
        """Ask for the index to be rebuilt from the corpus folder; returns a ticket for wait().

        Requests made while a build runs are served by one more build after it, which reads
        the folder as it is by then. After close() nothing is built: the ticket is one that
        has already finished.
        """
        with self._lock:
            if self._closed:
                return self._finished
            self._requested += 1
            if self._worker is None:
                self._state = READING
                self._worker = threading.Thread(target=self._work, name="rebuild", daemon=True)
                self._worker.start()
            return self._requested

    def wait(
        self,
        ticket: int,
        on_progress: Callable[[BuildState], None] | None = None,
        *,
        interval: float = 0.5,
    ) -> BuildState:
        """Block until a build that started after `ticket` was issued has finished.

        `on_progress` is called every `interval` seconds meanwhile, outside the lock.
        """
        while True:
            with self._lock:
                if self._finished >= ticket:
                    return self._state
                self._lock.wait(interval)
                state = self._state
            if on_progress is not None:
                on_progress(state)

    def close(self) -> None:
        """Stop changing this base's folders, before they are renamed or moved to the trash:
        refuse further changes and rebuilds, and wait for the builds asked for until now."""
        with self._corpus_lock, self._lock:  # no change is under way, and none will start
            self._closed = True
            ticket = self._requested
        self.wait(ticket)

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._finished >= self._requested:
                    self._worker = None
                    return
                target = self._requested
                self._state = READING
            error = None
            try:
                self._build_and_swap()
            except Exception as failure:  # a failed build must never take the served index
                logger.exception("rebuilding %s failed", self.index_dir)
                error = str(failure) or type(failure).__name__
            with self._lock:
                self._finished = target
                self._state = BuildState(False, "", 1.0, error)
                self._lock.notify_all()

    def _build_and_swap(self) -> None:
        fresh = build_index(
            self.corpus_dir,
            self.index_dir,
            self.opener,
            embedded=self._embedded,
            loading=lambda: self._set_state(LOADING),
        )
        with self._lock:
            self._retriever = fresh

    def _embedded(self, done: int, total: int) -> None:
        self._set_state(embedded_state(done, total))

    def _set_state(self, state: BuildState) -> None:
        with self._lock:
            self._state = state
