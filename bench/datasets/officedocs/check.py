"""Validate an office-documents evaluation set (standard library, python-docx and pypdf only).

    python bench/datasets/officedocs/check.py                      # the held-out set
    python bench/datasets/officedocs/check.py officedocs_validation  # the validation set

Checks every line of questions.jsonl: fields and values, unique ids, the kinds' rules (an
unanswerable or off-topic question has no document and no gold; a list question needs all
of its alternatives), and that every gold fragment occurs in its document's text as a
NEUTRAL reader gets it: python-docx's paragraphs and table cells for .docx, pypdf's page
text for .pdf, the file as it is for .md and .txt, the text between the tags for .html.
Fragments are compared by `plain`: whitespace removed, NFKC (full-width punctuation and
digits to half-width; the Kangxi radicals a Chromium PDF puts for some ideographs back to
them), letters case-folded. Also checks the set's minimum counts and file sizes, prints
counts per kind, language and document, and exits 1 on any error.

`plain` and `read_text` are also what `bench.officedocs` matches gold with.
"""

from __future__ import annotations

import collections
import html.parser
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = {
    "row",  # one table row
    "item",  # one list item
    "bracket",  # a value inside a range or bracket row (12 years -> the 10-20 years row)
    "sentence",  # a policy sentence
    "list",  # every item or step of a list (need: all)
    "comparison",
    "yesno",
    "followup",  # read in the context of `history`
    "unanswerable",  # on the documents' subjects, but they do not hold the answer
    "offtopic",
}
NOT_ANSWERABLE = {"unanswerable", "offtopic"}
LANGS = {"zh", "en"}
REQUIRED = {"id", "text", "lang", "kind", "document", "gold", "answerable"}
OPTIONAL = {"notes", "history", "need"}
MAX_FRAGMENT = 30
MAX_FILE_BYTES = 200_000
# What each set must hold: question counts by kind group and language, document types.
MINIMUMS = {
    "officedocs": {
        "questions": 150,
        "row+item": 40,
        "bracket": 15,
        "unanswerable": 30,
        "offtopic": 5,
        "en": 10,
        "documents": 8,
        "types": {".docx": 2, ".pdf": 2, ".md": 1, ".html": 1, ".txt": 1},
    },
    "officedocs_validation": {
        "questions": 60,
        "row+item": 15,
        "bracket": 6,
        "unanswerable": 12,
        "en": 4,
        "documents": 4,
        "types": {".docx": 1, ".pdf": 1, ".md": 1, ".html": 1},
    },
}

# Chromium prints some ideographs with the glyph of a radical and names them by it (⻚ for 页):
# NFKC folds the Kangxi radicals (U+2F00-) but not these CJK Radicals Supplement ones, nor ⼾
# as Simplified Chinese draws it. The ones Noto Sans CJK SC shares with common ideographs:
RADICALS = str.maketrans(
    {
        "⻅": "见",
        "⻆": "角",
        "⻈": "讠",
        "⻉": "贝",
        "⻋": "车",
        "⻓": "长",
        "⻔": "门",
        "⻘": "青",
        "⻙": "韦",
        "⻚": "页",
        "⻛": "风",
        "⻜": "飞",
        "⻝": "食",
        "⻢": "马",
        "⻣": "骨",
        "⻤": "鬼",
        "⻥": "鱼",
        "⻦": "鸟",
        "⻧": "卤",
        "⻨": "麦",
        "⻩": "黄",
        "⻬": "齐",
        "⻮": "齿",
        "⻰": "龙",
        "⼾": "户",
    }
)
_SPACE = re.compile(r"\s+")


def plain(text: str) -> str:
    """Text as gold is compared: no whitespace, NFKC, radicals folded, case-folded."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text.translate(RADICALS))).casefold()


class _HtmlText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def read_text(path: Path) -> str:
    """A document's text as a neutral reader gets it (see the module docstring)."""
    suffix = path.suffix.lower()
    if suffix == ".docx":
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(str(path))
        lines = []
        for block in document.element.body.iterchildren():
            if block.tag.endswith("}p"):
                lines.append(Paragraph(block, document).text)
            elif block.tag.endswith("}tbl"):
                for row in Table(block, document).rows:
                    lines.extend(cell.text for cell in row.cells)
        return "\n".join(lines)
    if suffix == ".pdf":
        import pypdf

        return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)
    raw = path.read_text(encoding="utf-8")
    if suffix in (".html", ".htm"):
        parser = _HtmlText()
        parser.feed(raw)
        return "\n".join(parser.parts)
    return raw


def load(folder: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, errors = [], []
    with (folder / "questions.jsonl").open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                errors.append(f"line {n}: empty line")
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as error:
                errors.append(f"line {n}: bad JSON: {error}")
    return rows, errors


def check_question(q: dict, where: str, texts: dict[str, str]) -> list[str]:
    errors = []
    missing = REQUIRED - q.keys()
    if missing:
        return [f"{where}: missing fields {sorted(missing)}"]
    if extra := q.keys() - REQUIRED - OPTIONAL:
        errors.append(f"{where}: unknown fields {sorted(extra)}")
    if not isinstance(q["text"], str) or not q["text"].strip():
        errors.append(f"{where}: empty text")
    if q["lang"] not in LANGS:
        errors.append(f"{where}: lang {q['lang']!r}")
    if q["kind"] not in KINDS:
        errors.append(f"{where}: kind {q['kind']!r}")
    if not isinstance(q["answerable"], bool):
        errors.append(f"{where}: answerable must be true or false")
    need = q.get("need", "any")
    if need not in ("any", "all"):
        errors.append(f"{where}: need must be any or all")
    gold = q["gold"]
    if not isinstance(gold, list) or not all(
        isinstance(alt, list) and alt and all(isinstance(f, str) and f.strip() for f in alt)
        for alt in gold
    ):
        return [*errors, f"{where}: gold must be a list of non-empty lists of fragments"]
    if q["kind"] == "followup":
        history = q.get("history")
        if (
            not isinstance(history, list)
            or not history
            or not all(isinstance(h, str) and h for h in history)
        ):
            errors.append(f"{where}: followup needs a non-empty history list")
    elif "history" in q:
        errors.append(f"{where}: history is only for kind followup")
    if q["kind"] in NOT_ANSWERABLE:
        if q["answerable"] or q["document"] is not None or gold:
            errors.append(f"{where}: {q['kind']} needs answerable=false, document=null, gold=[]")
        if not q.get("notes") and q["kind"] == "unanswerable":
            errors.append(f"{where}: unanswerable needs notes on what is missing")
        return errors
    if not q["answerable"]:
        errors.append(f"{where}: only unanswerable and offtopic questions are not answerable")
    if q["document"] not in texts:
        return [*errors, f"{where}: document {q['document']!r} not in documents/"]
    if not gold:
        errors.append(f"{where}: answerable question without gold")
    if q["kind"] == "list" and (need != "all" or len(gold) < 2):
        errors.append(f"{where}: a list question needs need=all and 2+ alternatives")
    text = plain(texts[q["document"]])
    for alternative in gold:
        for fragment in alternative:
            if len(fragment) > MAX_FRAGMENT:
                errors.append(f"{where}: fragment over {MAX_FRAGMENT} characters: {fragment!r}")
            if plain(fragment) not in text:
                errors.append(f"{where}: not in {q['document']}: {fragment!r}")
    return errors


def main(name: str = "officedocs") -> int:
    folder = HERE.parent / name
    documents = folder / "documents"
    paths = sorted(p for p in documents.iterdir() if p.is_file() and not p.name.startswith("."))
    texts = {p.name: read_text(p) for p in paths}
    rows, errors = load(folder)
    seen: set[str] = set()
    for n, q in rows:
        where = f"line {n} ({q.get('id')})"
        if q.get("id") in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(q.get("id"))
        errors.extend(check_question(q, where, texts))
    for path in paths:
        if path.stat().st_size > MAX_FILE_BYTES:
            errors.append(f"{path.name}: {path.stat().st_size} bytes, over {MAX_FILE_BYTES}")

    questions = [q for _, q in rows]
    kinds = collections.Counter(q.get("kind") for q in questions)
    langs = collections.Counter(q.get("lang") for q in questions)
    types = collections.Counter(p.suffix.lower() for p in paths)
    minimum = MINIMUMS.get(name, {})
    have = {
        "questions": len(questions),
        "row+item": kinds["row"] + kinds["item"],
        "bracket": kinds["bracket"],
        "unanswerable": kinds["unanswerable"],
        "offtopic": kinds["offtopic"],
        "en": langs["en"],
        "documents": len(paths),
    }
    for key, least in minimum.items():
        if key == "types":
            errors.extend(
                f"{suffix} documents: {types[suffix]}, need {count}"
                for suffix, count in least.items()
                if types[suffix] < count
            )
        elif have[key] < least:
            errors.append(f"{key}: {have[key]}, need at least {least}")

    print(f"set: {name}")
    print(f"documents: {len(paths)}")
    for path in paths:
        used = sum(1 for q in questions if q.get("document") == path.name)
        print(
            f"  {path.name:28s} {path.stat().st_size:7d} bytes {len(texts[path.name]):6d} chars"
            f" {used:3d} questions"
        )
    print(f"questions: {len(questions)}")
    print("  by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print("  by lang: " + ", ".join(f"{k}={v}" for k, v in sorted(langs.items())))
    by_both = collections.Counter((q.get("kind"), q.get("lang")) for q in questions)
    english = ", ".join(f"{k}={v}" for (k, lang), v in sorted(by_both.items()) if lang == "en")
    print(f"  English by kind: {english}")
    answerable = sum(1 for q in questions if q.get("answerable"))
    print(f"  answerable={answerable}, not answerable={len(questions) - answerable}")
    print(f"  gold alternatives: {sum(len(q.get('gold', [])) for q in questions)}")
    for error in errors:
        print("ERROR", error)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
