"""Text out of PDF, Word, HTML and Markdown files, as structure: headings, table rows with
their header, list items with their numbers (MarkedHeading, MarkedUnit).

PDF, Word and HTML (and long Markdown) are read in a child process with bounded time and
memory: they are parsed by libraries (pdfplumber and pypdf, python-docx, BeautifulSoup,
markdown-it-py) that a damaged or crafted file can drive into any exception, minutes of
work or gigabytes of memory: a 200 KB PDF holding a deflate stream of 200 MB, a 340 KB
.docx that unpacks to 100 MB of XML. So
`extract` reads one file in a fresh Python process that is killed after EXTRACT_SECONDS and
whose address space is capped at CHILD_MEMORY_BYTES, and every failure, whatever the library
raised, comes back as an ExtractionError whose message is the reason in words.

The child is a new interpreter (fork + exec), not a fork of the caller: the caller may hold
ONNX Runtime and FAISS thread pools, which a bare fork copies in an unknown state, and its
gigabytes of mapped libraries would leave no room under an address-space cap. The child runs
this file as a script, so it imports one parsing library and nothing of the retriever package;
that costs 0.2–0.3 s a file, for these formats only (plain text is read in-process, and so is
Markdown but for long files: markdown_text).

The parent enforces EXTRACT_SECONDS and passes CHILD_MEMORY_BYTES on the child's command line;
the other limits are read by the child from this file, so changing them in a running parent
has no effect.
"""

from __future__ import annotations

import io
import json
import logging
import re
import resource
import subprocess
import sys
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import NamedTuple

# The largest real files take up to 35 s to read here (a 20 MB web page; Word XML of 500,000
# short paragraphs), a 1,000-page text PDF 6 s. Three times that leaves room for a busy
# machine; a file that needs longer would stall every build and upload.
EXTRACT_SECONDS = 120
# Parsing needs many times the file's size: a 20 MB web page takes 750 MB in BeautifulSoup,
# 20 MB of Word XML 200–400 MB in python-docx. 1 GB reads such files and stops a bomb long
# before it takes the machine's memory.
CHILD_MEMORY_BYTES = 1_000_000_000
# The most text one file may yield: what a 30 MB UTF-8 file of Chinese holds, and about 17
# minutes of embedding at a build's 10,000 characters a second. A file with more is refused,
# not cut, so that an index never holds part of a document without saying so.
MAX_TEXT_CHARS = 10_000_000
# pypdf's own cap on what one stream may unpack to is 75 MB. A page's content is 10–50 KB of
# operators; 20 MB is hundreds of dense pages in one stream, and a 200 MB deflate bomb is
# stopped after 20 MB, in a fraction of a second.
PDF_MAX_STREAM_BYTES = 20_000_000
# Long real books have 2,000–3,000 pages; a PDF with more is refused before any text is read.
PDF_MAX_PAGES = 5_000
# A .docx is a zip, judged by its directory before python-docx inflates every part into memory.
# Word's XML is about 20 KB a page, so 30 MB of it is some 1,500 pages (about 600 MB and 40 s
# to parse here); all parts together, with pictures, may unpack to twice the largest file taken.
DOCX_MAX_XML_BYTES = 30_000_000
DOCX_MAX_UNPACKED_BYTES = 100_000_000
# Word writes a few dozen parts plus one per picture; tens of thousands is a zip bomb of entries.
DOCX_MAX_PARTS = 5_000
# Word's XML deflates about 10:1; zip bombs are 250:1 and more. Parts under 1 MB cannot do
# harm whatever their ratio, so they are not judged by it.
DOCX_MAX_RATIO = 100
DOCX_RATIO_MIN_BYTES = 1_000_000
# markdown-it-py holds a few hundred bytes of tokens for each character of dense Markdown (500
# for a table of one-letter rows) and takes about 1 s for 100,000 such characters; a 2,000-line
# handbook is 25,000. Longer files are parsed in the child, so that a 50 MB file cannot take
# minutes and gigabytes of the server's process; prose costs a tenth of that.
MARKDOWN_IN_PROCESS_CHARS = 100_000

# Which readers made a file's text: raised whenever a reader gives other text (or units) for
# the same bytes, so that a build reads such files again instead of keeping passages whose
# offsets point into the old text (retriever.corpus.file_hashes). 2: tables as rows with
# their header, list numbers, marked units.
READER_VERSION = 2

# Why a file failed when the library's exception says nothing a user can act on.
_UNREADABLE = {
    "pdf": "not a readable PDF: the file is damaged or is not a PDF",
    "docx": "not a readable Word .docx file: the file is damaged or is not a .docx",
    "html": "the web page's text could not be extracted",
    "md": "the Markdown file's text could not be extracted",
}


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


class _Lines:
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
        _check_length(self.size)

    def table(self, rows: list[list[str]], header_rows: int, caption: str) -> None:
        """Write a table's rows (see _table_lines), each a unit under `caption`."""
        for line in _table_lines(rows, header_rows):
            self.add(line, kind="row", caption=caption)

    def extracted(self) -> Extracted:
        return Extracted("\n".join(self.lines), tuple(self.headings), tuple(self.units))


def _table_lines(rows: list[list[str]], header_rows: int) -> list[str]:
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


def _is_caption_label(text: str) -> bool:
    """A short paragraph that introduces the table after it: "表1 员工假期", "各类假期如下："."""
    return len(text) <= _CAPTION_MAX_CHARS and (text.startswith("表") or text.endswith(("：", ":")))


def _one_line(text: str) -> str:
    """The text of a cell, a list item or a heading as one line: each run of spaces and
    newlines one space."""
    return " ".join(text.split())


def extract(kind: str, data: bytes) -> Extracted:
    """The text of a file: `kind` is "pdf", "docx", "html" or "md" (the last two as UTF-8).

    Raises ExtractionError for a file that cannot be read, takes over EXTRACT_SECONDS, needs
    over CHILD_MEMORY_BYTES or yields over MAX_TEXT_CHARS characters. The child has ended, one
    way or the other, when this returns.
    """
    try:
        child = subprocess.run(
            command(kind),
            input=data,
            stdout=subprocess.PIPE,
            # Library warnings are silenced in the child; a crash is reported by its status.
            stderr=subprocess.DEVNULL,
            timeout=EXTRACT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed and reaped the child
        raise ExtractionError(
            f"reading it took over {EXTRACT_SECONDS} s, the limit for one file; "
            "split it into smaller files"
        ) from None
    try:
        reply = json.loads(child.stdout.decode("utf-8", "surrogatepass"))
    except ValueError:
        raise ExtractionError(
            f"{_UNREADABLE[kind]} (its reader crashed)", f"exit status {child.returncode}"
        ) from None
    if "error" in reply:
        raise ExtractionError(reply["error"], reply["detail"])
    return Extracted(
        reply["text"],
        tuple(MarkedHeading(*pair) for pair in reply["headings"]),
        tuple(MarkedUnit(*unit) for unit in reply["units"]),
    )


def command(kind: str) -> list[str]:
    """The child's command line. -P keeps this file's folder, retriever/, off its sys.path."""
    return [sys.executable, "-P", __file__, kind, str(CHILD_MEMORY_BYTES)]


def _pdf_text(data: bytes) -> Extracted:
    """A PDF's text as its pages lay it out (pdfplumber): lines that a wrap or a page break cut
    are one paragraph again, page headers, footers and numbers are dropped, and each table row
    is a line "列：值；列：值" with its table's header, marked as a unit (see _pdf_assemble).

    pypdf still opens the file first, under its stream limits: it says whether a password is
    needed and counts the pages of the flattened page tree (pdfminer's walk skips a page listed
    twice, so a tree that lists one page 10,000 times would pass its count).
    """
    import pypdf
    from pypdf.errors import LimitReachedError

    limits = dict.fromkeys(
        (
            "array_based_stream_maximum_output_length",
            "brotli_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "zlib_maximum_output_length",
        ),
        PDF_MAX_STREAM_BYTES,
    )
    with pypdf.apply_configuration(**limits):
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            # pypdf has tried the empty password, which opens files that are only protected
            # against editing or printing; decrypt says whether it worked.
            if reader.is_encrypted and not reader.decrypt(""):
                raise ExtractionError("the PDF is password-protected; save a copy without it")
            if len(reader.pages) > PDF_MAX_PAGES:
                raise ExtractionError(
                    f"the PDF has {len(reader.pages)} pages, over the limit of {PDF_MAX_PAGES} "
                    "for one file; split it into smaller files"
                )
            if len(reader.pages) > PDF_LAYOUT_MAX_PAGES:
                pages = _pdf_plain_pages(reader)
            else:
                pages = _pdf_layout_pages(data)
        except (LimitReachedError, _StreamTooLarge) as error:
            raise ExtractionError(
                "the PDF goes past the reader's safety limits (a stream that unpacks to over "
                f"{PDF_MAX_STREAM_BYTES // 1_000_000} MB, or structures too large or deep); "
                "it looks built to exhaust memory",
                str(error),
            ) from None
    extracted = _pdf_assemble(pages)
    if not extracted.text:
        raise ExtractionError("the PDF has no text layer (a scan?); run OCR on it first")
    return extracted


# --- PDF layout: lines, tables, page margins, read by pdfplumber -------------------------------

# Past this many pages a PDF is read by pypdf as plain text, as before pdfplumber: its lines
# joined by their punctuation and length alone, page headers and numbers dropped by their
# repeats, no table found. pdfminer (under pdfplumber) parses pages in pure Python: 0.09 s of
# CPU a dense page of Chinese here, against pypdf's 0.06 s, and twice that in wall time on a
# busy machine. So 1,000 pages would take 90–180 s, past EXTRACT_SECONDS; 300 take 27–55 s.
PDF_LAYOUT_MAX_PAGES = 300

# Ruled tables only: cells bounded by drawn lines or rectangles (an office suite's table rules,
# the borders Chromium prints for an HTML table). Tables found from text alignment alone are
# as often two columns of prose or a form's labels; they stay lines of text.
_PDF_TABLE_SETTINGS = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
# Tables are looked for among a page's lines and rectangles: 4,000 take find_tables a second
# here. A page that draws more is a drawing, not a table (Chromium draws 2–3 rectangles a cell),
# and past the budget a file's further pages are read as text alone: a file of drawings would
# otherwise take minutes, where pypdf took seconds.
_PDF_MAX_PAGE_RULES = 5_000
_PDF_MAX_FILE_RULES = 100_000
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
# A character that pdfminer could not map to Unicode comes out as "(cid:123)": no text.
_PDF_CID = re.compile(r"\(cid:\d+\)")
_PDF_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
# Characters as they are meant: Kangxi radicals as their ideographs (RADICALS), and the Latin
# ligatures fonts draw (Chromium prints "office" with ﬃ) as their letters. The text is made of
# the folded characters, so offsets into it are unchanged by the folding.
_PDF_FOLDED = {**RADICALS, 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl"}


class _StreamTooLarge(Exception):
    """A PDF stream that unpacks to over PDF_MAX_STREAM_BYTES, stopped as it unpacks."""


@dataclass
class _PdfLine:
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
class _PdfTable:
    """A ruled table of two or more columns: its first row is the header of the others."""

    header: list[str]
    rows: list[list[str]]  # a merged cell's text in each place it covers
    columns: list[float]  # each column's left edge, to know the same table on the next page
    order: int
    top: float
    bold_header: bool  # the first row is bold and the second is not
    caption: str = ""


@dataclass
class _PdfPage:
    lines: list[_PdfLine]
    tables: list[_PdfTable]
    height: float | None = None  # None: plain text, no layout
    chars: int = 0  # in its lines, to stop reading as soon as a file holds too much text
    rules: int = 0  # the lines and rectangles that tables were looked for among


def _bound_pdfminer_streams() -> None:
    """Make pdfminer unpack streams under PDF_MAX_STREAM_BYTES, as pypdf does under its limits.

    pdfminer has no cap of its own: the 200 KB deflate bomb of tests/test_reader_safety.py took
    200 MB and seconds. Its decoders are replaced in this process (the child) by ones that stop
    past the limit; a damaged deflate stream still gives what unpacked before the damage, as
    pdfminer's own decompress_corrupted does.
    """
    import types
    import zlib

    from pdfminer import pdftypes
    from pdfminer.lzw import LZWDecoder

    def checked(out: bytearray) -> None:
        if len(out) > PDF_MAX_STREAM_BYTES:
            raise _StreamTooLarge(f"a stream unpacks to over {PDF_MAX_STREAM_BYTES} bytes")

    def inflate(data: bytes) -> bytes:
        inflater, out, step = zlib.decompressobj(), bytearray(), 1 << 16
        for start in range(0, len(data), step):
            chunk, saved = data[start : start + step], inflater.copy()
            try:
                out += inflater.decompress(chunk, PDF_MAX_STREAM_BYTES + 1 - len(out))
            except zlib.error:  # damaged: keep what the bytes before the damage give
                for byte in chunk:
                    try:
                        out += saved.decompress(bytes((byte,)))
                    except zlib.error:
                        break
                    checked(out)
                break
            checked(out)
            if inflater.eof:
                break
        return bytes(out)

    def unpack_lzw(data: bytes) -> bytes:
        out = bytearray()
        for piece in LZWDecoder(io.BytesIO(data)).run():
            out += piece
            checked(out)
        return bytes(out)

    def unpack_run_length(data: bytes) -> bytes:
        out, at = bytearray(), 0
        while at < len(data) and data[at] != 128:
            length = data[at]
            if length < 128:
                out += data[at + 1 : at + 2 + length]
                at += length + 2
            else:
                out += data[at + 1 : at + 2] * (257 - length)
                at += 2
            checked(out)
        return bytes(out)

    pdftypes.zlib = types.SimpleNamespace(
        decompress=inflate, decompressobj=zlib.decompressobj, error=zlib.error
    )
    pdftypes.decompress_corrupted = inflate
    pdftypes.lzwdecode = unpack_lzw
    pdftypes.rldecode = unpack_run_length


def _pdf_plain_pages(reader) -> list[_PdfPage]:
    """Each page's lines as pypdf reads them, for PDFs past PDF_LAYOUT_MAX_PAGES: their widths
    counted in characters, so that a line that ends short of the others still ends its
    paragraph (a heading, a list item, a paragraph's last line)."""
    pages, chars = [], 0
    for page in reader.pages:
        text = (page.extract_text() or "").translate(_PDF_FOLDED)
        lines = []
        for order, line in enumerate(filter(None, map(str.strip, text.splitlines()))):
            widths = [2 if _is_cjk(char) else 1 for char in line]
            word = re.match(r"\S+?(?=\s|$)", line) if widths[0] == 1 else None
            lead = len(word[0]) if word else widths[0]
            lines.append(_PdfLine(line, order, 0.0, sum(widths), size=2.0, lead=lead))
        pages.append(_PdfPage(lines, []))
        chars += len(text)
        _check_length(chars)  # stop as soon as the text is too long
    return pages


def _pdf_layout_pages(data: bytes) -> list[_PdfPage]:
    import pdfplumber
    from pdfplumber.utils.exceptions import PdfminerException

    _bound_pdfminer_streams()
    pages, chars, rules = [], 0, _PDF_MAX_FILE_RULES
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                pages.append(_pdf_page(page, rules))
                rules -= pages[-1].rules
                page.close()  # its characters and layout are no longer needed
                chars += pages[-1].chars
                _check_length(chars)
    except PdfminerException as error:  # pdfplumber wraps what pdfminer raises
        cause = error.args[0] if error.args else None
        if isinstance(cause, (MemoryError, _StreamTooLarge)):
            raise cause from None
        raise
    return pages


def _pdf_page(page, budget: int) -> _PdfPage:
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
    return _PdfPage(lines, tables, page.height, text, rules if ruled else 0)


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


def _pdf_table(found, chars: list[dict]) -> _PdfTable | None:
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
            # (_docx_text): from the row above (a category over several rows holds for each)
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
    return _PdfTable(
        values[0],
        values[1:],
        columns,
        order=len(chars),
        top=found.bbox[1],
        bold_header=bold[0] and not bold[-1],
    )


def _pdf_cell_text(text: str | None) -> str:
    lines = _PDF_CID.sub("", (text or "").translate(_PDF_FOLDED)).split("\n")
    joined = ""
    for line in (line.strip() for line in lines):
        if line:
            joined = _pdf_joined(joined, line) if joined else line
    return joined


def _pdf_bold_share(chars: list[dict], box: tuple[float, float, float, float]) -> float:
    x0, top, x1, bottom = box
    inside = [
        char["fontname"]
        for char in chars
        if x0 <= char["x0"] and char["x1"] <= x1 and top <= char["top"] and char["bottom"] <= bottom
    ]
    return sum(bool(_PDF_BOLD.search(name)) for name in inside) / max(len(inside), 1)


def _is_cjk(char: str) -> bool:
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


def _pdf_lines(chars: list[tuple[int, dict]]) -> list[_PdfLine]:
    """Characters in drawing order as lines: a line goes on while the next character sits on
    its baseline band to the right of it. A space goes where the PDF draws one, or where the gap
    is a word space (a fifth of the font size; in Chinese, more than half a character)."""
    lines: list[_PdfLine] = []
    texts: list[str] = []
    sizes: list[float] = []
    line: _PdfLine | None = None
    last, space, lead_open = None, False, False

    def finish() -> None:
        if line is not None and texts:
            line.text = "".join(texts).strip()
            line.size = sorted(sizes)[len(sizes) // 2]
            if line.text:
                lines.append(line)

    for order, char in chars:
        text = char["text"].translate(_PDF_FOLDED)
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
                cjk = _is_cjk(last["text"][-1]) and _is_cjk(text[0])
                if space or x0 - last["x1"] > (0.6 if cjk else 0.2) * size:
                    texts.append(" ")
                    lead_open = False
                texts.append(text)
                sizes.append(size)
                line.x1 = max(line.x1, x1)
                if lead_open:
                    line.lead = x1 - line.x0
                    lead_open = not _is_cjk(text[0])
                last, space = char, False
                continue
        if text.isspace():
            continue
        finish()
        line = _PdfLine("", order, x0, x1, top, bottom, lead=x1 - x0)
        texts, sizes = [text], [size]
        last, space, lead_open = char, False, not _is_cjk(text[0])
    finish()
    return lines


def _pdf_edges(lines: list[_PdfLine]) -> None:
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


def _pdf_drop_margins(pages: list[_PdfPage]) -> None:
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


def _pdf_joined(before: str, after: str) -> str:
    """Two lines of one paragraph as one: no space between Chinese characters, a space between
    Latin words, a word hyphenated over the line break whole again."""
    if before.endswith("\u00ad"):  # a soft hyphen
        return before[:-1] + after
    if before.endswith("-") and before[-2:-1].isalpha() and after[:1].islower():
        return before[:-1] + after
    if _is_cjk(before[-1]) or _is_cjk(after[0]):
        return before + after
    return f"{before} {after}"


def _pdf_continues(paragraph: _PdfParagraph, line: _PdfLine, same_page: bool, gap: float) -> bool:
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


def _pdf_gap(pages: list[_PdfPage]) -> float:
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


def _pdf_assemble(pages: list[_PdfPage]) -> Extracted:
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
    # Paragraphs as _PdfParagraph, tables as _PdfTable, each with the page it ends on.
    blocks: list[tuple[_PdfParagraph | _PdfTable, int]] = []
    for number, page in enumerate(pages):
        items = sorted([*page.lines, *page.tables], key=lambda item: item.order)
        for index, item in enumerate(items):
            previous, on = blocks[-1] if blocks else (None, -1)
            if isinstance(item, _PdfTable):
                if (
                    index == 0
                    and on == number - 1
                    and isinstance(previous, _PdfTable)
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
                previous.text = _pdf_joined(previous.text, item.text)
                blocks[-1] = (previous, number)
            else:
                blocks.append((_PdfParagraph(item, item, item.text), number))
    return _pdf_text_of(blocks)


@dataclass
class _PdfParagraph:
    first: _PdfLine
    last: _PdfLine
    text: str
    captions: bool = False  # it is the caption of the table after it


def _pdf_cells_key(cells: list[str]) -> list[str]:
    return [re.sub(r"\s+", "", cell) for cell in cells]


def _pdf_table_goes_on(previous: _PdfTable, table: _PdfTable) -> bool:
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


def _pdf_caption(above: _PdfParagraph, table: _PdfTable) -> str:
    """The paragraph right above a table on its page when it is the table's caption by its
    look: short, and starting with 表 ("表1 住宿标准") or ending with a colon ("标准如下：")."""
    near = table.top - above.last.bottom < 3 * above.last.size
    return above.text.rstrip("：:") if near and _is_caption_label(above.text) else ""


def _pdf_item_kind(text: str) -> str | None:
    found = _PDF_ITEM.match(text)
    return found.lastgroup if found else None


def _pdf_text_of(blocks: list[tuple[_PdfParagraph | _PdfTable, int]]) -> Extracted:
    out = _Lines()
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


# Heading styles named in the writer's language, for files whose styles carry no outline level.
_HEADING_STYLE = re.compile(r"(?:heading|标题)\s*([1-9])", re.IGNORECASE)
# Word's XML, read through lxml's own find(): python-docx's properties cost a second per
# 20,000 paragraphs, more than reading the text.
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_PARAGRAPH, _TABLE, _VALUE = f"{_W}p", f"{_W}tbl", f"{_W}val"
_STYLE_ID = f"{_W}pPr/{_W}pStyle"
_OUTLINE_LEVEL = f"{_W}pPr/{_W}outlineLvl"
_LIST = f"{_W}pPr/{_W}numPr"  # a paragraph's or a style's list: numId and ilvl
_ROW, _CELL = f"{_W}tr", f"{_W}tc"
_HEADER_ROW = f"{_W}trPr/{_W}tblHeader"  # Word's "repeat as header row"
_OFF = ("0", "false", "off")
_GRID_BEFORE = f"{_W}trPr/{_W}gridBefore"
_GRID_SPAN, _VERTICAL_MERGE = f"{_W}tcPr/{_W}gridSpan", f"{_W}tcPr/{_W}vMerge"
# Word's own limit; a crafted span of a billion columns must not become a billion cells.
_DOCX_MAX_COLUMNS = 63


class _Style(NamedTuple):
    """What a paragraph style gives its paragraphs."""

    level: int | None  # its outline level (_style_level)
    list_id: str | None  # the list (w:numId) its paragraphs are items of
    list_level: str | None  # their level in it (w:ilvl)
    caption: bool  # Word's Caption style (题注)


class _Paragraph(NamedTuple):
    text: str
    level: int | None  # outline level: 1-9 a heading
    list_item: tuple[str, int] | None  # (numId, level) of the list it is an item of
    caption: bool  # in the Caption style


def _docx_text(data: bytes) -> Extracted:
    """Paragraphs and tables in document order, one line each paragraph and table row.

    Headings are marked with their level. A paragraph Word numbers or bullets gets its number
    as the reader sees it ("1. ", "（一）", "• ") and is an item; a table row is written with
    its header (_table_lines) and is a row, under the table's caption: a Caption-style
    paragraph right before the table (else right after it), or a short label right before it.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _check_parts(archive.infolist())
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.text.paragraph import Paragraph
    from lxml import etree

    document = docx.Document(io.BytesIO(data))
    styles = {style.style_id: style for style in document.styles}
    default_style = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    known: dict[str | None, _Style] = {}
    try:
        lists = document.part.part_related_by(RELATIONSHIP_TYPE.NUMBERING).element
    except KeyError:  # no numbering.xml, as some writers leave out: no lists
        lists = etree.Element(f"{_W}numbering")
    numbering = _Numbering(lists, styles)

    def text_of(element) -> str:
        return Paragraph(element, document).text

    def paragraph(element) -> _Paragraph:
        style_id = _setting(element, _STYLE_ID)
        if style_id not in known:
            known[style_id] = _paragraph_style(styles.get(style_id, default_style))
        style = known[style_id]
        level = _outline_level(element)
        # Its own list settings win over its style's, one by one; list 0 is "not numbered".
        list_id, list_level = _list_of(element)
        list_id, list_level = list_id or style.list_id, list_level or style.list_level
        item = None if list_id in (None, "0") else (list_id, _int(list_level, 0))
        level = style.level if level is None else level
        return _Paragraph(text_of(element), level, item, style.caption)

    out = _Lines()
    # Tables in their place, not after the text: a table's rows belong to the section they are
    # in. (Not document.iter_inner_content(): its XPath takes a second per 20,000 paragraphs.)
    body = list(document.element.body.iterchildren(_PARAGRAPH, _TABLE))
    tags = [element.tag for element in body] + [None, None]  # None: past the end
    caption = ""  # the caption of the next table, from the paragraph right before it
    caption_after = -1  # where a paragraph after a table is that table's caption
    for index, element in enumerate(body):
        if element.tag == _TABLE:
            # Else a Caption-style paragraph right after it, unless that one is right before
            # another table, and so that table's caption.
            if not caption and tags[index + 1] == _PARAGRAPH and tags[index + 2] != _TABLE:
                below = paragraph(body[index + 1])
                if below.caption:
                    caption, caption_after = below.text.strip(), index + 1
            out.table(*_docx_table(element, text_of), caption.rstrip("：:"))
            caption = ""
            continue
        found = paragraph(element)
        # Counted even when empty: Word numbers an empty item too.
        label = numbering.label(*found.list_item) if found.list_item else ""
        text = found.text.strip()
        if not text:
            continue
        if found.level:
            out.add(label + text, level=found.level)  # a numbered heading keeps its number
        elif index == caption_after:
            out.add(text, kind="caption")
        elif tags[index + 1] == _TABLE and (found.caption or _is_caption_label(text)):
            caption = text
            out.add(text, kind="caption")
        else:
            out.add(label + text, kind="item" if label else "")
    return out.extracted()


def _paragraph_style(style) -> _Style:
    """What `style` (None for a file without a default style) gives its paragraphs."""
    list_id = list_level = None
    base = style
    while base is not None and list_id is None and list_level is None:  # the nearest list
        list_id, list_level = _list_of(base.element)
        base = base.base_style
    name = (style.name or "").lower() if style is not None else ""
    return _Style(_style_level(style), list_id, list_level, name in ("caption", "题注"))


def _list_of(element) -> tuple[str | None, str | None]:
    """The numId and ilvl a paragraph's or a style's properties set, None where unset."""
    return _setting(element, f"{_LIST}/{_W}numId"), _setting(element, f"{_LIST}/{_W}ilvl")


def _setting(element, path: str) -> str | None:
    """The value (w:val) of the property at `path` under `element`; None where it is unset."""
    found = element.find(path)
    return None if found is None else found.get(_VALUE)


def _int(value: str | None, default: int) -> int:
    """A number from Word's XML; a missing or damaged one is the default."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _docx_table(table, text_of) -> tuple[list[list[str]], int]:
    """A Word table's cell texts by row and column, and how many rows are its header.

    A cell spanning columns (gridSpan) is repeated in each; one continuing a vertical merge
    (vMerge) repeats the cell above it. The header is the rows marked to repeat as header rows,
    else the first row of a table of three or more columns: in two columns the first is far
    more often labels ("姓名 | 张三"), which read right as "姓名：张三".
    """
    rows: list[list[str]] = []
    marked = 0  # leading rows marked as header rows
    for element in table.iterchildren(_ROW):
        row = [""] * min(_int(_setting(element, _GRID_BEFORE), 0), _DOCX_MAX_COLUMNS)
        above = rows[-1] if rows else []
        for cell in element.iterchildren(_CELL):
            columns = min(max(_int(_setting(cell, _GRID_SPAN), 1), 1), _DOCX_MAX_COLUMNS)
            merge = cell.find(_VERTICAL_MERGE)
            if merge is not None and merge.get(_VALUE, "continue") == "continue":
                text = above[len(row)] if len(row) < len(above) else ""
            else:  # every paragraph of the cell, of tables inside it too
                text = _one_line(" ".join(map(text_of, cell.iter(_PARAGRAPH))))
            row.extend([text] * columns)
        # An on/off property is on where present, unless its value says off.
        header = element.find(_HEADER_ROW) is not None
        if header and _setting(element, _HEADER_ROW) not in _OFF and marked == len(rows):
            marked += 1
        rows.append(row)
    if not marked and len(rows) > 1 and max(map(len, rows)) >= 3:
        marked = 1
    return rows, marked


class _Level(NamedTuple):
    """One level of a Word list (w:lvl)."""

    start: int
    format: str  # w:numFmt: decimal, chineseCounting, bullet, ...
    text: str  # w:lvlText: "%1." "（%1）" "%1.%2", %N being level N's number
    space: str  # what follows the number: Word's tab or space is one space here


class _Numbering:
    """Word's automatic numbers (numbering.xml), counted as paragraphs come, as Word counts:
    per list (numId) and level, a level starting again when one above it goes on."""

    def __init__(self, root, styles: dict) -> None:
        self._definitions = {
            e.get(f"{_W}abstractNumId"): e for e in root.iterchildren(f"{_W}abstractNum")
        }
        self._lists = {e.get(f"{_W}numId"): e for e in root.iterchildren(f"{_W}num")}
        self._styles = styles
        self._levels: dict[str, dict[int, _Level]] = {}
        self._counters: dict[str, dict[int, int]] = {}

    def label(self, list_id: str, level: int) -> str:
        """The number or bullet of the next item of list `list_id` at `level`, with the space
        after it; "" where the file defines no such list."""
        if list_id not in self._levels:
            self._levels[list_id] = self._read(list_id)
        levels = self._levels[list_id]
        if level not in levels:
            return ""
        counters = self._counters.setdefault(list_id, {})
        counters[level] = counters[level] + 1 if level in counters else levels[level].start
        for deeper in [other for other in counters if other > level]:
            del counters[deeper]
        if levels[level].format == "bullet":
            return "• "  # whatever the symbol font's character: Word's are private-use code points

        def number(reference: re.Match[str]) -> str:
            # A level above that has no item yet shows its start, as in Word.
            shown = levels.get(int(reference[1]) - 1, _Level(1, "decimal", "", ""))
            return _list_number(counters.get(int(reference[1]) - 1, shown.start), shown.format)

        label = re.sub(r"%([1-9])", number, levels[level].text)
        return label + levels[level].space if label else ""

    def _read(self, list_id: str) -> dict[int, _Level]:
        """The levels of a list: its definition's, with the list's own overrides."""
        found = self._lists.get(list_id)
        if found is None:
            return {}
        definition = self._definitions.get(_setting(found, f"{_W}abstractNumId"))
        # A definition that links to a list style (w:numStyleLink) is that style's list's.
        link = None if definition is None else _setting(definition, f"{_W}numStyleLink")
        style = None if link is None else self._styles.get(link)
        if style is not None:
            linked = self._lists.get(_list_of(style.element)[0])
            definition = None
            if linked is not None:
                definition = self._definitions.get(_setting(linked, f"{_W}abstractNumId"))
        levels = {}
        for level in () if definition is None else definition.iterchildren(f"{_W}lvl"):
            levels[_int(level.get(f"{_W}ilvl"), 0)] = _list_level(level)
        for override in found.iterchildren(f"{_W}lvlOverride"):
            number = _int(override.get(f"{_W}ilvl"), 0)
            replaced = override.find(f"{_W}lvl")
            if replaced is not None:
                levels[number] = _list_level(replaced)
            start = _setting(override, f"{_W}startOverride")
            if start is not None and number in levels:
                levels[number] = levels[number]._replace(start=_int(start, 0))
        return levels


def _list_level(element) -> _Level:
    return _Level(
        _int(_setting(element, f"{_W}start"), 0),  # Word's default: no start counts from 0
        _setting(element, f"{_W}numFmt") or "decimal",
        _setting(element, f"{_W}lvlText") or "",
        "" if _setting(element, f"{_W}suff") == "nothing" else " ",
    )


_CHINESE_DIGITS, _LEGAL_DIGITS = "零一二三四五六七八九", "零壹贰叁肆伍陆柒捌玖"
_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"))
_ROMAN += ((40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


def _list_number(value: int, format: str) -> str:
    """A list number in Word's number format (w:numFmt); decimal for formats not known here."""
    if format in ("chineseCounting", "chineseCountingThousand", "taiwaneseCounting"):
        return _chinese_number(value, _CHINESE_DIGITS, "十百千")
    if format == "chineseLegalSimplified":
        return _chinese_number(value, _LEGAL_DIGITS, "拾佰仟")
    if format == "ideographTraditional" and value > 0:
        return "甲乙丙丁戊己庚辛壬癸"[(value - 1) % 10]
    if format in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese") and 0 < value <= 20:
        return chr(0x2460 + value - 1)  # ① to ⑳
    if format in ("upperLetter", "lowerLetter") and value > 0:
        letter = chr(ord("a") + (value - 1) % 26) * ((value - 1) // 26 + 1)  # z, then aa
        return letter.upper() if format == "upperLetter" else letter
    if format in ("upperRoman", "lowerRoman") and 0 < value < 4000:
        roman = ""
        for worth, letters in _ROMAN:
            count, value = divmod(value, worth)
            roman += letters * count
        return roman.upper() if format == "upperRoman" else roman
    if format == "decimalZero":
        return f"{value:02d}"
    return "" if format == "none" else str(value)


def _chinese_number(value: int, digits: str, units: str) -> str:
    """A number in Chinese numerals, as Word counts: 十一, 一百零五, 二千零一十; from 10,000
    up in digits. `units` are those of ten, a hundred and a thousand."""
    if not 0 < value < 10_000:
        return str(value)
    out, zero = "", False
    for power, unit in ((1000, units[2]), (100, units[1]), (10, units[0]), (1, "")):
        digit = value // power % 10
        if digit:
            out += (digits[0] if zero else "") + digits[digit] + unit
            zero = False
        elif out:
            zero = True  # written only if a digit follows: 一百零五, but 二百
    # 十一, not 一十一; the legal form keeps its 壹拾壹.
    return out[1:] if 10 <= value < 20 and digits == _CHINESE_DIGITS else out


def _style_level(style) -> int | None:
    """A paragraph style's outline level, as Word decides it: the level the style sets, else
    the one of the style it is based on, and so on; a style named "Heading 2" or "标题 2"
    without one (some writers leave it out) is at the level its name says."""
    while style is not None:
        level = _outline_level(style.element)
        if level is not None:
            return level
        named = _HEADING_STYLE.fullmatch(style.name or "")
        if named:
            return int(named[1])
        style = style.base_style
    return None


def _outline_level(element) -> int | None:
    """The outline level a paragraph's or a style's properties set: 1 to 9, 0 for body text
    (which stops the search), None where they set none."""
    setting = element.find(_OUTLINE_LEVEL)
    if setting is None:
        return None
    try:
        value = int(setting.get(_VALUE))
    except (TypeError, ValueError):
        return None  # a damaged value: as if unset
    # Word stores levels 1-9 as 0-8, and 9 for body text.
    return value + 1 if 0 <= value <= 8 else 0


def _check_parts(parts: list[zipfile.ZipInfo]) -> None:
    """Refuse a .docx whose zip directory declares too much.

    Declared sizes may lie: zipfile never returns more than a part declares, but its read()
    inflates the whole part before cutting it, so a lying part is stopped by the memory cap.
    """
    if len(parts) > DOCX_MAX_PARTS:
        raise ExtractionError(
            f"the .docx holds {len(parts)} parts, over the {DOCX_MAX_PARTS} a Word file "
            "could need; it looks like a zip bomb"
        )
    xml = sum(part.file_size for part in parts if part.filename.endswith((".xml", ".rels")))
    if xml > DOCX_MAX_XML_BYTES:
        raise ExtractionError(
            f"the .docx unpacks to {xml / 1e6:.0f} MB of XML, over the limit of "
            f"{DOCX_MAX_XML_BYTES // 1_000_000} MB (about 1,500 pages); split the document"
        )
    total = sum(part.file_size for part in parts)
    if total > DOCX_MAX_UNPACKED_BYTES:
        raise ExtractionError(
            f"the .docx unpacks to {total / 1e6:.0f} MB, over the limit of "
            f"{DOCX_MAX_UNPACKED_BYTES // 1_000_000} MB; split the document"
        )
    for part in parts:
        if (
            part.file_size > DOCX_RATIO_MIN_BYTES
            and part.file_size > DOCX_MAX_RATIO * part.compress_size
        ):
            raise ExtractionError(
                f"the .docx part {part.filename} is compressed "
                f"{part.file_size / max(part.compress_size, 1):.0f}:1, as only zip bombs are"
            )


def _html_text(data: bytes) -> Extracted:
    """A page's text, a line to each block: headings marked with their level, list items
    with their numbers and table rows with their header (_table_lines) as units."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data.decode("utf-8"), "html.parser")
    # Scripts and styles are code, not content; they must never reach an answer.
    for element in soup(["script", "style", "noscript", "template"]):
        element.decompose()
    out = _Lines()
    _html_blocks(soup, out)
    return out.extracted()


# Elements inside a line of text; any other element begins and ends a line.
_HTML_INLINE = frozenset(
    {"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn"}
    | {"em", "font", "i", "img", "ins", "kbd", "label", "mark", "q", "rp", "rt", "ruby", "s"}
    | {"samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr"}
)
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# The HTML standard's limits on a cell's spans: no crafted span makes more cells than these.
_HTML_MAX_COLSPAN, _HTML_MAX_ROWSPAN = 1000, 65534


def _html_blocks(root, out: _Lines) -> None:
    """Write what is inside `root` into `out`, a line to each block.

    The tree is walked with a stack, not by recursion: pages nest elements tens of thousands
    deep. (Lists, data tables and headings recurse, through _html_line, as deep as they nest.)
    """
    from bs4.element import NavigableString, PreformattedString

    words: list[str] = []  # the text of the line being read

    def end_line() -> None:
        out.add(_one_line("".join(words)))
        words.clear()

    stack = [(iter(root.children), False)]  # each element's children, and if it is a block
    while stack:
        children, block = stack[-1]
        node = next(children, None)
        if node is None:
            stack.pop()
            if block:
                end_line()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctypes, CDATA
                words.append(node)
        elif node.name in _HTML_INLINE:
            stack.append((iter(node.children), False))
        else:
            end_line()
            if node.name in _HTML_HEADINGS:
                out.add(_html_line(node), level=int(node.name[1]))
            elif node.name in ("ol", "ul"):
                _html_list(node, out)
            elif node.name == "table" and (rows := _html_data_rows(node)) is not None:
                _html_table(node, rows, out)
            elif node.name == "pre":  # its lines are the author's
                for line in node.get_text().splitlines():
                    out.add(line)
            else:
                stack.append((iter(node.children), True))
    end_line()


def _html_line(element) -> str:
    """An element's text as one line (a cell's, an item's, a heading's)."""
    inner = _Lines()
    _html_blocks(element, inner)
    return " ".join(inner.lines)


def _html_list(element, out: _Lines) -> None:
    """A list's items as units, each with its number ("3. " in a list that starts at 3) or
    "• " in front; a list inside an item follows that item."""
    number = _html_number(element.get("start"), 1, 2**31) if element.name == "ol" else None
    for item in _html_children(element, "li"):
        inner = [part.extract() for part in _html_children(item, "ol", "ul")]
        text = _html_line(item)
        if text:
            out.add(f"{'•' if number is None else f'{number}.'} {text}", kind="item")
        if number is not None:
            number += 1  # an empty item takes its number too
        for part in inner:
            _html_list(part, out)


def _html_children(element, *names: str) -> list:
    """The element's children of these names. (Not find_all(recursive=False): its filters
    cost as much as the parse on a page of tables.)"""
    return [child for child in element.children if child.name in names]


def _html_data_rows(table) -> list[tuple[bool, list]] | None:
    """A table's own rows, each as whether it is in the thead and its cells; None for a table
    that lays the page out rather than holding data: one with tables or headings inside, or
    without a row of two cells, whose content is read as blocks."""
    if any(element.name in ("table", *_HTML_HEADINGS) for element in table.descendants):
        return None
    rows = []
    for child in _html_children(table, "tr", "thead", "tbody", "tfoot"):
        for row in [child] if child.name == "tr" else _html_children(child, "tr"):
            rows.append((child.name == "thead", _html_children(row, "td", "th")))
    return rows if any(len(cells) > 1 for _, cells in rows) else None


def _html_table(table, rows: list[tuple[bool, list]], out: _Lines) -> None:
    """A data table (its _html_data_rows): its caption, then its rows with their header: the
    rows of its thead, else its first rows of <th> cells alone."""
    caption = _html_children(table, "caption")
    title = _html_line(caption[0]) if caption else ""
    out.add(title, kind="caption")
    header_rows = 0
    for in_head, cells in rows:
        if not in_head and not (cells and all(cell.name == "th" for cell in cells)):
            break
        header_rows += 1
    grid: list[list[str]] = []
    spanned: dict[int, tuple[str, int]] = {}  # column → text of a cell above and rows it has left
    for _, cells in rows:
        line = {column: text for column, (text, _) in spanned.items()}
        spanned = {column: (text, left - 1) for column, (text, left) in spanned.items() if left > 1}
        column = 0
        for cell in cells:
            while column in line:
                column += 1
            text = _html_line(cell)
            down = _html_number(cell.get("rowspan"), 1, _HTML_MAX_ROWSPAN)
            for _ in range(_html_number(cell.get("colspan"), 1, _HTML_MAX_COLSPAN)):
                line[column] = text
                if down > 1:
                    spanned[column] = (text, down - 1)
                column += 1
        grid.append([line.get(place, "") for place in range(max(line, default=-1) + 1)])
    out.table(grid, header_rows, title)


def _html_number(value, default: int, limit: int) -> int:
    """A whole-number attribute (start, rowspan, colspan), from 1 to `limit`; else `default`."""
    try:
        return min(max(int(value), 1), limit)
    except (TypeError, ValueError):
        return default


def markdown_text(source: str) -> Extracted:
    """The text of a Markdown file as it reads rendered, a line to each block: headings marked
    with their level (their words, without the #), list items with their numbers and table
    rows with their header (_table_lines) as units. A table's caption is a short label right
    before it (_is_caption_label).

    Up to MARKDOWN_IN_PROCESS_CHARS it is parsed in this process, which costs no child; a
    longer file is read in the child, under its limits of time and memory.
    """
    data = source.encode("utf-8")
    return _markdown_text(data) if len(source) <= MARKDOWN_IN_PROCESS_CHARS else extract("md", data)


def _markdown_text(data: bytes) -> Extracted:
    """markdown_text's reading of UTF-8 Markdown, in either process."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(data.decode("utf-8"))
    out = _Lines()
    numbers: list[int | None] = []  # each open list's next number (None: bullets), inner last
    item: list[str] = []  # the number and paragraphs of the list item not yet written
    caption = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        # An item is its number and its paragraphs up to the first other block (a list inside it).
        if item and token.type not in ("paragraph_open", "inline", "paragraph_close"):
            if len(item) > 1:  # not an empty item
                out.add(" ".join(item), kind="item")
            item.clear()
        if token.type == "heading_open":
            out.add(_one_line(_markdown_inline(tokens[index + 1])), level=int(token.tag[1]))
        elif token.type == "paragraph_open":
            text = _markdown_inline(tokens[index + 1])  # its line breaks kept, if hard
            line = _one_line(text)
            table_next = index + 3 < len(tokens) and tokens[index + 3].type == "table_open"
            if item:
                item.append(line)
            elif table_next and _is_caption_label(line):
                caption = line.rstrip("：:")
                out.add(line, kind="caption")
            else:
                out.add(text)
        elif token.type == "bullet_list_open":
            numbers.append(None)
        elif token.type == "ordered_list_open":
            start = token.attrGet("start")  # set where it is not 1
            numbers.append(1 if start is None else int(start))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            numbers.pop()
        elif token.type == "list_item_open":
            number = numbers[-1]
            item.append("•" if number is None else f"{number}{token.markup}")
            numbers[-1] = None if number is None else number + 1
        elif token.type == "table_open":
            rows: list[list[str]] = []
            while tokens[index].type != "table_close":
                if tokens[index].type == "tr_open":
                    rows.append([])
                elif tokens[index].type == "inline":
                    rows[-1].append(_one_line(_markdown_inline(tokens[index])))
                index += 1
            out.table(rows, 1, caption)  # a Markdown table's first row is always its header
            caption = ""
        elif token.type in ("fence", "code_block"):
            for line in token.content.splitlines():
                out.add(line)
        elif token.type == "html_block":  # the text of HTML written into the Markdown
            for line in re.sub(r"<[^>]*>", " ", token.content).splitlines():
                out.add(line)
        index += 1
    return out.extracted()


def _markdown_inline(token) -> str:
    """An inline token's text as it reads: its words, code and images' alt text without the
    markup; a soft line break a space, a hard one a newline."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "text_special", "code_inline", "image"):
            parts.append(child.content)  # an image's content is its alt text
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" " if child.type == "softbreak" else "\n")
    return "".join(parts)


def _check_length(chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise ExtractionError(
            f"it holds over {MAX_TEXT_CHARS:,} characters of text, the limit for one file; "
            "split it into smaller files"
        )


_READERS = {"pdf": _pdf_text, "docx": _docx_text, "html": _html_text, "md": _markdown_text}


def _main() -> None:
    """The child: limits first, then the file from stdin, then one JSON reply on stdout."""
    kind, memory = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # CPU seconds, as a backstop that ends a child whose parent died before it could kill it.
    resource.setrlimit(resource.RLIMIT_CPU, (EXTRACT_SECONDS + 5, EXTRACT_SECONDS + 10))
    # pypdf logs every damaged object it skips; the reply's reason says what matters.
    logging.disable(logging.CRITICAL)
    data = sys.stdin.buffer.read()
    try:
        extracted = _READERS[kind](data)
        _check_length(len(extracted.text))
        reply = {"text": extracted.text, "headings": extracted.headings, "units": extracted.units}
    except ExtractionError as error:
        reply = {"error": str(error), "detail": error.detail}
    except MemoryError:
        reply = {
            "error": f"reading it needs over {memory / 1e9:g} GB of memory, the limit for one "
            "file; split it into smaller files",
            "detail": "MemoryError",
        }
    except Exception as error:  # any failure of a library on any input is the file's fault
        reply = {"error": _UNREADABLE[kind], "detail": f"{type(error).__name__}: {error}"[:500]}
    sys.stdout.buffer.write(json.dumps(reply, ensure_ascii=False).encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    _main()
