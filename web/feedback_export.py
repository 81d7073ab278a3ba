"""The 👍/👎 log (web/feedback_log.py) as evaluation data, in the layout of bench/datasets
without a corpus:

    queries.jsonl   {"id", "text", "asked", "rating", "comment", "found", "answerable",
                     "answer", "index", "answered_at", "rated_at", "cited": [...]}
    qrels.tsv       query_id <TAB> passage_id <TAB> 1 (👍) or 0 (👎), for each passage the
                    answer quoted; passage_id is "doc_id[start:end]" (a Python slice); a
                    cell a spreadsheet would run as a formula starts with ' (see _cell)
    README.md       what the files hold and how they were made

`GET /api/feedback/export` sends it as a zip; `python -m web.feedback export` writes it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

from web.feedback_log import now

# A tab or line break in a document's name would break a row of qrels.tsv.
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# A spreadsheet opening qrels.tsv runs a cell that starts with one of these as a formula
# (OWASP, "CSV Injection"). Tab and carriage return cannot start a cell escaped as above,
# but are listed as OWASP lists them, so the rule holds for any cell.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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

Exported {now()} from feedback.jsonl: {queries} rated answers {which}and {qrels} judged
passages. Made by web/feedback_export.py; the layout follows bench/datasets, without a corpus.

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
