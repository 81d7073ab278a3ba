"""👍 and 👎 on answers: a rating names an answer the app gave, and is appended to the log
(web/feedback_log.py), which web/feedback_export.py turns into evaluation data.

Every answer the app gives (page or API) is remembered for a while under a random id
(`AnswerLog`); a rating names that id, never the answer's text, so a client can rate only
answers the app really gave, and the log holds the question, the answer and the cited
passages exactly as they were.

    python -m web.feedback export feedback/ exported/   # the export, from the command line
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retriever import Answer
from web.access import Identity
from web.feedback_export import export
from web.feedback_log import LOG_NAME, FeedbackError, FeedbackLog, now, read_entries
from web.libraries import NotAllowed, check_allowed
from web.limits import FeedbackLimit
from web.questions import is_text

RATINGS = ("good", "bad")
MAX_COMMENT_CHARS = 1000
# Answers remembered for rating, the oldest forgotten first: a few KB each.
REMEMBERED_ANSWERS = 5000
_ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)


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
            answered_at=now(),
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
            "rated_at": now(),
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
        entries = list(read_entries(handle))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in export(entries, index=args.index).items():
        (args.out / name).write_text(content, encoding="utf-8")
    print(f"{len(entries)} entries → {args.out}/queries.jsonl, qrels.tsv, README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
