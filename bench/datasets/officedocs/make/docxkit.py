"""Small helpers over python-docx for writing the sets' Word files the way Word users do.

Headings use the built-in "Heading 1/2" styles, lists use "List Number" / "List Number 2" /
"List Bullet" (Word's automatic numbering: the numbers are not in the text), and tables are
real Word tables with a header row (marked to repeat on each page) and merged cells.
Each numbered list restarts at 1, as a new list in Word does.
"""

from __future__ import annotations

import datetime

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

FIXED_DATE = datetime.datetime(2025, 1, 1, 9, 0, 0)


def new_document(title: str, author: str) -> docx.document.Document:
    document = docx.Document()
    normal = document.styles["Normal"]
    normal.font.size = Pt(10.5)
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), "宋体")
    props = document.core_properties
    props.title, props.author, props.last_modified_by = title, author, author
    props.created = props.modified = FIXED_DATE
    props.revision = 1
    return document


def title(document, text: str, subtitle: str | None = None) -> None:
    document.add_heading(text, level=0).alignment = WD_ALIGN_PARAGRAPH.CENTER
    if subtitle:
        document.add_paragraph(subtitle).alignment = WD_ALIGN_PARAGRAPH.CENTER


def _abstract_of(document, style: str) -> str:
    """The abstractNumId behind a list style's numbering."""
    num_id = document.styles[style].element.pPr.numPr.numId.val
    numbering = document.part.numbering_part.element
    for num in numbering.findall(qn("w:num")):
        if num.get(qn("w:numId")) == str(num_id):
            return num.find(qn("w:abstractNumId")).get(qn("w:val"))
    raise KeyError(style)


def _new_num(document, style: str) -> int:
    """A new numbering instance of the style's list that starts again at 1."""
    numbering = document.part.numbering_part.element
    abstract = _abstract_of(document, style)
    used = [int(n.get(qn("w:numId"))) for n in numbering.findall(qn("w:num"))]
    num_id = max(used) + 1
    num = OxmlElement("w:num")
    num.set(qn("w:numId"), str(num_id))
    ref = OxmlElement("w:abstractNumId")
    ref.set(qn("w:val"), abstract)
    num.append(ref)
    override = OxmlElement("w:lvlOverride")
    override.set(qn("w:ilvl"), "0")
    start = OxmlElement("w:startOverride")
    start.set(qn("w:val"), "1")
    override.append(start)
    num.append(override)
    numbering.append(num)
    return num_id


def _set_num(paragraph, num_id: int) -> None:
    p_pr = paragraph._p.get_or_add_pPr()
    num_pr = OxmlElement("w:numPr")
    ilvl = OxmlElement("w:ilvl")
    ilvl.set(qn("w:val"), "0")
    num = OxmlElement("w:numId")
    num.set(qn("w:val"), str(num_id))
    num_pr.extend([ilvl, num])
    p_pr.append(num_pr)


def numbered(document, items: list) -> None:
    """A numbered list; an item may be (text, [sub-items]) for a nested numbered list."""
    num_id = _new_num(document, "List Number")
    for item in items:
        text, subs = (item, []) if isinstance(item, str) else item
        _set_num(document.add_paragraph(text, style="List Number"), num_id)
        if subs:
            sub_id = _new_num(document, "List Number 2")
            for sub in subs:
                _set_num(document.add_paragraph(sub, style="List Number 2"), sub_id)


def bullets(document, items: list[str], level: int = 1) -> None:
    style = "List Bullet" if level == 1 else f"List Bullet {level}"
    for item in items:
        document.add_paragraph(item, style=style)


def table(document, rows: list[list[str]], header_rows: int = 1, merges=(), widths=None):
    """A grid table; `merges` are ((row, col), (row, col), text) spans set after merging."""
    grid = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
    grid.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text is not None:
                grid.cell(r, c).text = text
    for (r1, c1), (r2, c2), text in merges:
        merged = grid.cell(r1, c1).merge(grid.cell(r2, c2))
        merged.text = text
    for r in range(header_rows):
        tr_pr = grid.rows[r]._tr.get_or_add_trPr()
        header = OxmlElement("w:tblHeader")
        tr_pr.append(header)
        for cell in grid.rows[r].cells:
            for paragraph in cell.paragraphs:
                for run in paragraph.runs:
                    run.bold = True
    if widths:
        for row in grid.rows:
            for cell, width in zip(row.cells, widths, strict=False):
                cell.width = width
    return grid


def running_header_footer(document, header: str, footer: str) -> None:
    """A page header line and a footer "<footer> 第 N 页 共 M 页" with Word's PAGE/NUMPAGES
    fields, on every page of the document's section."""
    section = document.sections[0]
    section.header.paragraphs[0].text = header
    section.header.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.add_run(f"{footer} 第 ")
    _field(paragraph, "PAGE")
    paragraph.add_run(" 页 共 ")
    _field(paragraph, "NUMPAGES")
    paragraph.add_run(" 页")


def _field(paragraph, code: str) -> None:
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), f" {code} ")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)
