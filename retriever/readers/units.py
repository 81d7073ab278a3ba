"""What the readers write: a file's text with the headings and units its format marks, written
a line at a time (Lines), and the table rows written with their header (table_lines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# The most text one file may yield: what a 30 MB UTF-8 file of Chinese holds, and about 17
# minutes of embedding at a build's 10,000 characters a second. A file with more is refused,
# not cut, so that an index never holds part of a document without saying so.
MAX_TEXT_CHARS = 10_000_000


class ExtractionError(Exception):
    """Why a file's text could not be had, in words for the user; `detail` is the library's own."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


class MarkedHeading(NamedTuple):
    """A heading line the file itself marks as one (a Word heading style or outline level)."""

    offset: int  # where the line's text starts in the extracted text
    level: int  # its level in the document's outline: 1 is the top


class MarkedUnit(NamedTuple):
    """A span of the text that the file marks as one unit, to be found and cited on its own:
    a table row (written out with its header, "假别：婚假；天数：3天") or a list item (with its
    number as the reader sees it, "1. 提交申请")."""

    start: int
    end: int
    # "row", "item", or "caption": a table's caption line, which is never a heading (it would
    # head the text after the table, and repeat in its rows' path) and is read as body text.
    kind: str
    caption: str = ""  # what the unit sits under besides the headings: its table's caption


@dataclass(frozen=True)
class Extracted:
    """A file's text, and the headings and units its format marks, in the order of the text."""

    text: str
    headings: tuple[MarkedHeading, ...] = ()
    units: tuple[MarkedUnit, ...] = ()


class Lines:
    """Text written a line at a time, with the headings and units it marks: each offset is
    taken as its line is written, so it points into the joined text exactly."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.headings: list[MarkedHeading] = []
        self.units: list[MarkedUnit] = []
        self.size = 0  # the text's length so far, with the newline after each line

    def add(
        self, line: str, *, level: int | None = None, kind: str = "", caption: str = ""
    ) -> None:
        """Write a line, trimmed; a blank one is left out. A level makes it a heading, else a
        kind makes it a unit."""
        line = line.strip()
        if not line:
            return
        if level:
            self.headings.append(MarkedHeading(self.size, level))
        elif kind:
            self.units.append(MarkedUnit(self.size, self.size + len(line), kind, caption))
        self.lines.append(line)
        self.size += len(line) + 1
        # As it grows: a table's header, written into every row, can multiply a small file.
        check_length(self.size)

    def table(self, rows: list[list[str]], header_rows: int, caption: str) -> None:
        """Write a table's rows (see table_lines), each a unit under `caption`."""
        for line in table_lines(rows, header_rows):
            self.add(line, kind="row", caption=caption)

    def extracted(self) -> Extracted:
        return Extracted("\n".join(self.lines), tuple(self.headings), tuple(self.units))


def table_lines(rows: list[list[str]], header_rows: int) -> list[str]:
    """A table's body rows as lines: `rows` are cell texts by column (a merged cell repeated
    in each place it covers), the first `header_rows` of them the header.

    Under a header each row is "列：值；列：值", so that a row found alone still says what its
    values are; empty cells are left out, and a pair repeated by a merged cell is written
    once. A table with no header (or nothing but one) is written as it reads: two columns as
    "标签：值", wider rows as their cells separated by "；". A row of one cell merged across
    the whole table (注：…) is its text alone.
    """
    width = max(map(len, rows), default=0)
    rows = [row + [""] * (width - len(row)) for row in rows]
    if header_rows >= len(rows):
        header_rows = 0
    head, body = rows[:header_rows], rows[header_rows:]
    # A column's name is its header cells top to bottom; one merged over two header rows once.
    names = [
        "/".join(dict.fromkeys(filter(None, column))).rstrip("：:")
        for column in zip(*head, strict=True)
    ]
    lines = []
    for row in body:
        if width > 1 and len(set(row)) == 1:
            lines.append(row[0])  # one cell merged across the table: a note, not a row
            continue
        if any(names):
            if row == head[-1]:
                continue  # the header again, as converters repeat it on each page
            cells = zip(names, row, strict=True)
            pairs = [f"{name}：{value}" if name else value for name, value in cells if value]
        elif width == 2:
            label, value = row
            pairs = [f"{label.rstrip('：:')}：{value}" if label and value else label or value]
        else:
            pairs = row
        lines.append("；".join(dict.fromkeys(filter(None, pairs))))
    return lines


# The longest paragraph right before a table that is taken for its caption by its look.
_CAPTION_MAX_CHARS = 40


def is_caption_label(text: str) -> bool:
    """A short paragraph that introduces the table after it: "表1 员工假期", "各类假期如下："."""
    return len(text) <= _CAPTION_MAX_CHARS and (text.startswith("表") or text.endswith(("：", ":")))


def one_line(text: str) -> str:
    """The text of a cell, a list item or a heading as one line: each run of spaces and
    newlines one space."""
    return " ".join(text.split())


def check_length(chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise ExtractionError(
            f"it holds over {MAX_TEXT_CHARS:,} characters of text, the limit for one file; "
            "split it into smaller files"
        )
