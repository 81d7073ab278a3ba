"""PDFs read as their pages lay them out (issue 22, item 1): lines a wrap or a page break cut
are one sentence again, page headers, footers and numbers are gone, a ruled table is one line
a row under its header, marked as a row unit, also where it runs on over a page break.

Two kinds of PDF, both made here: one laid out by hand (tests/conftest.layout_pdf: a table ruled
with drawn lines, as office suites print them, page numbers, a repeated page header), and the
realistic one, a web page printed by Chromium (tables ruled by the cells' borders, Chromium's
own print header and footer, Kangxi radicals for common ideographs).
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pypdf
import pytest
from conftest import layout_pdf, page_pdf

from retriever.readers import Extracted, ExtractionError, extract, pdf
from retriever.readers.pdf_layout import RADICALS

CHROMIUM = Path("/usr/bin/chromium")
RADICAL = re.compile("[\u2e80-\u2fdf]")

SENTENCE = (
    "员工因公出差乘坐飞机、火车、轮船等交通工具的，"
    "凭有效票据按规定标准报销，超出标准的费用由个人自行承担。"
)
ROWS = [
    "城市：一线城市；职级：经理；上限：800元",
    "城市：一线城市；职级：员工；上限：500元",  # under a cell merged over two rows
    "城市：省会城市；职级：全体；上限：400元",
    "城市：其他城市；职级：全体；上限：300元",  # on the next page, under no header
    "城市：县城；职级：全体；上限：200元",
]


def ruled_table(top: float, rows: list[list[str]], merged_below: set[int] = frozenset()) -> list:
    """A table of three columns ruled with drawn lines, rows 20 points high from `top` down.
    The rules numbered in `merged_below` (0 the table's top) leave out the first column: the
    first cells above and below such a rule are one merged cell."""
    columns = [72, 172, 262, 352]
    items: list = []
    for index, row in enumerate(rows):
        bottom = top - 20 * (index + 1)
        for column, text in enumerate(row):
            if text:
                items.append(("text", columns[column] + 4, bottom + 6, 12, text))
    for index in range(len(rows) + 1):
        y = top - 20 * index
        start = columns[1] if index in merged_below else columns[0]
        items.append(("line", start, y, columns[-1], y))
    items += [("line", x, top, x, top - 20 * len(rows)) for x in columns]
    return items


def header_and_number(number: str) -> list:
    return [("text", 72, 760, 9, "公司内部资料 仅供参考"), ("text", 290, 40, 9, number)]


def handmade_pdf() -> bytes:
    """Three pages: a sentence wrapped over three lines (with Kangxi radicals, as Chromium
    writes 用 and 门), a hyphenated English word, a ruled table from page 1 onto page 2, a
    sentence over the break from page 2 to 3, a list; a page header and numbers on each."""
    page1 = [
        *header_and_number("第 1 页"),
        ("text", 72, 720, 16, "差旅管理规定"),
        ("text", 72, 690, 12, "员工因公出差乘坐飞机、火车、轮船等交通工"),
        ("text", 72, 672, 12, "具的，凭有效票据按规定标准报销，超出标准"),
        ("text", 72, 654, 12, "的费⽤由个⼈⾃⾏承担。"),
        ("text", 72, 620, 12, "Claims are paid after the reimburse-"),
        ("text", 72, 602, 12, "ment office checks every receipt."),
        ("text", 72, 560, 12, "表1 住宿标准"),
        *ruled_table(
            540,
            [
                ["城市", "职级", "上限"],
                ["一线城市", "经理", "800元"],
                ["", "员工", "500元"],
                ["省会城市", "全体", "400元"],
            ],
            merged_below={2},
        ),
    ]
    page2 = [
        *header_and_number("- 2 -"),
        *ruled_table(720, [["其他城市", "全体", "300元"], ["县城", "全体", "200元"]]),
        ("text", 72, 640, 12, "以上标准自发布之日起执行。"),
        ("text", 72, 100, 12, "各部⻔应当严格执行本规定，不得擅自提高住"),
    ]
    page3 = [
        *header_and_number("3 / 3"),
        ("text", 72, 720, 12, "宿标准或者扩大报销范围。"),
        ("text", 72, 690, 12, "报销流程如下："),
        ("text", 72, 672, 12, "1. 提交申请"),
        ("text", 72, 654, 12, "2. 部门审批"),
        # Full lines without a sentence's end: a paragraph's gap, a numbered clause follow.
        ("text", 72, 610, 12, "本规定由财务部负责解释并根据实际情况修订"),
        ("text", 72, 570, 12, "附则部分另行规定，各部门应当遵照执行本规"),
        ("text", 72, 552, 12, "第二条 本规定自发布之日起施行。"),
    ]
    return layout_pdf([page1, page2, page3])


@pytest.fixture(scope="module")
def handmade() -> Extracted:
    return extract("pdf", handmade_pdf())


def lines_of(extracted: Extracted) -> list[str]:
    return extracted.text.split("\n")


def test_a_sentence_wrapped_over_three_lines_is_one_line(handmade: Extracted) -> None:
    assert SENTENCE in lines_of(handmade)
    assert "Claims are paid after the reimbursement office checks every receipt." in lines_of(
        handmade
    ), "a space between Latin words, none left of the hyphen"


def test_a_sentence_over_a_page_break_is_one_line(handmade: Extracted) -> None:
    assert "各部门应当严格执行本规定，不得擅自提高住宿标准或者扩大报销范围。" in lines_of(handmade)


def test_a_paragraph_gap_or_a_numbered_clause_starts_a_new_line(handmade: Extracted) -> None:
    lines = lines_of(handmade)
    assert lines[-3:] == [
        "本规定由财务部负责解释并根据实际情况修订",
        "附则部分另行规定，各部门应当遵照执行本规",
        "第二条 本规定自发布之日起施行。",
    ]


def test_page_headers_and_numbers_are_dropped(handmade: Extracted) -> None:
    for dropped in ("公司内部资料", "第 1 页", "- 2 -", "3 / 3"):
        assert dropped not in handmade.text
    assert lines_of(handmade)[0] == "差旅管理规定"


def test_kangxi_radicals_are_folded(handmade: Extracted) -> None:
    assert not RADICAL.search(handmade.text)
    assert "费用由个人自行承担" in handmade.text and "各部门" in handmade.text


def test_a_ruled_table_is_a_row_a_line_under_its_header_over_a_page_break(
    handmade: Extracted,
) -> None:
    rows = [unit for unit in handmade.units if unit.kind == "row"]
    assert [handmade.text[unit.start : unit.end] for unit in rows] == ROWS
    assert {unit.caption for unit in rows} == {"表1 住宿标准"}
    captions = [unit for unit in handmade.units if unit.kind == "caption"]
    assert [handmade.text[unit.start : unit.end] for unit in captions] == ["表1 住宿标准"]
    lines = lines_of(handmade)
    assert lines[lines.index("表1 住宿标准") + 1 :][: len(ROWS) + 1] == [
        *ROWS,
        "以上标准自发布之日起执行。",
    ], "the table's text is not repeated as loose lines"


def test_a_run_of_numbered_lines_is_marked_as_list_items(handmade: Extracted) -> None:
    items = [handmade.text[unit.start : unit.end] for unit in handmade.units if unit.kind == "item"]
    assert items == ["1. 提交申请", "2. 部门审批"]
    assert "报销流程如下：" in lines_of(handmade)


def test_a_long_pdf_is_read_as_plain_text_with_the_same_clean_up(monkeypatch) -> None:
    """Past PDF_LAYOUT_MAX_PAGES pypdf reads the text (faster, no tables): lines still join
    by their punctuation and length, and page headers and numbers still go."""
    monkeypatch.setattr(pdf, "PDF_LAYOUT_MAX_PAGES", 2)
    plain = pdf.pdf_text(handmade_pdf())  # in this process, to see the patched limit
    assert SENTENCE in lines_of(plain)
    for dropped in ("公司内部资料", "第 1 页", "- 2 -", "3 / 3"):
        assert dropped not in plain.text
    assert not RADICAL.search(plain.text)


def test_a_run_length_bomb_is_refused() -> None:
    """pdfminer has no cap on what a stream unpacks to: its decoders are bounded as pypdf's
    are (the deflate bomb is in tests/retriever/test_reader_safety.py). 800 KB that unpack to
    51 MB."""
    bomb = page_pdf(bytes([129, 32]) * 400_000 + bytes([128]), b"/Filter /RunLengthDecode ")
    with pytest.raises(ExtractionError, match="the PDF goes past the reader's safety limits"):
        extract("pdf", bomb)


# --- a web page printed by Chromium ---------------------------------------------------------

PAGE = """<html lang="zh-CN"><head><meta charset="utf-8"><title>差旅管理规定</title>
<style>
  body {{ width: 330px; font: 14px 'Noto Sans CJK SC'; }}
  table {{ border-collapse: collapse; }}
  th, td {{ border: 1px solid #444; padding: 3px; }}
</style></head><body>
<h1>差旅管理规定</h1>
<p>{sentence}</p>
<p>Receipts must be kept for audit purposes and handed to the finance office within thirty
days of return.</p>
<p>表1 住宿标准</p>
<table><thead><tr><th>城市</th><th>职级</th><th>每晚上限</th></tr></thead>
<tbody>{lodging}</tbody></table>
<p>表2 交通标准</p>
<table><tr><th>交通工具</th><th>职级</th><th>等级</th></tr>{travel}</table>
<p>以上标准自发布之日起执行。</p>
</body></html>"""
LODGING = [(f"城市{i:02d}", "经理" if i % 2 else "员工", f"{300 + 10 * i}元") for i in range(45)]
TRAVEL = [(f"工具{i:02d}", "全体", "二等座" if i % 2 else "经济舱") for i in range(45)]


def html_rows(rows: list[tuple[str, str, str]]) -> str:
    return "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> tuple[Extracted, bytes]:
    """The page printed as Chromium prints it, with its own header and footer on each page."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium: scripts/install-browser.sh")
    folder = tmp_path_factory.mktemp("printed")
    page = folder / "page.html"
    page.write_text(
        PAGE.format(sentence=SENTENCE, lodging=html_rows(LODGING), travel=html_rows(TRAVEL)),
        encoding="utf-8",
    )
    pdf = folder / "page.pdf"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return extract("pdf", pdf.read_bytes()), pdf.read_bytes()


def test_printed_page_holds_what_the_test_means(printed: tuple[Extracted, bytes]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(printed[1]))
    raw = [page.extract_text() for page in reader.pages]
    assert len(raw) >= 3, "both tables run over a page break"
    assert any("page.html" in text for text in raw), "Chromium printed its footer"
    assert any(RADICAL.search(text) for text in raw), "Chromium wrote Kangxi radicals"
    folded = [text.translate(RADICALS) for text in raw]
    assert any(SENTENCE[:10] in text and SENTENCE not in text for text in folded), "wrapped"


def test_printed_sentences_are_whole_and_radicals_folded(printed: tuple[Extracted, bytes]) -> None:
    extracted, _ = printed
    lines = lines_of(extracted)
    assert SENTENCE in lines
    assert (
        "Receipts must be kept for audit purposes and handed to the finance office within "
        "thirty days of return." in lines
    )
    assert not RADICAL.search(extracted.text)


def test_chromiums_print_header_and_footer_are_dropped(printed: tuple[Extracted, bytes]) -> None:
    extracted, _ = printed
    assert "file://" not in extracted.text
    assert not re.search(r"\d{1,2}:\d{2}", extracted.text), "the date and time of printing"
    assert not re.search(r"^\d+\s*/\s*\d+$", extracted.text, re.MULTILINE)
    assert lines_of(extracted).count("差旅管理规定") == 1, "the heading, not the page's title"


@pytest.mark.parametrize(
    ("caption", "names", "rows"),
    [
        ("表1 住宿标准", ("城市", "职级", "每晚上限"), LODGING),  # header repeated on each page
        ("表2 交通标准", ("交通工具", "职级", "等级"), TRAVEL),  # header on the first page only
    ],
)
def test_a_printed_table_is_one_table_over_page_breaks(
    printed: tuple[Extracted, bytes], caption: str, names: tuple, rows: list
) -> None:
    extracted, _ = printed
    units = [unit for unit in extracted.units if unit.caption == caption]
    assert all(unit.kind == "row" for unit in units)
    assert [extracted.text[unit.start : unit.end] for unit in units] == [
        "；".join(f"{name}：{value}" for name, value in zip(names, row, strict=True))
        for row in rows
    ]
    assert "城市：城市；" not in extracted.text, "a header repeated on a new page is no row"
