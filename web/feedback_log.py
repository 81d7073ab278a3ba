"""The 👍/👎 log: an append-only JSON-lines file, one rating a line, `<folder>/feedback.jsonl`:

    {"id", "rated_at", "rating": "good" | "bad", "comment", "user", "answer_id",
     "answered_at", "index", "question", "asked", "answer", "found", "confidence",
     "citations": [{"number", "doc_id", "source", "title", "heading", "start", "end",
                    "answer_sentences": [{"start", "end", "text"}]}]}

Offsets are the engine's: 0-based, end-exclusive, into the document's extracted text. A
later line for the same answer (a comment added, a 👍 changed to 👎) supersedes the earlier
ones in the export (web/feedback_export.py); the file itself is never rewritten.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_NAME = "feedback.jsonl"
# A line holds a question (≤ 1000 characters), an answer, a few dozen citations and a
# comment: far below this. A larger one is refused rather than written.
MAX_ENTRY_BYTES = 64 * 1024
# Errors of a write that say the disk, the quota or the file's size limit is reached.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

logger = logging.getLogger(__name__)


class FeedbackError(ValueError):
    """Feedback that cannot be stored; `status` is the HTTP status, the message is Chinese."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class FeedbackLog:
    """`<folder>/feedback.jsonl`: one rating a line, only ever appended to."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.path = folder / LOG_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        """Add `entry` as the last line, on disk when this returns; else FeedbackError, with
        nothing of the entry left in the log: 413 for an entry too large, 507 for a full log
        or disk, 500 when writing failed otherwise. No OSError escapes: a caller that got
        no error may say the rating is stored."""
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        if len(line) > MAX_ENTRY_BYTES:
            raise FeedbackError(413, f"这条评价超过了 {MAX_ENTRY_BYTES // 1024} KB 的上限")
        with self._lock:
            try:
                self._write(line)
            except OSError as error:
                logger.error("could not append a rating to %s: %s", self.path, error)
                if error.errno in _NO_SPACE:
                    raise FeedbackError(
                        507, "服务器的磁盘空间不足，这条评价没有记录下来：请告诉管理员"
                    ) from None
                raise FeedbackError(
                    500, "写入评价记录时出错，这条评价没有记录下来：请稍后再试，或告诉管理员"
                ) from None

    def _write(self, line: bytes) -> None:
        """Append `line` whole, or raise OSError with the file as it was. Under the lock:
        only this process writes the log, so its size is read and restored safely."""
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(descriptor).st_size
            # A crash mid-write leaves a torn last line, without its line break: end it
            # first, so that it stays one unreadable line (skipped on reading) instead of
            # swallowing this one.
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = b"\n" + line
            if size + len(line) > self.max_bytes:
                raise FeedbackError(
                    507, "评价记录已经存满，暂时不能再记录：请管理员导出并清理 feedback 文件夹"
                )
            try:
                # One write of the whole line, in append mode. A regular file takes fewer
                # bytes only when the disk, the quota or the size limit is reached.
                if os.write(descriptor, line) != len(line):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(descriptor)
            except OSError:
                # The rating is refused, so no part of it may stay: a partial line would
                # also glue the next one onto it.
                os.ftruncate(descriptor, size)
                raise
        finally:
            os.close(descriptor)

    def entries(self) -> list[dict[str, Any]]:
        """Every readable entry, oldest first."""
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                return list(read_entries(handle))
        except FileNotFoundError:
            return []


def read_entries(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """The readable entries of the log's `lines`, oldest first."""
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn line, from a crash mid-write
        if isinstance(entry, dict) and isinstance(entry.get("answer_id"), str):
            yield entry


def now() -> str:
    """The time an answer or a rating is recorded, as the log writes it."""
    return datetime.now(UTC).isoformat(timespec="seconds")
