"""A Word .docx file's text: paragraphs and tables in document order, headings with their
outline level, list items with their numbers (word_numbering), table rows with their header,
each under its table's caption. The file's zip directory is judged before anything is
inflated."""

from __future__ import annotations

import io
import re
import zipfile
from typing import NamedTuple

from .units import Extracted, ExtractionError, Lines, is_caption_label, one_line
from .word_numbering import VALUE, Numbering, W, list_of, value_of, whole_number

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

# Heading styles named in the writer's language, for files whose styles carry no outline level.
_HEADING_STYLE = re.compile(r"(?:heading|标题)\s*([1-9])", re.IGNORECASE)
_PARAGRAPH, _TABLE = f"{W}p", f"{W}tbl"
_STYLE_ID = f"{W}pPr/{W}pStyle"
_OUTLINE_LEVEL = f"{W}pPr/{W}outlineLvl"
_ROW, _CELL = f"{W}tr", f"{W}tc"
_HEADER_ROW = f"{W}trPr/{W}tblHeader"  # Word's "repeat as header row"
_OFF = ("0", "false", "off")
_GRID_BEFORE = f"{W}trPr/{W}gridBefore"
_GRID_SPAN, _VERTICAL_MERGE = f"{W}tcPr/{W}gridSpan", f"{W}tcPr/{W}vMerge"
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


def docx_text(data: bytes) -> Extracted:
    """Paragraphs and tables in document order, one line each paragraph and table row.

    Headings are marked with their level. A paragraph Word numbers or bullets gets its number
    as the reader sees it ("1. ", "（一）", "• ") and is an item; a table row is written with
    its header (table_lines) and is a row, under the table's caption: a Caption-style
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
        lists = etree.Element(f"{W}numbering")
    numbering = Numbering(lists, styles)

    def text_of(element) -> str:
        return Paragraph(element, document).text

    def paragraph(element) -> _Paragraph:
        style_id = value_of(element, _STYLE_ID)
        if style_id not in known:
            known[style_id] = _paragraph_style(styles.get(style_id, default_style))
        style = known[style_id]
        level = _outline_level(element)
        # Its own list settings win over its style's, one by one; list 0 is "not numbered".
        list_id, list_level = list_of(element)
        list_id, list_level = list_id or style.list_id, list_level or style.list_level
        item = None if list_id in (None, "0") else (list_id, whole_number(list_level, 0))
        level = style.level if level is None else level
        return _Paragraph(text_of(element), level, item, style.caption)

    out = Lines()
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
        elif tags[index + 1] == _TABLE and (found.caption or is_caption_label(text)):
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
        list_id, list_level = list_of(base.element)
        base = base.base_style
    name = (style.name or "").lower() if style is not None else ""
    return _Style(_style_level(style), list_id, list_level, name in ("caption", "题注"))


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
        row = [""] * min(whole_number(value_of(element, _GRID_BEFORE), 0), _DOCX_MAX_COLUMNS)
        above = rows[-1] if rows else []
        for cell in element.iterchildren(_CELL):
            columns = min(max(whole_number(value_of(cell, _GRID_SPAN), 1), 1), _DOCX_MAX_COLUMNS)
            merge = cell.find(_VERTICAL_MERGE)
            if merge is not None and merge.get(VALUE, "continue") == "continue":
                text = above[len(row)] if len(row) < len(above) else ""
            else:  # every paragraph of the cell, of tables inside it too
                text = one_line(" ".join(map(text_of, cell.iter(_PARAGRAPH))))
            row.extend([text] * columns)
        # An on/off property is on where present, unless its value says off.
        header = element.find(_HEADER_ROW) is not None
        if header and value_of(element, _HEADER_ROW) not in _OFF and marked == len(rows):
            marked += 1
        rows.append(row)
    if not marked and len(rows) > 1 and max(map(len, rows)) >= 3:
        marked = 1
    return rows, marked


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
        value = int(setting.get(VALUE))
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
