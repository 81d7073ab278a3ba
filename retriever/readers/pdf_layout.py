"""One PDF page as pdfplumber lays it out: its characters folded to what they mean, its lines
of text in drawing order, and its ruled tables with merged cells resolved."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Chromium (Skia) names each glyph of a PDF's font by the lowest code point the font draws
# with it, and CJK fonts draw 用 and the Kangxi radical ⽤ (U+2F64) with one glyph: so a page
# printed from Chromium says ⽤⼀⼤ where its author wrote 用一大, and copy-paste and search
# fail on it. Each radical is folded back to one ideograph, character for character, so that
# offsets into the text stay where the PDF's reader put them.
#
# Kangxi radicals: NFKC maps each to one unified ideograph. ⼾ is the exception: NFKC's is 戶,
# but a Simplified Chinese font draws 户 with its glyph (用户 came out as 用⼾), as a Japanese
# font draws 戸; this project's documents are Simplified Chinese.
# CJK Radicals Supplement: NFKC maps only ⺟ and ⻳. The others below are the ideographs that
# share a glyph with the radical in Noto Sans CJK SC (Source Han Sans SC), the font Chromium
# prints Chinese with on Linux (read from the font's cmap). A radical that font draws unlike
# any ideograph is never put for one, so it was written as a radical, and stays.
_SUPPLEMENT_RADICALS = (
    "⺂⺃⺅⺇⺉⺋⺍⺏⺐⺒⺓⺔⺕⺖⺘⺙⺛⺞⺠⺡⺣⺤⺦⺨⺩⺭⺮⺯⺰⺱⺳⺹⺺⺽⺾⻂⻅⻆⻇⻈⻉⻊⻋⻌⻐⻑⻒⻓⻔⻕"
    "⻖⻘⻙⻚⻛⻜⻝⻞⻟⻠⻡⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻮⻯⻰⻱⻲⼾"
)
_SUPPLEMENT_IDEOGRAPHS = (
    "乛乚亻𠘨刂㔾𭕄尣尢巳幺彑彐忄扌攵旡歺民氵灬爫丬犭𤣩礻𥫗糹纟罓㓁耂肀𦥑艹衤见角𧢲讠贝𧾷车辶钅長镸长门𨸏"
    "阝青韦页风飞食𩙿飠饣𩠐马骨鬼鱼鸟卤麦黄黾斉齐齿竜龙龜亀户"
)


def _radical_table() -> dict[int, str]:
    """The radicals of U+2E80–U+2FDF and the ideograph each is folded to, one for one."""
    table = {}
    for code in range(0x2E80, 0x2FE0):
        folded = unicodedata.normalize("NFKC", chr(code))
        if len(folded) == 1 and folded != chr(code):
            table[code] = folded
    table.update(zip(map(ord, _SUPPLEMENT_RADICALS), _SUPPLEMENT_IDEOGRAPHS, strict=True))
    return table


RADICALS = _radical_table()


# Ruled tables only: cells bounded by drawn lines or rectangles (an office suite's table rules,
# the borders Chromium prints for an HTML table). Tables found from text alignment alone are
# as often two columns of prose or a form's labels; they stay lines of text.
_PDF_TABLE_SETTINGS = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
# Tables are looked for among a page's lines and rectangles: 4,000 take find_tables a second
# here. A page that draws more is a drawing, not a table (Chromium draws 2–3 rectangles a cell),
# and past the budget a file's further pages are read as text alone: a file of drawings would
# otherwise take minutes, where pypdf took seconds.
_PDF_MAX_PAGE_RULES = 5_000
MAX_FILE_RULES = 100_000
# A character that pdfminer could not map to Unicode comes out as "(cid:123)": no text.
_PDF_CID = re.compile(r"\(cid:\d+\)")
_PDF_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
# Characters as they are meant: Kangxi radicals as their ideographs (RADICALS), and the Latin
# ligatures fonts draw (Chromium prints "office" with ﬃ) as their letters. The text is made of
# the folded characters, so offsets into it are unchanged by the folding.
FOLDED = {**RADICALS, 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl"}


@dataclass
class PdfLine:
    """One line of text on a page, placed in points from the page's top left. A line of plain
    text (pypdf's) is placed by its characters alone: x1 its width, in half-characters of
    Chinese (a Latin letter is one), and top and bottom 0."""

    text: str
    order: int = 0  # where its first character is drawn in the page's content
    x0: float = 0.0
    x1: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    size: float = 0.0  # its characters' font size
    lead: float = 0.0  # the width of its first word (of its first character in Chinese)
    edge: float = 0.0  # where full lines of its column end


@dataclass
class PdfTable:
    """A ruled table of two or more columns: its first row is the header of the others."""

    header: list[str]
    rows: list[list[str]]  # a merged cell's text in each place it covers
    columns: list[float]  # each column's left edge, to know the same table on the next page
    order: int
    top: float
    bold_header: bool  # the first row is bold and the second is not
    caption: str = ""


@dataclass
class PdfPage:
    lines: list[PdfLine]
    tables: list[PdfTable]
    height: float | None = None  # None: plain text, no layout
    chars: int = 0  # in its lines, to stop reading as soon as a file holds too much text
    rules: int = 0  # the lines and rectangles that tables were looked for among


def layout_page(page, budget: int) -> PdfPage:
    """A page's tables and the lines of text outside them, each in drawing order. Tables are
    looked for where the page draws lines or rectangles, no more than `budget` of them."""
    chars, rules = _pdf_chars(page)
    ruled = 0 < rules <= min(_PDF_MAX_PAGE_RULES, budget)
    tables, boxes = [], []
    for found in page.find_tables(_PDF_TABLE_SETTINGS) if ruled else ():
        table = _pdf_table(found, chars)
        if table is not None:
            tables.append(table)
            boxes.append(found.bbox)
    outside = []
    for order, char in enumerate(chars):
        x, y = (char["x0"] + char["x1"]) / 2, (char["top"] + char["bottom"]) / 2
        inside = next(
            (i for i, box in enumerate(boxes) if box[0] <= x <= box[2] and box[1] <= y <= box[3]),
            None,
        )
        if inside is None:
            outside.append((order, char))
        else:
            tables[inside].order = min(tables[inside].order, order)
    lines = _pdf_lines(outside)
    text = sum(len(line.text) for line in lines)
    return PdfPage(lines, tables, page.height, text, rules if ruled else 0)


def _pdf_chars(page) -> tuple[list[dict], int]:
    """A page's characters in drawing order, placed as pdfplumber places them (from the top of
    the page), and how many lines, rectangles and curves it draws, as a ruled table needs.

    They are read from pdfminer's layout of the page, not from pdfplumber's page.chars: that
    turns every object of the page into a dictionary of some 20 attributes, a fifth of the
    time a page takes. find_tables does so still, on pages that draw lines.
    """
    from pdfminer.layout import LTChar, LTContainer, LTCurve

    height, (left, top) = page.height, page.mediabox[:2]
    chars, rules = [], 0
    pending = [iter(page.layout)]
    while pending:  # figures (form XObjects) hold objects of their own; no recursion
        item = next(pending[-1], None)
        if item is None:
            pending.pop()
        elif isinstance(item, LTChar):
            text = item.get_text()
            if not _PDF_CID.fullmatch(text):
                chars.append(
                    {
                        "text": text,
                        "x0": item.x0 + left,
                        "x1": item.x1 + left,
                        "top": height - item.y1 + top,
                        "bottom": height - item.y0 + top,
                        "size": item.size,
                        "fontname": item.fontname,
                    }
                )
        elif isinstance(item, LTCurve):  # lines and rectangles too
            rules += 1
        elif isinstance(item, LTContainer):
            pending.append(iter(item))
    return chars, rules


def _pdf_table(found, chars: list[dict]) -> PdfTable | None:
    """A table's cells as text, merged cells resolved; None for a box of one column (a framed
    paragraph or note: its text is read as lines)."""
    grid = found.extract()
    columns = sorted({cell[0] for cell in found.cells})
    if len(columns) < 2 or not grid:
        return None
    values: list[list[str]] = []
    for row, texts in zip(found.rows, grid, strict=True):
        line: list[str] = []
        top = row.bbox[1]
        for column, (cell, text) in enumerate(zip(row.cells, texts, strict=True)):
            if cell is not None:
                line.append(_pdf_cell_text(text))
                continue
            # A place that a merged cell covers takes its text, as Word's merged cells do
            # (word.docx_text): from the row above (a category over several rows holds for each)
            # or from the cell on the left (a header over two columns names both).
            x = columns[column]
            cover = next(
                (c for c in found.cells if c[0] <= x + 1 < c[2] and c[1] <= top + 1 < c[3]),
                None,
            )
            if cover is not None and cover[1] < top - 1 and values:
                line.append(values[-1][column])
            elif cover is not None and cover[0] < x - 1 and line:
                line.append(line[-1])
            else:
                line.append("")
        values.append(line)
    bold = [_pdf_bold_share(chars, row.bbox) > 0.6 for row in found.rows[:2]]
    return PdfTable(
        values[0],
        values[1:],
        columns,
        order=len(chars),
        top=found.bbox[1],
        bold_header=bold[0] and not bold[-1],
    )


def _pdf_cell_text(text: str | None) -> str:
    lines = _PDF_CID.sub("", (text or "").translate(FOLDED)).split("\n")
    joined = ""
    for line in (line.strip() for line in lines):
        if line:
            joined = join_lines(joined, line) if joined else line
    return joined


def _pdf_bold_share(chars: list[dict], box: tuple[float, float, float, float]) -> float:
    x0, top, x1, bottom = box
    inside = [
        char["fontname"]
        for char in chars
        if x0 <= char["x0"] and char["x1"] <= x1 and top <= char["top"] and char["bottom"] <= bottom
    ]
    return sum(bool(_PDF_BOLD.search(name)) for name in inside) / max(len(inside), 1)


def is_cjk(char: str) -> bool:
    """Chinese, Japanese and Korean characters and their punctuation: no space between them."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0xFE30 <= code <= 0xFE4F
        or 0xFF00 <= code <= 0xFFEF
        or code >= 0x20000
        or char in "“”‘’—…·"
    )


def _pdf_lines(chars: list[tuple[int, dict]]) -> list[PdfLine]:
    """Characters in drawing order as lines: a line goes on while the next character sits on
    its baseline band to the right of it. A space goes where the PDF draws one, or where the gap
    is a word space (a fifth of the font size; in Chinese, more than half a character)."""
    lines: list[PdfLine] = []
    texts: list[str] = []
    sizes: list[float] = []
    line: PdfLine | None = None
    last, space, lead_open = None, False, False

    def finish() -> None:
        if line is not None and texts:
            line.text = "".join(texts).strip()
            line.size = sorted(sizes)[len(sizes) // 2]
            if line.text:
                lines.append(line)

    for order, char in chars:
        text = char["text"].translate(FOLDED)
        x0, x1, top, bottom = char["x0"], char["x1"], char["top"], char["bottom"]
        size = char["size"] or (bottom - top) or 1.0
        if line is not None and last is not None:
            height = min(bottom - top, line.bottom - line.top) or size
            overlap = min(bottom, line.bottom) - max(top, line.top)
            width = last["x1"] - last["x0"]
            if text == last["text"] and abs(x0 - last["x0"]) < min(0.15 * size, 0.5 * width):
                continue  # drawn twice over itself (a bold effect)
            if overlap >= 0.5 * height and x0 >= last["x1"] - 0.5 * size:
                if text.isspace():
                    space = True
                    continue
                cjk = is_cjk(last["text"][-1]) and is_cjk(text[0])
                if space or x0 - last["x1"] > (0.6 if cjk else 0.2) * size:
                    texts.append(" ")
                    lead_open = False
                texts.append(text)
                sizes.append(size)
                line.x1 = max(line.x1, x1)
                if lead_open:
                    line.lead = x1 - line.x0
                    lead_open = not is_cjk(text[0])
                last, space = char, False
                continue
        if text.isspace():
            continue
        finish()
        line = PdfLine("", order, x0, x1, top, bottom, lead=x1 - x0)
        texts, sizes = [text], [size]
        last, space, lead_open = char, False, not is_cjk(text[0])
    finish()
    return lines


def join_lines(before: str, after: str) -> str:
    """Two lines of one paragraph as one: no space between Chinese characters, a space between
    Latin words, a word hyphenated over the line break whole again."""
    if before.endswith("\u00ad"):  # a soft hyphen
        return before[:-1] + after
    if before.endswith("-") and before[-2:-1].isalpha() and after[:1].islower():
        return before[:-1] + after
    if is_cjk(before[-1]) or is_cjk(after[0]):
        return before + after
    return f"{before} {after}"
