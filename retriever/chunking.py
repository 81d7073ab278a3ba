"""Structure-aware chunking of Chinese text, as pure functions over character offsets.

Scraped Q&A pages put a short heading line ("参谋职责", "办公室主任和行政主管哪个大?") above
the text that answers it. Each chunk keeps the path of headings above it ("一、报销时限 ›
（二）差旅"), so a question that matches a heading finds the answer under it rather than the
bare heading line. Chunk text is always an exact slice of the source:
`source[chunk.start:chunk.end] == chunk.text`.

A heading's level comes from the file where it says one (a Word heading style, a Markdown
`#`), else from its numbering, else it is a plain heading line: see `_rank`.

A unit the file marks (a table row, a list item: retriever.readers.MarkedUnit) is never a
heading. A table row is a chunk of its own, never packed with its neighbours, so that the row
a question asks about is found and cited by itself; its heading path ends with its table's
caption. A list item stays with the rest of its list, packed like body text: a question that
asks for the whole list finds it in one passage, and each item is still a line of its own.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from retriever.config import ChunkSettings
from retriever.readers import MarkedUnit

# Sentence ends, full and half width: this corpus uses both. Closing quotes and brackets that
# follow an end belong to the sentence they close (not ASCII quotes: they open as often as close).
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)]*|\n+")
# Inside an over-long sentence, clause breaks are the next best place to cut.
_CLAUSE_END = re.compile(r"[，、,：:]+")
_HEADING_END = re.compile(r"[。；;，,：:、]$")
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+")
# Numbered headings, in the order Chinese documents nest them: the parts, chapters, sections
# and articles of regulations, then the levels of official documents (GB/T 9704): 一、 （一）
# 1. （1）. A decimal number goes one level deeper per part: 1. › 1.1 › 1.1.1 (_DECIMAL).
_NUMERAL = "[零〇一二三四五六七八九十百千两]+"
_NUMBERINGS = (
    (re.compile(rf"第(?:{_NUMERAL}|\d+)[编篇部]"), 1),
    (re.compile(rf"第(?:{_NUMERAL}|\d+)章"), 2),
    (re.compile(rf"第(?:{_NUMERAL}|\d+)节"), 3),
    (re.compile(rf"第(?:{_NUMERAL}|\d+)条"), 4),
    (re.compile(rf"{_NUMERAL}[、.．]"), 5),
    (re.compile(rf"[(（]{_NUMERAL}[)）]"), 6),
    (re.compile(r"[(（]\d+[)）]"), 20),
    (re.compile(r"[\u2460-\u2473]"), 21),  # ① to ⑳
)
# "1." "2、" "1.2" "3.1.4" "5 范围" (standards number their clauses without a dot). A number
# of one part needs its dot or space, so that "3年以上" is not taken for one.
_DECIMAL = re.compile(r"(\d{1,3}(?:[.．]\d{1,3})*)(?!\d)([.．、]|\s)?")
_DECIMAL_RANK = 10  # + the number of parts, up to 19: below （一）, above （1）


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A passage of one document: its text is source[start:end]; heading is the line above it."""

    text: str
    start: int
    end: int
    heading: str


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end], whitespace trimmed, none empty."""
    end = len(text) if end is None else end
    spans = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.extend(_trimmed(text, cursor, match.end()))
        cursor = match.end()
    spans.extend(_trimmed(text, cursor, end))
    return spans


def _trimmed(text: str, start: int, end: int) -> list[Span]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [Span(start, end)] if start < end else []


def _lines(text: str) -> list[Span]:
    """Non-blank lines as trimmed spans."""
    spans = []
    cursor = 0
    for line in text.splitlines(keepends=True):
        spans.extend(_trimmed(text, cursor, cursor + len(line)))
        cursor += len(line)
    return spans


def is_heading(line: str, next_line: str | None, *, max_chars: int = 40) -> bool:
    """A short line without sentence punctuation, followed by a longer line of body text.

    A question line ending in ? counts: on Q&A pages the question is the heading of its answer.
    """
    if _MARKDOWN_HEADING.match(line):
        return True
    if next_line is None or len(line) > max_chars or len(next_line) <= len(line):
        return False
    body = line.rstrip("?？")
    return not (_HEADING_END.search(line) or re.search(r"[。！!；;]", body))


def _heading_text(line: str) -> str:
    return _MARKDOWN_HEADING.sub("", line).strip()


def _rank(heading: str, level: int | None) -> tuple[int, int]:
    """Where a heading sits in its document's outline: it closes every open heading of the
    same or a greater rank, and opens below the rest.

    Levels the file gives (`level`: Word's heading styles, Markdown's #) rank above any
    heading found by its look, as in Word a bold "1." line sits inside a "Heading 2" section.
    Of the others, a plain line ("参谋职责") ranks above every numbered one, and numbered ones
    rank by their numbering, so "二、" closes "一、" and whatever was under it.
    """
    if level:
        return (0, level)
    for pattern, rank in _NUMBERINGS:
        if pattern.match(heading):
            return (1, rank)
    decimal = _DECIMAL.match(heading)
    if decimal:
        parts = len(re.split(r"[.．]", decimal[1]))
        if parts > 1 or decimal[2]:
            return (1, _DECIMAL_RANK + min(parts, 9))
    return (1, 0)


def chunk_text(
    text: str,
    settings: ChunkSettings = ChunkSettings(),
    *,
    marked_headings: Iterable[tuple[int, int]] = (),
    marked_units: Iterable[MarkedUnit] = (),
) -> list[Chunk]:
    """Cut a document into chunks of whole sentences, each at most settings.max_chars long.

    `marked_headings` are the (offset, level) of lines the file marks as headings (a Word
    file's heading styles, retriever.readers): they are headings whatever their look, at
    that level (1 the top). Other lines are judged by `is_heading`. `marked_units` are the
    spans the file marks as units (table rows, list items): never headings, and each row a
    chunk of its own.
    """
    marked = dict(marked_headings)
    units = deque(sorted(marked_units))
    made: MarkedUnit | None = None
    lines = _lines(text)
    chunks: list[Chunk] = []
    heading = ""
    path: list[tuple[tuple[int, int], str]] = []  # the open headings, outermost first
    section: list[Span] = []

    def flush() -> None:
        if section:
            chunks.extend(_pack(text, section, heading, settings.max_chars))
            section.clear()

    for number, line in enumerate(lines):
        while units and units[0].end <= line.start:
            units.popleft()
        if units and units[0].start < line.end:  # a line of a marked unit: never a heading
            if units[0] is not made:  # its first line: the whole unit is taken at once
                made = units[0]
                whole = Span(made.start, made.end)
                if made.kind == "row":
                    flush()
                    chunks.extend(_unit_chunks(text, made, heading, settings.max_chars))
                else:  # a list item stays with its list, which is packed as body text
                    section.extend(_sentences_within(text, whole, settings.max_chars))
            continue
        line_text = text[line.start : line.end]
        following = lines[number + 1] if number + 1 < len(lines) else None
        next_text = text[following.start : following.end] if following else None
        markdown = _MARKDOWN_HEADING.match(line_text)
        level = marked.get(line.start) or (len(markdown[1]) if markdown else None)
        if level or is_heading(line_text, next_text, max_chars=settings.heading_max_chars):
            flush()
            title = _heading_text(line_text)
            rank = _rank(title, level)
            while path and path[-1][0] >= rank:
                path.pop()
            path.append((rank, title))
            heading = " › ".join(title for _, title in path)
        else:
            section.extend(_sentences_within(text, line, settings.max_chars))
    flush()
    return chunks


def _unit_chunks(text: str, unit: MarkedUnit, heading: str, max_chars: int) -> list[Chunk]:
    """A marked unit as chunks of its own (more than one only past max_chars), under the
    heading path and its table's caption."""
    titled = " › ".join(part for part in (heading, unit.caption) if part)
    sentences = _sentences_within(text, Span(unit.start, unit.end), max_chars)
    return _pack(text, sentences, titled, max_chars) if sentences else []


def _sentences_within(text: str, line: Span, max_chars: int) -> list[Span]:
    """Sentences of one line, with any sentence longer than max_chars cut at clauses, then hard."""
    pieces = []
    for sentence in split_sentences(text, line.start, line.end):
        if sentence.end - sentence.start <= max_chars:
            pieces.append(sentence)
            continue
        cursor = sentence.start
        clause_ends = [m.end() for m in _CLAUSE_END.finditer(text, sentence.start, sentence.end)]
        while sentence.end - cursor > max_chars:
            limit = cursor + max_chars
            cut = max((end for end in clause_ends if cursor < end <= limit), default=limit)
            pieces.extend(_trimmed(text, cursor, cut))
            cursor = cut
        pieces.extend(_trimmed(text, cursor, sentence.end))
    return pieces


def _pack(text: str, sentences: list[Span], heading: str, max_chars: int) -> list[Chunk]:
    """Greedily join consecutive sentences into chunks no longer than max_chars."""
    chunks = []
    start = end = sentences[0].start
    for sentence in sentences:
        if sentence.end - start > max_chars and end > start:
            chunks.append(Chunk(text[start:end], start, end, heading))
            start = sentence.start
        end = sentence.end
    chunks.append(Chunk(text[start:end], start, end, heading))
    return chunks
