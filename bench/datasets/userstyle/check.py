"""Validate the user-style evaluation set (standard library only).

    python bench/datasets/userstyle/check.py

Checks every line of questions.jsonl: fields and values, unique ids, that each
answerable question names an existing document, and that every gold string is an
exact substring of that document's text (UTF-8, as stored). Prints counts by kind,
language, answerability and document, and exits 1 on any error.
"""

import collections
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DOCS = HERE / "documents"
KINDS = {
    "fact",
    "list",
    "number",
    "comparison",
    "definition",
    "how-to",
    "yes-no",
    "followup",
    "unanswerable",
}
LANGS = {"zh", "en"}
REQUIRED = {"id", "text", "lang", "kind", "document", "gold", "answerable"}
OPTIONAL = {"notes", "history"}


def main() -> int:
    errors = []
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS.iterdir()) if p.is_file()}
    rows = []
    with open(HERE / "questions.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                errors.append(f"line {n}: empty line")
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                errors.append(f"line {n}: bad JSON: {e}")

    seen = set()
    for n, q in rows:
        where = f"line {n} ({q.get('id')})"
        missing = REQUIRED - q.keys()
        extra = q.keys() - REQUIRED - OPTIONAL
        if missing:
            errors.append(f"{where}: missing fields {sorted(missing)}")
            continue
        if extra:
            errors.append(f"{where}: unknown fields {sorted(extra)}")
        if q["id"] in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(q["id"])
        if not isinstance(q["text"], str) or not q["text"].strip():
            errors.append(f"{where}: empty text")
        if q["lang"] not in LANGS:
            errors.append(f"{where}: lang {q['lang']!r}")
        if q["kind"] not in KINDS:
            errors.append(f"{where}: kind {q['kind']!r}")
        if not isinstance(q["answerable"], bool):
            errors.append(f"{where}: answerable must be true/false")
        if not isinstance(q["gold"], list) or not all(isinstance(g, str) and g for g in q["gold"]):
            errors.append(f"{where}: gold must be a list of non-empty strings")
            continue
        if q["kind"] == "followup":
            h = q.get("history")
            if not isinstance(h, list) or not h or not all(isinstance(x, str) and x for x in h):
                errors.append(f"{where}: followup needs a non-empty history list")
        elif "history" in q:
            errors.append(f"{where}: history is only for kind followup")
        if q["kind"] == "unanswerable" and (
            q["answerable"] or q["document"] is not None or q["gold"]
        ):
            errors.append(f"{where}: unanswerable needs answerable=false, document=null, gold=[]")
        if q["answerable"]:
            if q["document"] not in texts:
                errors.append(f"{where}: document {q['document']!r} not in documents/")
            elif not q["gold"]:
                errors.append(f"{where}: answerable question without gold")
        elif q["document"] is not None and q["document"] not in texts:
            errors.append(f"{where}: document {q['document']!r} not in documents/")
        if not q["answerable"] and q["kind"] != "unanswerable" and not q.get("notes"):
            errors.append(f"{where}: not-answerable {q['kind']} needs notes on what is missing")
        doc = texts.get(q["document"] or "", "")
        for g in q["gold"]:
            if g not in doc:
                errors.append(f"{where}: gold not in {q['document']}: {g[:40]!r}")

    qs = [q for _, q in rows]
    print(f"documents: {len(texts)}")
    for name, t in texts.items():
        used = sum(1 for q in qs if q.get("document") == name)
        print(f"  {name:42s} {len(t):6d} chars  {used:3d} questions")
    print(f"questions: {len(qs)}")
    for field in ("kind", "lang", "answerable"):
        c = collections.Counter(q.get(field) for q in qs)
        print(f"  by {field}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items(), key=str)))
    gold_lines = sum(len(q.get("gold", [])) for q in qs)
    print(f"  gold strings: {gold_lines}")
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
