"""👍 and 👎 on answers: kept in an append-only JSON-lines file, exported as evaluation data.

Every answer the app gives (page or API) is remembered for a while under a random id
(`AnswerLog`); a rating names that id, never the answer's text, so a client can rate only
answers the app really gave, and the log holds the question, the answer and the cited
passages exactly as they were. Each rating is one line of `<folder>/feedback.jsonl`:

    {"id", "rated_at", "rating": "good" | "bad", "comment", "user", "answer_id",
     "answered_at", "index", "question", "asked", "answer", "found", "confidence",
     "citations": [{"number", "doc_id", "source", "title", "heading", "start", "end",
                    "answer_sentences": [{"start", "end", "text"}]}]}

Offsets are the engine's: 0-based, end-exclusive, into the document's extracted text. A
later line for the same answer (a comment added, a 👍 changed to 👎) supersedes the earlier
ones in the export; the file itself is never rewritten.

`export` turns the log into the layout of bench/datasets, without a corpus:

    queries.jsonl   {"id", "text", "asked", "rating", "comment", "found", "answerable",
                     "answer", "index", "answered_at", "rated_at", "cited": [...]}
    qrels.tsv       query_id <TAB> passage_id <TAB> 1 (👍) or 0 (👎), for each passage the
                    answer quoted; passage_id is "doc_id[start:end]" (a Python slice); a
                    cell a spreadsheet would run as a formula starts with ' (see _cell)
    README.md       what the files hold and how they were made

    python -m web.feedback export feedback/ exported/   # the same, from the command line
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import logging
import os
import re
import secrets
import sys
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retriever import Answer
from web.access import Identity
from web.libraries import NotAllowed, check_allowed
from web.limits import FeedbackLimit
from web.questions import is_text

LOG_NAME = "feedback.jsonl"
RATINGS = ("good", "bad")
MAX_COMMENT_CHARS = 1000
# A line holds a question (≤ 1000 characters), an answer, a few dozen citations and a
# comment: far below this. A larger one is refused rather than written.
MAX_ENTRY_BYTES = 64 * 1024
# Answers remembered for rating, the oldest forgotten first: a few KB each.
REMEMBERED_ANSWERS = 5000
_ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
# A tab or line break in a document's name would break a row of qrels.tsv.
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# A spreadsheet opening qrels.tsv runs a cell that starts with one of these as a formula
# (OWASP, "CSV Injection"). Tab and carriage return cannot start a cell escaped as above,
# but are listed as OWASP lists them, so the rule holds for any cell.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Errors of a write that say the disk, the quota or the file's size limit is reached.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

logger = logging.getLogger(__name__)


class FeedbackError(ValueError):
    """Feedback that cannot be stored; `status` is the HTTP status, the message is Chinese."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answered:
    """An answer as given: what a rating of it records."""

    id: str
    answered_at: str
    index: str  # the knowledge base that answered: its name (retriever.bases)
    question: str  # as searched, after completing a follow-up
    asked: str | None  # as typed, when it differs
    answer: str
    found: bool
    confidence: float
    citations: tuple[dict[str, Any], ...]


class AnswerLog:
    """The latest answers given, by id, for ratings to refer to."""

    def __init__(self, size: int = REMEMBERED_ANSWERS) -> None:
        self.size = size
        self._answers: OrderedDict[str, Answered] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, answer: Answer, *, index: str, asked: str | None = None) -> str:
        """Keep `answer` and return the id a rating names it by."""
        record = Answered(
            id=secrets.token_urlsafe(16),
            answered_at=_now(),
            index=index,
            question=answer.question,
            asked=asked,
            answer=answer.answer,
            found=answer.found,
            confidence=answer.confidence,
            citations=tuple(
                {
                    "number": citation.number,
                    "doc_id": citation.hit.doc_id,
                    "source": citation.hit.source,
                    "title": citation.hit.title,
                    "heading": citation.hit.heading,
                    "start": citation.hit.start,
                    "end": citation.hit.end,
                    "answer_sentences": [
                        {"start": quote.start, "end": quote.end, "text": quote.text}
                        for quote in citation.quotes
                    ],
                }
                for citation in answer.citations
            ),
        )
        with self._lock:
            self._answers[record.id] = record
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return record.id

    def get(self, answer_id: str) -> Answered | None:
        with self._lock:
            return self._answers.get(answer_id)


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
                return list(_read_entries(handle))
        except FileNotFoundError:
            return []


def _read_entries(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn line, from a crash mid-write
        if isinstance(entry, dict) and isinstance(entry.get("answer_id"), str):
            yield entry


class Feedback:
    """Ratings from the page and the API: checked, limited per client, appended to the log."""

    def __init__(self, answers: AnswerLog, log: FeedbackLog, limit: FeedbackLimit) -> None:
        self.answers = answers
        self.log = log
        self.limit = limit

    def rate(
        self,
        answer_id: object,
        rating: object,
        comment: object,
        *,
        user: Identity,
        client: str,
    ) -> dict[str, Any]:
        """Store `user`'s rating of an answer the app gave; the entry written. FeedbackError
        if not, 403 when `user` may not use the knowledge base that gave the answer.

        The page and the API pass the caller's Identity, so the rule is checked here, once
        for both.
        """
        if rating not in RATINGS:
            raise FeedbackError(422, "评价只能是 good（👍）或 bad（👎）")
        if not isinstance(comment, str) or not is_text(comment):
            raise FeedbackError(422, "说明里有无效的字符（不是有效的 Unicode 文本）")
        if len(comment) > MAX_COMMENT_CHARS:
            raise FeedbackError(
                422, f"说明有 {len(comment)} 个字，超过了 {MAX_COMMENT_CHARS} 字的上限"
            )
        answered = (
            self.answers.get(answer_id)
            if isinstance(answer_id, str) and _ANSWER_ID.fullmatch(answer_id)
            else None
        )
        if answered is None:
            raise FeedbackError(
                404, "找不到这个回答：服务重启过，或者回答太久以前了。请重新提问后再评价"
            )
        try:
            check_allowed(user, answered.index)
        except NotAllowed:
            # The base is not named: the rater has no business knowing it.
            raise FeedbackError(403, "你没有使用这个回答所在知识库的权限，不能评价它") from None
        wait = self.limit.wait(client)
        if wait:
            raise FeedbackError(429, self.limit.message(wait), retry_after=wait)
        entry = {
            "id": secrets.token_urlsafe(12),
            "rated_at": _now(),
            "rating": rating,
            "comment": comment.strip(),
            "user": user.name,
            "answer_id": answered.id,
            "answered_at": answered.answered_at,
            "index": answered.index,
            "question": answered.question,
            "asked": answered.asked,
            "answer": answered.answer,
            "found": answered.found,
            "confidence": answered.confidence,
            "citations": list(answered.citations),
        }
        self.log.append(entry)
        return entry


# ------------------------------------------------------------------ export


def export(entries: Sequence[dict[str, Any]], *, index: str | None = None) -> dict[str, str]:
    """The log as an evaluation set without a corpus: file name → content.

    One question per rated answer, the latest rating of it winning; `index` keeps only the
    answers of that index.
    """
    latest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if index is None or entry.get("index") == index:
            latest.pop(entry["answer_id"], None)  # re-inserted: ordered by latest rating
            latest[entry["answer_id"]] = entry
    queries, qrels = [], []
    for entry in latest.values():
        query_id = f"fb-{entry['answer_id']}"
        good = entry.get("rating") == "good"
        cited = [
            {**_passage(citation), "answer_sentences": citation.get("answer_sentences", [])}
            for citation in entry.get("citations", [])
            if citation.get("answer_sentences")
        ]
        found = bool(entry.get("found"))
        queries.append(
            {
                "id": query_id,
                "text": entry.get("question", ""),
                "asked": entry.get("asked"),
                "rating": entry.get("rating"),
                "comment": entry.get("comment", ""),
                "found": found,
                # 👍 on an answer says the corpus answers it; 👍 on "not found" says it does
                # not; 👎 says neither for sure.
                "answerable": found if good else None,
                "answer": entry.get("answer", ""),
                "index": entry.get("index"),
                "answered_at": entry.get("answered_at"),
                "rated_at": entry.get("rated_at"),
                "cited": cited,
            }
        )
        qrels += [
            f"{_cell(query_id)}\t{_cell(item['passage'])}\t{1 if good else 0}" for item in cited
        ]
    return {
        # JSON, not cells: a spreadsheet does not run a string value of a JSON document, and
        # the questions, comments and document names are the evaluation data, so a quote
        # added to them would change it. They are written as given; the README says so.
        "queries.jsonl": "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries),
        "qrels.tsv": "".join(line + "\n" for line in qrels),
        "README.md": _readme(len(queries), len(qrels), index),
    }


def export_zip(entries: Sequence[dict[str, Any]], *, index: str | None = None) -> bytes:
    """`export` as a zip archive of one folder, for `GET /api/feedback/export`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in export(entries, index=index).items():
            archive.writestr(f"feedback/{name}", content)
    return buffer.getvalue()


def _passage(citation: dict[str, Any]) -> dict[str, Any]:
    doc_id = str(citation.get("doc_id", ""))
    start, end = citation.get("start"), citation.get("end")
    return {
        "passage": f"{doc_id.translate(_TSV_ESCAPES)}[{start}:{end}]",
        "doc_id": doc_id,
        "source": citation.get("source"),
        "heading": citation.get("heading", ""),
        "start": start,
        "end": end,
    }


def _cell(text: str) -> str:
    """`text` as a cell of qrels.tsv: after a single quote when a spreadsheet would run it as
    a formula (a document named "+1+1.txt"), which spreadsheets show as text."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _readme(queries: int, qrels: int, index: str | None) -> str:
    which = f"of the index `{index}` " if index else ""
    return f"""# Feedback from the chat page and the API

Exported {_now()} from feedback.jsonl: {queries} rated answers {which}and {qrels} judged
passages. Made by web/feedback.py; the layout follows bench/datasets, without a corpus.

- `queries.jsonl`: one rated answer a line. `text` is the question as searched (after a
  follow-up was completed; `asked` is what was typed, when it differs), `rating` is `good`
  (👍) or `bad` (👎), `comment` the rater's words, `found` whether the app found an answer,
  `answerable` true for 👍 on an answer, false for 👍 on "not found", null for 👎. `cited`
  lists the passages the answer quoted, with the quoted sentences.
- `qrels.tsv`: `query_id<TAB>passage_id<TAB>1` for each passage quoted by an answer rated
  👍, `0` for one rated 👎 (a judged, not relevant passage: `retriever.evaluation` counts
  only non-zero rows as gold).
- A passage id is `doc_id[start:end]`: the document as the index names it, and the
  passage's 0-based, end-exclusive offsets into its extracted text (a Python slice). The
  documents are not included: evaluate against the corpus the answers came from, counting a
  hit when it overlaps the judged passage.
- In `qrels.tsv`, a cell that would start with `=`, `+`, `-` or `@` (which a spreadsheet
  runs as a formula) starts with a single quote `'` before it: drop it to get the passage id
  of `queries.jsonl`. In both passage ids, a tab, line break, carriage return or backslash
  in a document's name is written `\\t`, `\\n`, `\\r` or `\\\\` (`doc_id` in `cited` is the
  name as given).
- `queries.jsonl` is JSON, its text (questions, comments, document names) exactly as
  given, even text a spreadsheet would run as a formula: read it as JSON.

The latest rating of an answer wins. Ratings are people's opinions of whole answers: read
the comments before using a 👎 as evidence about a passage.
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m web.feedback",
        description="Export the 👍/👎 log as an evaluation set (bench/datasets layout).",
        epilog="example: python -m web.feedback export feedback/ bench/datasets/feedback",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="write queries.jsonl, qrels.tsv, README.md")
    exporting.add_argument("log", type=Path, help=f"the feedback folder, or its {LOG_NAME}")
    exporting.add_argument("out", type=Path, help="folder to write (created if missing)")
    exporting.add_argument("--index", help="only answers of this knowledge base (its name)")
    args = parser.parse_args(argv)
    path = args.log / LOG_NAME if args.log.is_dir() else args.log
    if not path.is_file():
        print(f"no feedback log at {path}", file=sys.stderr)
        return 1
    with path.open(encoding="utf-8", errors="replace") as handle:
        entries = list(_read_entries(handle))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in export(entries, index=args.index).items():
        (args.out / name).write_text(content, encoding="utf-8")
    print(f"{len(entries)} entries → {args.out}/queries.jsonl, qrels.tsv, README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
