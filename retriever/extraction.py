"""Text out of PDF, Word and HTML files, each read in a child process with bounded time and memory.

These formats are parsed by libraries (pypdf, python-docx, BeautifulSoup) that a damaged or
crafted file can drive into any exception, minutes of work or gigabytes of memory: a 200 KB
PDF holding a deflate stream of 200 MB, a 340 KB .docx that unpacks to 100 MB of XML. So
`extract` reads one file in a fresh Python process that is killed after EXTRACT_SECONDS and
whose address space is capped at CHILD_MEMORY_BYTES, and every failure, whatever the library
raised, comes back as an ExtractionError whose message is the reason in words.

The child is a new interpreter (fork + exec), not a fork of the caller: the caller may hold
ONNX Runtime and FAISS thread pools, which a bare fork copies in an unknown state, and its
gigabytes of mapped libraries would leave no room under an address-space cap. The child runs
this file as a script, so it imports one parsing library and nothing of the retriever package;
that costs 0.2–0.3 s a file, for these formats only (plain text is read in-process).

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
    kind: str  # "row" or "item"
    caption: str = ""  # what the unit sits under besides the headings: its table's caption


@dataclass(frozen=True)
class Extracted:
    """A file's text, and the headings and units its format marks, in the order of the text."""

    text: str
    headings: tuple[MarkedHeading, ...] = ()
    units: tuple[MarkedUnit, ...] = ()


def extract(kind: str, data: bytes) -> Extracted:
    """The text of a file: `kind` is "pdf", "docx" or "html" (`data` then being UTF-8 markup).

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
            pages, chars = [], 0
            for page in reader.pages:
                pages.append((page.extract_text() or "").translate(RADICALS).strip())
                chars += len(pages[-1])
                _check_length(chars)  # stop as soon as the text is too long
        except LimitReachedError as error:
            raise ExtractionError(
                "the PDF goes past the reader's safety limits (a stream that unpacks to over "
                f"{PDF_MAX_STREAM_BYTES // 1_000_000} MB, or structures too large or deep); "
                "it looks built to exhaust memory",
                str(error),
            ) from None
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise ExtractionError("the PDF has no text layer (a scan?); run OCR on it first")
    return Extracted(text)


# Heading styles named in the writer's language, for files whose styles carry no outline level.
_HEADING_STYLE = re.compile(r"(?:heading|标题)\s*([1-9])", re.IGNORECASE)
# Word's XML, read through lxml's own find(): python-docx's properties cost a second per
# 20,000 paragraphs, more than reading the text.
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_PARAGRAPH, _TABLE, _VALUE = f"{_W}p", f"{_W}tbl", f"{_W}val"
_STYLE_ID = f"{_W}pPr/{_W}pStyle"
_OUTLINE_LEVEL = f"{_W}pPr/{_W}outlineLvl"


def _docx_text(data: bytes) -> Extracted:
    """Paragraphs and table rows in document order, one line each; headings by their level."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _check_parts(archive.infolist())
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    styles = {style.style_id: style for style in document.styles}
    default_style = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    style_levels: dict[str | None, int | None] = {}
    lines: list[str] = []
    headings: list[MarkedHeading] = []
    offset = 0
    # Tables in their place, not after the text: a table's rows belong to the section they are
    # in. (Not document.iter_inner_content(): its XPath takes a second per 20,000 paragraphs.)
    for element in document.element.body.iterchildren(_PARAGRAPH, _TABLE):
        level = None
        if element.tag == _TABLE:
            rows = Table(element, document).rows
            texts = [" | ".join(cell.text for cell in row.cells) for row in rows]
        else:
            texts = [Paragraph(element, document).text]
            level = _outline_level(element)
            if level is None:
                named = element.find(_STYLE_ID)
                style_id = None if named is None else named.get(_VALUE)
                if style_id not in style_levels:
                    style = styles.get(style_id, default_style)
                    style_levels[style_id] = _style_level(style)
                level = style_levels[style_id]
        for text in texts:
            if not text.strip():
                continue
            if level:
                headings.append(MarkedHeading(offset + len(text) - len(text.lstrip()), level))
            lines.append(text)
            offset += len(text) + 1
    return Extracted("\n".join(lines), tuple(headings))


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
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data.decode("utf-8"), "html.parser")
    # Scripts and styles are code, not content; they must never reach an answer.
    for element in soup(["script", "style", "noscript", "template"]):
        element.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return Extracted("\n".join(line for line in lines if line))


def _check_length(chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise ExtractionError(
            f"it holds over {MAX_TEXT_CHARS:,} characters of text, the limit for one file; "
            "split it into smaller files"
        )


_READERS = {"pdf": _pdf_text, "docx": _docx_text, "html": _html_text}


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
