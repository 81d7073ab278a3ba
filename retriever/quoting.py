"""What an answer quotes of a passage, and how the quotes are put together (retriever.answer).

An answer quotes whole units: a sentence, but a table row whole (its ； separates cells, not
sentences) and a list item as its own line. A sentence that opens without its subject
(retriever.answer_rules.needs_subject) is quoted with the sentence before it; a list question
gets every item of the list its best item is in. Quotes stay exact slices of the passage, with
their offsets in the file, so a reader can check each one.
"""

from __future__ import annotations

from dataclasses import dataclass

from retriever.answer_rules import MAX_LIST_ITEMS, is_item, is_opinion, is_row, needs_subject
from retriever.chunking import Span, split_sentences
from retriever.searcher import Hit

# A shorter sentence says too little to be an answer on its own.
MIN_SENTENCE_CHARS = 6


@dataclass(frozen=True)
class Quote:
    """A sentence of a passage, by character offsets into the source file."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chosen:
    """A sentence taken into the answer: its passage's index among the hits, and its score."""

    hit_index: int
    quote: Quote
    score: float


def quotable(hits: list[Hit], indexes: list[int], *, opinions: bool) -> list[tuple[int, Quote]]:
    """The sentences of hits[i] for i in `indexes` an answer may quote; an opinion only when
    the question asks for one."""
    candidates = []
    for index in indexes:
        hit = hits[index]
        for span in answer_units(hit.text):
            text = hit.text[span.start : span.end]
            # A clause that ends in a colon introduces what follows, and one that ends in
            # "..." is a truncated summary: neither reads as an answer on its own.
            if len(text) < MIN_SENTENCE_CHARS or text.endswith((":", "：", "...", "…")):
                continue
            if opinions or not is_opinion(text):
                candidates.append(
                    (index, Quote(hit.start + span.start, hit.start + span.end, text))
                )
    return candidates


def with_subjects(chosen: list[Chosen], hits: list[Hit]) -> list[Chosen]:
    """Each chosen sentence that opens without its subject (对所分管的工作全面负责) taken
    together with the sentence before it in its paragraph, which names what it speaks of;
    so that no line of an answer reads as a fragment. Quotes stay exact slices."""
    taken = {(c.hit_index, c.quote.start) for c in chosen}
    whole = []
    for candidate in chosen:
        hit, quote = hits[candidate.hit_index], candidate.quote
        before = _sentence_before(hit, quote)
        if (
            before is not None
            and (candidate.hit_index, hit.start + before.start) not in taken
            and needs_subject(quote.text)
        ):
            start = hit.start + before.start
            text = hit.text[before.start : quote.end - hit.start]
            quote = Quote(start, quote.end, text)
            candidate = Chosen(candidate.hit_index, quote, candidate.score)
        whole.append(candidate)
    return whole


def _sentence_before(hit: Hit, quote: Quote) -> Span | None:
    """The sentence right before `quote` in the same line of its passage, if any."""
    start = quote.start - hit.start
    line_start = hit.text.rfind("\n", 0, start) + 1
    sentences = split_sentences(hit.text, line_start, start)
    return sentences[-1] if sentences else None


def answer_units(text: str) -> list[Span]:
    """What an answer may quote of a passage: its sentences, but a table row whole (its ；
    separates the row's cells, not sentences: one cell alone does not say which row)."""
    units = []
    for line in _lines_of(text):
        if is_row(text[line.start : line.end]):
            units.append(line)
        else:
            units.extend(split_sentences(text, line.start, line.end))
    return units


def _lines_of(text: str) -> list[Span]:
    """The non-blank lines of `text`, trimmed."""
    spans, offset = [], 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            start = offset + line.index(stripped)
            spans.append(Span(start, start + len(stripped)))
        offset += len(line) + 1
    return spans


def as_read(hits: list[Hit], candidate: Chosen | tuple[int, Quote]) -> str:
    """A candidate sentence with its passage's heading, as a reader takes it."""
    index, quote = (
        (candidate.hit_index, candidate.quote) if isinstance(candidate, Chosen) else candidate
    )
    return f"{hits[index].heading}\n{quote.text}"


def whole_list(best: Chosen, hits: list[Hit]) -> list[Chosen]:
    """Every item of the numbered list the best sentence is an item of, in order, as one
    quote a line, continued into the next passage of the same file when that was retrieved
    too; empty if the best sentence is not in a list of two items or more."""
    hit = hits[best.hit_index]
    lines = _line_quotes(hit)
    at = next(
        (i for i, line in enumerate(lines) if line.start <= best.quote.start < line.end), None
    )
    if at is None or not is_item(lines[at].text):
        return []
    first, last = at, at
    while first > 0 and is_item(lines[first - 1].text):
        first -= 1
    while last + 1 < len(lines) and is_item(lines[last + 1].text):
        last += 1
    items = [(best.hit_index, line) for line in lines[first : last + 1]]
    if last == len(lines) - 1:
        following = next(
            (
                (i, other)
                for i, other in enumerate(hits)
                if other.source == hit.source and 0 <= other.start - hit.end <= 2
            ),
            None,
        )
        if following is not None:
            for line in _line_quotes(following[1]):
                if not is_item(line.text):
                    break
                items.append((following[0], line))
    if len(items) < 2:
        return []
    return [Chosen(index, quote, best.score) for index, quote in items[:MAX_LIST_ITEMS]]


def _line_quotes(hit: Hit) -> list[Quote]:
    """The non-empty lines of a passage, as quotes with their offsets in the file."""
    return [
        Quote(hit.start + line.start, hit.start + line.end, hit.text[line.start : line.end])
        for line in _lines_of(hit.text)
    ]


def joined(chosen: list[Chosen], numbering: dict[int, int]) -> str:
    """The quotes as the answer reads, each followed by its passage's marker and nothing
    added to it; a list item or a table row on a line of its own, as in its document."""
    parts: list[str] = []
    apart = False  # whether the quote before stands on a line of its own
    for candidate in chosen:
        text = candidate.quote.text
        line = is_item(text) or is_row(text)
        if parts and (line or apart):
            parts.append("\n")
        parts.append(f"{text}[{numbering[candidate.hit_index]}]")
        apart = line
    return "".join(parts)
