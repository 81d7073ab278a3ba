"""Laid-out PDF pages into text: page headers, footers and numbers dropped, lines joined into
paragraphs across wraps and page breaks, tables continued over pages, list items and captions
marked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .pdf_layout import PdfLine, PdfPage, PdfTable, join_lines
from .units import Extracted, Lines, is_caption_label

# What starts a list item, a numbered clause or a caption: such a line never continues the line
# above it. The named groups are the kinds of list numbering (_pdf_item_kind).
_PDF_ITEM = re.compile(
    r"(?P<bullet>[•·●○◦◆◇■□▪▫▸►‣⁃]\s*|[-–—*]\s+)"
    r"|(?P<number>\d{1,3}(?:[.．、](?!\d)|[)）]))"
    r"|(?P<paren>[(（]\d{1,3}[)）])"
    r"|(?P<hanparen>[(（][一二三四五六七八九十]{1,3}[)）])"
    r"|(?P<han>[一二三四五六七八九十]{1,3}、)"
    r"|(?P<circled>[\u2460-\u2473])"
)
_PDF_BLOCK_START = re.compile(
    rf"{_PDF_ITEM.pattern}"
    r"|第[一二三四五六七八九十百零〇\d]{1,5}[编篇部章节条]"
    r"|[表图]\s*[\d一二三四五六七八九十]|附件|注[:：]"
)
# A line ending one of these ends its sentence, so the next line starts a new one.
_PDF_SENTENCE_END = re.compile(r"[。！？；：…!?;:][”’」』）)\]】\"']*$")
# Page numbers as printers write them: 3, - 3 -, 第 3 页, 第3页 共10页, 3 / 10, Page 3 of 10, iv.
_PDF_PAGE_NUMBER = re.compile(
    r"[-–—－~\s]*\d{1,4}[-–—－~\s]*"
    r"|第\s*[\d一二三四五六七八九十百]{1,4}\s*页(?:\s*[,，/、]?\s*共\s*\d{1,4}\s*页)?"
    r"|共\s*\d{1,4}\s*页\s*[,，/、]?\s*第\s*\d{1,4}\s*页"
    r"|\d{1,4}\s*/\s*\d{1,4}"
    r"|(?:[Pp]age|PAGE|[Pp]\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|[ivxlc]{1,7}|[IVXLC]{1,7}"
)
# Chromium's own print header (date and time, then the page's title) and footer (the page's
# address, then "2/3"), printed unless the printer turns them off.
_PDF_BROWSER_HEADER = re.compile(
    r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}[, ]+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?(?:\s.*)?"
)
_PDF_BROWSER_FOOTER = re.compile(r"(?:\S*(?::/|\.html?\b|about:)\S*\s*)?\d{1,4}\s*/\s*\d{1,4}")
# Page headers and footers sit in the top and bottom eighth of a page, among its first and
# last lines; one is dropped when it repeats (digits aside) on this share of the pages.
_PDF_MARGIN = 0.12
_PDF_MARGIN_LINES = 3
_PDF_REPEATED_SHARE = 0.4


def _pdf_edges(lines: list[PdfLine]) -> None:
    """Where full lines end, for each line: among the page's lines above or below it (its
    column, in a page of columns), the right end that a tenth of them pass."""
    if len(lines) > 300:  # a page of labels (a chart, a map): one edge for them all
        ends = sorted((line.x1 for line in lines), reverse=True)
        for line in lines:
            line.edge = ends[len(ends) // 10]
        return
    for line in lines:
        ends = sorted(
            (other.x1 for other in lines if other.x0 <= line.x1 and other.x1 >= line.x0),
            reverse=True,
        )
        line.edge = ends[len(ends) // 10]


def _pdf_drop_margins(pages: list[PdfPage]) -> None:
    """Drop page headers, footers and page numbers: lines among a page's first and last few,
    in its top or bottom margin, that repeat on many pages (digits aside) or are a page number
    or Chromium's print header or footer. In plain text, pypdf's, the first and last two lines
    of a page are taken for its margins, and Chromium's header may be among either (it is
    drawn last)."""
    candidates = []
    repeats: dict[tuple[str, str], int] = {}
    for page in pages:
        found = []
        if page.height is None:
            ordered = page.lines
            found += [("top", line) for line in ordered[:2]]
            found += [("bottom", line) for line in ordered[2:][-2:]]
        else:
            ordered = sorted(page.lines, key=lambda line: line.top)
            found += [
                ("top", line)
                for line in ordered[:_PDF_MARGIN_LINES]
                if line.bottom <= _PDF_MARGIN * page.height
            ]
            found += [
                ("bottom", line)
                for line in ordered[-_PDF_MARGIN_LINES:]
                if line.top >= (1 - _PDF_MARGIN) * page.height
            ]
        keys = {(side, re.sub(r"\d+", "#", re.sub(r"\s+", "", line.text))) for side, line in found}
        for key in keys:
            repeats[key] = repeats.get(key, 0) + 1
        candidates.append(found)
    needed = max(2, _PDF_REPEATED_SHARE * len(pages))
    for page, found in zip(pages, candidates, strict=True):
        dropped, plain = set(), page.height is None
        for side, line in found:
            key = (side, re.sub(r"\d+", "#", re.sub(r"\s+", "", line.text)))
            header = side == "top" or plain
            footer = side == "bottom" or plain
            if (
                repeats[key] >= needed
                or _PDF_PAGE_NUMBER.fullmatch(line.text)
                or (header and _PDF_BROWSER_HEADER.fullmatch(line.text))
                or (footer and _PDF_BROWSER_FOOTER.fullmatch(line.text))
            ):
                dropped.add(id(line))
        page.lines = [line for line in page.lines if id(line) not in dropped]


def _pdf_continues(paragraph: _PdfParagraph, line: PdfLine, same_page: bool, gap: float) -> bool:
    """Whether `line` goes on `paragraph`: it does unless the paragraph's last line ends a
    sentence, or `line` starts a list item, a numbered clause or a caption, or (on a laid-out
    page) the font size changes, the last line ends short of its column's edge by more than
    `line`'s first word, `line` is indented as a first line is, or a gap wider than the usual
    one (`gap`, in font sizes) lies between them on the page.
    """
    last = paragraph.last
    if _PDF_SENTENCE_END.search(last.text) or _PDF_BLOCK_START.match(line.text):
        return False
    size = max(last.size, line.size)
    if abs(last.size - line.size) > 0.15 * size:
        return False
    if last.x1 + line.lead + 1.5 * last.size < last.edge:
        return False
    if line.x0 > last.x0 + line.size and not _PDF_ITEM.match(paragraph.first.text):
        return False  # a hanging indent under a list item goes on; any other starts anew
    if same_page and line.top > last.top:
        return line.top - last.bottom <= (gap + 0.4) * size
    return True


def _pdf_gap(pages: list[PdfPage]) -> float:
    """The usual space between two lines of a paragraph, in font sizes: the median gap."""
    gaps = []
    for page in pages:
        for above, below in zip(page.lines, page.lines[1:], strict=False):
            if abs(above.size - below.size) > 0.1 * above.size:
                continue
            ratio = (below.top - above.bottom) / max(above.size, 1.0)
            if below.top > above.top and 0 <= ratio < 2:
                gaps.append(ratio)
    return sorted(gaps)[len(gaps) // 2] if gaps else 0.5


def assemble(pages: list[PdfPage]) -> Extracted:
    """The text of read pages: paragraphs one line each, tables one line a row.

    Lines join into paragraphs across line wraps and page breaks (_pdf_continues). A table that
    a page starts with goes on the table the page before ended with where _pdf_table_goes_on
    says so: a first row that repeats the header is then dropped, any other is a row. Runs of
    two or more paragraphs numbered alike ("1." "2.", "（一）" "（二）", bullets) are list items.
    """
    _pdf_drop_margins(pages)
    for page in pages:
        _pdf_edges(page.lines)  # not counting the margins' lines, which span any width
    gap = _pdf_gap(pages)
    # Paragraphs as _PdfParagraph, tables as PdfTable, each with the page it ends on.
    blocks: list[tuple[_PdfParagraph | PdfTable, int]] = []
    for number, page in enumerate(pages):
        items = sorted([*page.lines, *page.tables], key=lambda item: item.order)
        for index, item in enumerate(items):
            previous, on = blocks[-1] if blocks else (None, -1)
            if isinstance(item, PdfTable):
                if (
                    index == 0
                    and on == number - 1
                    and isinstance(previous, PdfTable)
                    and _pdf_table_goes_on(previous, item)
                ):
                    if _pdf_cells_key(item.header) != _pdf_cells_key(previous.header):
                        previous.rows.append(list(item.header))
                    previous.rows.extend(item.rows)
                    blocks[-1] = (previous, number)
                else:
                    if isinstance(previous, _PdfParagraph) and on == number:
                        item.caption = _pdf_caption(previous, item)
                        previous.captions = bool(item.caption)
                    blocks.append((item, number))
            elif isinstance(previous, _PdfParagraph) and _pdf_continues(
                previous, item, same_page=on == number, gap=gap
            ):
                previous.last = item
                previous.text = join_lines(previous.text, item.text)
                blocks[-1] = (previous, number)
            else:
                blocks.append((_PdfParagraph(item, item, item.text), number))
    return _pdf_text_of(blocks)


@dataclass
class _PdfParagraph:
    first: PdfLine
    last: PdfLine
    text: str
    captions: bool = False  # it is the caption of the table after it


def _pdf_cells_key(cells: list[str]) -> list[str]:
    return [re.sub(r"\s+", "", cell) for cell in cells]


def _pdf_table_goes_on(previous: PdfTable, table: PdfTable) -> bool:
    """Whether a table at the top of a page is the rest of the table that ended the page
    before: as many columns, in the same places (within 6 points), and a first row that repeats
    the header or is not a header (bold over plain rows, as the table before had)."""
    if len(table.columns) != len(previous.columns) or any(
        abs(a - b) > 6 for a, b in zip(table.columns, previous.columns, strict=True)
    ):
        return False
    if _pdf_cells_key(table.header) == _pdf_cells_key(previous.header):
        return True
    return not (previous.bold_header and table.bold_header)


def _pdf_caption(above: _PdfParagraph, table: PdfTable) -> str:
    """The paragraph right above a table on its page when it is the table's caption by its
    look: short, and starting with 表 ("表1 住宿标准") or ending with a colon ("标准如下：")."""
    near = table.top - above.last.bottom < 3 * above.last.size
    return above.text.rstrip("：:") if near and is_caption_label(above.text) else ""


def _pdf_item_kind(text: str) -> str | None:
    found = _PDF_ITEM.match(text)
    return found.lastgroup if found else None


def _pdf_text_of(blocks: list[tuple[_PdfParagraph | PdfTable, int]]) -> Extracted:
    out = Lines()
    kinds = [
        _pdf_item_kind(block.text) if isinstance(block, _PdfParagraph) else None
        for block, _ in blocks
    ]
    for index, (block, _) in enumerate(blocks):
        if isinstance(block, _PdfParagraph):
            kind = kinds[index]
            around = kinds[index - 1 : index] + kinds[index + 1 : index + 2]
            listed = kind is not None and kind in around
            # A caption is marked as the Word and HTML readers mark it: never a heading.
            out.add(block.text, kind="caption" if block.captions else "item" if listed else "")
        else:
            out.table([block.header, *block.rows], 1, block.caption)
    return out.extracted()
