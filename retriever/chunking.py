"""Structure-aware chunking of Chinese text, as pure functions over character offsets.

Scraped Q&A pages put a short heading line ("参谋职责", "办公室主任和行政主管哪个大?") above
the text that answers it. Each chunk keeps the nearest heading beside its text, so a question
that matches a heading finds the answer under it rather than the bare heading line. Chunk
text is always an exact slice of the source: `source[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retriever.config import ChunkSettings

# Sentence ends, full and half width: this corpus uses both. Closing quotes and brackets that
# follow an end belong to the sentence they close (not ASCII quotes: they open as often as close).
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)]*|\n+")
# Inside an over-long sentence, clause breaks are the next best place to cut.
_CLAUSE_END = re.compile(r"[，、,：:]+")
_HEADING_END = re.compile(r"[。；;，,：:、]$")
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
# "1.", "2、", "一、", "(三)": a numbered heading is a sub-heading of the last plain one.
_NUMBERED = re.compile(
    r"^\s*(\d+[.、．]|[一二三四五六七八九十]+、|[(（][一二三四五六七八九十\d]+[)）])"
)


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


def chunk_text(text: str, settings: ChunkSettings = ChunkSettings()) -> list[Chunk]:
    """Cut a document into chunks of whole sentences, each at most settings.max_chars long."""
    lines = _lines(text)
    chunks: list[Chunk] = []
    heading = parent = ""
    section: list[Span] = []

    def flush() -> None:
        if section:
            chunks.extend(_pack(text, section, heading, settings.max_chars))
            section.clear()

    for number, line in enumerate(lines):
        line_text = text[line.start : line.end]
        following = lines[number + 1] if number + 1 < len(lines) else None
        next_text = text[following.start : following.end] if following else None
        if is_heading(line_text, next_text, max_chars=settings.heading_max_chars):
            flush()
            heading = _heading_text(line_text)
            if _NUMBERED.match(heading) and parent:
                heading = f"{parent} › {heading}"
            else:
                parent = heading
        else:
            section.extend(_sentences_within(text, line, settings.max_chars))
    flush()
    return chunks


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
