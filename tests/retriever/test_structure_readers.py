"""Word, HTML and Markdown read as structure (issue 22): a table row is one line with its
header and a unit of its own, a list item carries the number the reader sees, headings keep
their levels, and every offset points into the text exactly."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn

from retriever.chunking import chunk_text
from retriever.corpus import extract_document
from retriever.readers import (
    Extracted,
    ExtractionError,
    MarkedHeading,
    MarkedUnit,
    markdown,
    markdown_text,
    units,
)
from retriever.readers.html import html_text
from retriever.readers.word import docx_text
from retriever.readers.word_numbering import list_number
from retriever.text import CorpusError


def check_offsets(extracted: Extracted) -> None:
    """Every heading starts a line and every unit is whole lines, exactly where it says."""
    text = extracted.text
    starts = {0} | {index + 1 for index, char in enumerate(text) if char == "\n"}
    for heading in extracted.headings:
        assert heading.offset in starts
    for unit in extracted.units:
        assert unit.start in starts and (unit.end == len(text) or text[unit.end] == "\n")
        assert "\n" not in text[unit.start : unit.end]


def units_of(extracted: Extracted) -> list[tuple[str, str, str]]:
    return [(extracted.text[u.start : u.end], u.kind, u.caption) for u in extracted.units]


def headings_of(extracted: Extracted) -> list[tuple[str, int]]:
    """Each heading's line and level."""
    text = extracted.text
    return [(text[h.offset :].split("\n", 1)[0], h.level) for h in extracted.headings]


def chunks_of(extracted: Extracted) -> list[tuple[str, str]]:
    chunks = chunk_text(
        extracted.text, marked_headings=extracted.headings, marked_units=extracted.units
    )
    for chunk in chunks:
        assert extracted.text[chunk.start : chunk.end] == chunk.text
    return [(chunk.heading, chunk.text) for chunk in chunks]


# ------------------------------------------------------------------------------------- Word

# A list of two levels as Word writes one: "1." then "（一）" right after it (suffix nothing).
ABSTRACT_LIST = (
    f'<w:abstractNum {nsdecls("w")} w:abstractNumId="90">'
    '<w:multiLevelType w:val="multilevel"/>'
    '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
    '<w:lvlText w:val="%1."/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/>'
    '<w:suff w:val="nothing"/><w:lvlText w:val="（%2）"/></w:lvl>'
    "</w:abstractNum>"
)
LISTS = (
    f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>',
    # The same list again, restarted at 5 (Word's "set numbering value").
    f'<w:num {nsdecls("w")} w:numId="91"><w:abstractNumId w:val="90"/>'
    '<w:lvlOverride w:ilvl="0"><w:startOverride w:val="5"/></w:lvlOverride></w:num>',
)


def numbered(document, text: str, list_id: str, level: int) -> None:
    paragraph = document.add_paragraph(text)
    settings = parse_xml(
        f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="{list_id}"/></w:numPr>'
    )
    paragraph._p.get_or_add_pPr().append(settings)


def fill(row, texts: list[str]) -> None:
    for cell, text in zip(row.cells, texts, strict=True):
        cell.text = text


def handbook_docx() -> bytes:
    document = docx.Document()
    numbering = document.part.numbering_part.element
    first_list = numbering.find(qn("w:num"))
    first_list.addprevious(parse_xml(ABSTRACT_LIST))
    for definition in LISTS:
        numbering.append(parse_xml(definition))

    document.add_heading("员工手册", level=1)
    document.add_heading("一、假期", level=2)
    document.add_paragraph("表1 假期标准", style="Caption")
    leave = document.add_table(rows=5, cols=4)
    fill(leave.rows[0], ["类别", "假别", "天数", "工资"])
    fill(leave.rows[1], ["法定假", "婚假", "3天", "全额发放"])
    fill(leave.rows[2], ["", "产假", "158天", "全额发放"])
    fill(leave.rows[3], ["", "丧假", "3天", "全额\n发放"])
    fill(leave.rows[4], ["其他", "事假", "", ""])
    leave.cell(1, 0).merge(leave.cell(3, 0))  # vertical: 法定假 over three rows
    leave.cell(4, 2).merge(leave.cell(4, 3)).text = "不超过30天"  # horizontal
    document.add_paragraph("其他假期按国家规定执行，由人事部统一解释。")
    document.add_paragraph("审批权限如下：")
    approval = document.add_table(rows=3, cols=3)
    fill(approval.rows[0], ["事项", "审批人", ""])
    approval.cell(0, 1).merge(approval.cell(0, 2)).text = "审批人"
    fill(approval.rows[1], ["五千元以下", "部门负责人", "财务经理"])
    fill(approval.rows[2], ["五千元以上", "总经理", ""])
    approval.cell(2, 1).merge(approval.cell(2, 2)).text = "总经理"  # the same pair, once

    document.add_heading("二、请假流程", level=2)
    numbered(document, "提交申请", "90", 0)
    numbered(document, "填写请假单", "90", 1)
    numbered(document, "附证明材料", "90", 1)
    numbered(document, "部门负责人审批", "90", 0)
    numbered(document, "三个工作日内答复", "90", 1)  # its level starts again under 2.
    numbered(document, "销假", "91", 0)
    document.add_paragraph("准备材料", style="List Number")  # numbered by its style
    document.add_paragraph("提交人事部", style="List Number")
    document.add_paragraph("病假须附医院证明", style="List Bullet")
    contact = document.add_table(rows=2, cols=2)  # labels and values, no header
    fill(contact.rows[0], ["联系人", "人事部王老师"])
    fill(contact.rows[1], ["电话：", "1234"])
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


WORD_LINES = [
    "员工手册",
    "一、假期",
    "表1 假期标准",
    "类别：法定假；假别：婚假；天数：3天；工资：全额发放",
    "类别：法定假；假别：产假；天数：158天；工资：全额发放",
    "类别：法定假；假别：丧假；天数：3天；工资：全额 发放",
    "类别：其他；假别：事假；天数：不超过30天；工资：不超过30天",
    "其他假期按国家规定执行，由人事部统一解释。",
    "审批权限如下：",
    "事项：五千元以下；审批人：部门负责人；审批人：财务经理",
    "事项：五千元以上；审批人：总经理",
    "二、请假流程",
    "1. 提交申请",
    "（一）填写请假单",
    "（二）附证明材料",
    "2. 部门负责人审批",
    "（一）三个工作日内答复",
    "5. 销假",
    "1. 准备材料",
    "2. 提交人事部",
    "• 病假须附医院证明",
    "联系人：人事部王老师",
    "电话：1234",
]


@pytest.fixture(scope="module")
def word() -> Extracted:
    return docx_text(handbook_docx())


def test_word_tables_are_rows_with_their_header_and_lists_have_their_numbers(
    word: Extracted,
) -> None:
    assert word.text.split("\n") == WORD_LINES
    assert headings_of(word) == [("员工手册", 1), ("一、假期", 2), ("二、请假流程", 2)]
    rows = [(line, "row", "表1 假期标准") for line in WORD_LINES[3:7]]
    rows += [(line, "row", "审批权限如下") for line in WORD_LINES[9:11]]
    items = [(line, "item", "") for line in WORD_LINES[12:21]]
    assert units_of(word) == [
        ("表1 假期标准", "caption", ""),
        *rows[:4],
        ("审批权限如下：", "caption", ""),
        *rows[4:],
        *items,
        ("联系人：人事部王老师", "row", ""),
        ("电话：1234", "row", ""),
    ]
    check_offsets(word)


def test_word_rows_are_passages_of_their_own_under_their_section_and_caption(
    word: Extracted,
) -> None:
    chunks = chunks_of(word)
    section, process = "员工手册 › 一、假期", "员工手册 › 二、请假流程"
    for line in WORD_LINES[3:7]:
        assert (f"{section} › 表1 假期标准", line) in chunks
    for line in WORD_LINES[9:11]:
        assert (f"{section} › 审批权限如下", line) in chunks
    # The caption is body text, not a heading: what follows the table stays in its section.
    assert (section, "表1 假期标准") in chunks
    assert (section, "其他假期按国家规定执行，由人事部统一解释。\n审批权限如下：") in chunks
    # The list is packed as body text of its section, each item a line; no item is a heading.
    assert (process, "\n".join(WORD_LINES[12:21])) in chunks
    assert {heading for heading, _ in chunks} == {
        section,
        f"{section} › 表1 假期标准",
        f"{section} › 审批权限如下",
        process,
    }


def test_word_table_caption_after_the_table_and_a_table_of_one_row() -> None:
    document = docx.Document()
    document.add_paragraph("住宿费按城市等级执行，超出部分由个人承担。")
    table = document.add_table(rows=1, cols=3)
    fill(table.rows[0], ["一线城市", "每晚五百元", "须附发票"])
    document.add_paragraph("表2 住宿标准", style="Caption")
    document.add_paragraph("交通费凭票据实报实销。")
    out = io.BytesIO()
    document.save(out)
    read, how = extract_document(out.getvalue(), ".docx", "标准.docx")  # in the child process
    assert how == "docx"
    assert read.text.split("\n") == [
        "住宿费按城市等级执行，超出部分由个人承担。",
        "一线城市；每晚五百元；须附发票",
        "表2 住宿标准",
        "交通费凭票据实报实销。",
    ]
    assert units_of(read) == [
        ("一线城市；每晚五百元；须附发票", "row", "表2 住宿标准"),
        ("表2 住宿标准", "caption", ""),
    ]
    assert all(isinstance(unit, MarkedUnit) for unit in read.units)


def test_word_file_without_numbering_definitions_is_read() -> None:
    """Some writers leave numbering.xml out: a list style then numbers nothing."""
    document = docx.Document()
    document.add_paragraph("病假须附医院证明", style="List Bullet")
    part = document.part
    part.drop_rel(next(i for i, rel in part.rels.items() if rel.reltype == RT.NUMBERING))
    out = io.BytesIO()
    document.save(out)
    assert docx_text(out.getvalue()) == Extracted("病假须附医院证明")


@pytest.mark.parametrize(
    ("value", "format", "shown"),
    [
        (11, "chineseCounting", "十一"),
        (105, "chineseCountingThousand", "一百零五"),
        (2010, "chineseCounting", "二千零一十"),
        (12, "chineseLegalSimplified", "壹拾贰"),
        (2, "ideographTraditional", "乙"),
        (3, "decimalEnclosedCircle", "③"),
        (28, "lowerLetter", "bb"),
        (4, "upperRoman", "IV"),
        (7, "decimalZero", "07"),
        (7, "bogus", "7"),
    ],
)
def test_word_number_formats(value: int, format: str, shown: str) -> None:
    assert list_number(value, format) == shown


# ------------------------------------------------------------------------------------- HTML

PAGE = """<html><head><title>员工手册</title><script>alert("x")</script></head><body>
<h1>假期</h1>
<p>请假须<b>提前三天</b>申请。</p>
<table>
  <caption>表1 假期标准</caption>
  <thead><tr><th>类别</th><th>假别</th><th>天数</th></tr></thead>
  <tbody>
    <tr><td rowspan="2">法定假</td><td>婚假</td><td>3天</td></tr>
    <tr><td>产假</td><td>158
      天</td></tr>
    <tr><td>其他</td><td colspan="2">协商</td></tr>
  </tbody>
</table>
<h2>流程</h2>
<ol start="3">
  <li>提交申请<ul><li>写明事由</li></ul></li>
  <li><p>部门负责人审批</p></li>
</ol>
<table><tr><td><div>版权所有</div></td></tr></table>
</body></html>"""

PAGE_LINES = [
    "员工手册",
    "假期",
    "请假须提前三天申请。",
    "表1 假期标准",
    "类别：法定假；假别：婚假；天数：3天",
    "类别：法定假；假别：产假；天数：158 天",
    "类别：其他；假别：协商；天数：协商",
    "流程",
    "3. 提交申请",
    "• 写明事由",
    "4. 部门负责人审批",
    "版权所有",
]


def test_html_tables_lists_and_headings() -> None:
    page = html_text(PAGE.encode())
    assert page.text.split("\n") == PAGE_LINES
    assert headings_of(page) == [("假期", 1), ("流程", 2)]
    assert units_of(page) == [
        ("表1 假期标准", "caption", ""),
        *[(line, "row", "表1 假期标准") for line in PAGE_LINES[4:7]],
        *[(line, "item", "") for line in PAGE_LINES[8:11]],
    ]
    check_offsets(page)
    chunks = chunks_of(page)
    for line in PAGE_LINES[4:7]:
        assert ("假期 › 表1 假期标准", line) in chunks
    assert ("假期 › 流程", "\n".join(PAGE_LINES[8:12])) in chunks  # h1 closes the <title>


def test_html_rows_without_a_header_and_through_the_child() -> None:
    page = (
        "<table><tr><th>姓名</th><td>张三</td></tr><tr><th>部门：</th><td>行政部</td></tr>"
        "</table><table><tr><th>甲</th><th>乙</th></tr></table>"
    )
    read, _ = extract_document(page.encode(), ".html", "p.html")
    assert read.text == "姓名：张三\n部门：行政部\n甲：乙"
    assert [kind for _, kind, _ in units_of(read)] == ["row", "row", "row"]


# --------------------------------------------------------------------------------- Markdown

HANDBOOK = """# 员工手册

## 一、假期

员工享有以下假期，请假须*提前*申请。

表1 假期标准

| 假别 | 天数 | 工资 |
| --- | ---: | --- |
| 婚假 | 3天 | 全额发放 |
| 产假 |  | 全额发放 |

## 二、流程

1. 提交申请
   - 写明事由
   - 附`证明`
2. 部门负责人
   审批

```
代码 | 不是表
```
"""

HANDBOOK_LINES = [
    "员工手册",
    "一、假期",
    "员工享有以下假期，请假须提前申请。",
    "表1 假期标准",
    "假别：婚假；天数：3天；工资：全额发放",
    "假别：产假；工资：全额发放",
    "二、流程",
    "1. 提交申请",
    "• 写明事由",
    "• 附证明",
    "2. 部门负责人 审批",
    "代码 | 不是表",
]


def test_markdown_is_read_as_rendered_structure() -> None:
    read, how = extract_document(HANDBOOK.encode(), ".md", "手册.md")
    assert how == "utf-8"
    assert read.text.split("\n") == HANDBOOK_LINES
    assert headings_of(read) == [("员工手册", 1), ("一、假期", 2), ("二、流程", 2)]
    assert units_of(read) == [
        ("表1 假期标准", "caption", ""),
        *[(line, "row", "表1 假期标准") for line in HANDBOOK_LINES[4:6]],
        *[(line, "item", "") for line in HANDBOOK_LINES[7:11]],
    ]
    check_offsets(read)
    chunks = chunks_of(read)
    assert ("员工手册 › 一、假期 › 表1 假期标准", HANDBOOK_LINES[4]) in chunks
    assert ("员工手册 › 一、假期 › 表1 假期标准", HANDBOOK_LINES[5]) in chunks
    assert ("员工手册 › 二、流程", "\n".join(HANDBOOK_LINES[7:12])) in chunks


def test_markdown_without_a_caption_and_plain_text_is_unchanged() -> None:
    assert markdown_text("| 甲 | 乙 |\n|---|---|\n| 1 | 2 |\n").units == (MarkedUnit(0, 7, "row"),)
    plain = "第一段\n第二行\n\n第二段"
    assert markdown_text(plain) == Extracted("第一段 第二行\n第二段")
    assert extract_document(plain.encode(), ".txt", "a.txt")[0] == Extracted(plain)
    assert markdown_text("3. 三\n4. 四") == Extracted(
        "3. 三\n4. 四", (), (MarkedUnit(0, 4, "item"), MarkedUnit(5, 9, "item"))
    )
    assert markdown_text("### 小节\n正文").headings == (MarkedHeading(0, 3),)


def test_long_markdown_is_read_in_the_child_to_the_same_text(monkeypatch) -> None:
    in_process = markdown_text(HANDBOOK)
    monkeypatch.setattr(markdown, "MARKDOWN_IN_PROCESS_CHARS", 100)
    assert markdown_text(HANDBOOK) == in_process
    with pytest.raises(ExtractionError, match="over 10,000,000 characters"):
        # Read by the child, which keeps its own MAX_TEXT_CHARS: this one makes 10 million.
        markdown_text(f"| {'名' * 1_000} |\n|---|\n" + "| 1 |\n" * 10_001)


def test_a_small_markdown_file_whose_header_fills_every_row_is_refused(monkeypatch) -> None:
    """A header's names repeat in every row: a short file could make gigabytes of text."""
    monkeypatch.setattr(units, "MAX_TEXT_CHARS", 100_000)
    bomb = f"| {'名' * 1_000} |\n|---|\n" + "| 1 |\n" * 200
    with pytest.raises(CorpusError, match=r"over 100,000 characters of text"):
        extract_document(bomb.encode(), ".md", "bomb.md")


def test_a_note_merged_across_the_table_is_written_once_not_as_pairs() -> None:
    rows = [["类别", "形式"], ["内部", "分享会"], ["注：每年不少于24学时。"] * 2]
    assert units.table_lines(rows, 1) == ["类别：内部；形式：分享会", "注：每年不少于24学时。"]


def test_a_question_about_one_row_is_answered_with_that_row_whole(
    tmp_path: Path, hashing_embedder
) -> None:
    from retriever import Retriever

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "handbook.docx").write_bytes(handbook_docx())
    Retriever.build(corpus, tmp_path / "index", embedder=hashing_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=hashing_embedder)
    answer = retriever.ask("产假有多少天")
    quotes = [quote.text for citation in answer.citations for quote in citation.quotes]
    assert WORD_LINES[4] in quotes, answer.answer  # the row, with its header, not one cell
    [cited] = [c for c in answer.citations if WORD_LINES[4] in [q.text for q in c.quotes]]
    assert cited.hit.heading == "员工手册 › 一、假期 › 表1 假期标准"
    assert answer.answer.split("\n")[0].startswith(WORD_LINES[4])
