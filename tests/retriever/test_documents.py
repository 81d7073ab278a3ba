"""PDF, Word and HTML files: text comes out through the libraries; broken files are named;
Word headings nest as the file says; PDF text holds the characters meant, not look-alikes."""

from __future__ import annotations

import io
import subprocess
import unicodedata
from pathlib import Path

import docx
import pypdf
import pytest
from conftest import text_pdf, unicode_pdf
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from retriever.config import ChunkSettings
from retriever.corpus import extract_text, read_corpus
from retriever.passages import passages_of
from retriever.readers.pdf_layout import RADICALS
from retriever.text import CorpusError

CHROMIUM = Path("/usr/bin/chromium")


def test_pdf_text_is_extracted() -> None:
    text, how = extract_text(text_pdf("Office director duties"), ".pdf", "a.pdf")
    assert how == "pdf" and "Office director duties" in text


def test_damaged_pdf_is_named() -> None:
    with pytest.raises(CorpusError, match=r"broken\.pdf"):
        extract_text(b"%PDF-1.4 this is not really a pdf", ".pdf", "broken.pdf")


def test_docx_paragraphs_and_tables_are_extracted(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("行政助理的职责", level=1)
    document.add_paragraph("负责员工的考勤,于次月第一个工作日提供考勤报表。")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "岗位"
    table.rows[0].cells[1].text = "行政助理"
    document.save(tmp_path / "duties.docx")
    text, _ = extract_text((tmp_path / "duties.docx").read_bytes(), ".docx", "duties.docx")
    assert text.splitlines()[:2] == [
        "行政助理的职责",
        "负责员工的考勤,于次月第一个工作日提供考勤报表。",
    ]
    assert "岗位：行政助理" in text  # two columns without a header: a label and its value


def test_file_named_docx_that_is_not_one_is_refused() -> None:
    with pytest.raises(CorpusError, match=r"fake\.docx: not a readable Word"):
        extract_text(b"plain text pretending", ".docx", "fake.docx")


def test_html_keeps_text_drops_scripts_and_reads_gbk() -> None:
    page = (
        "<html><head><meta charset='gbk'><title>页</title><script>alert('x')</script>"
        "<style>p{}</style></head><body><h1>参谋职责</h1>"
        "<p>办公室主任应当成为参谋长。&lt;script&gt;这是正文里的字&lt;/script&gt;</p></body></html>"
    )
    text, _ = extract_text(page.encode("gbk"), ".html", "page.html")
    assert "alert" not in text and "p{}" not in text
    assert "参谋职责" in text and "<script>这是正文里的字</script>" in text


def test_build_reads_every_supported_format(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(text_pdf("Hello PDF"))
    (tmp_path / "b.html").write_text("<p>网页正文。</p>", encoding="utf-8")
    document = docx.Document()
    document.add_paragraph("Word 正文。")
    document.save(tmp_path / "c.docx")
    corpus = read_corpus(tmp_path)
    assert sorted(d.source for d in corpus.documents) == ["a.pdf", "b.html", "c.docx"]
    assert not corpus.skipped


# ------------------------------------------------------------------- Word headings (issue 11)

REIMBURSEMENT = [
    ("Heading 1", "一、报销时限"),
    (None, "费用发生后三十日内提交报销单，逾期不予受理。"),
    ("Heading 2", "（一）差旅费"),
    (None, "差旅费在出差结束后十日内报销，附行程单和住宿发票。"),
    ("Heading 1", "二、报销标准"),
    (None, "住宿费按城市等级执行，一线城市每晚不超过五百元。"),
    ("Heading 1", "三、审批"),
    (None, "五千元以上的报销须经部门负责人和财务总监两级审批。"),
]


def word_file(path: Path, paragraphs: list[tuple[str | None, str]]) -> Path:
    """A .docx of (style name or None for Normal, text) paragraphs, made by python-docx."""
    document = docx.Document()
    for style, text in paragraphs:
        document.add_paragraph(text, style=style)
    document.save(path)
    return path


def headings_by_text(folder: Path) -> dict[str, str]:
    """The heading path of each passage of the corpus in `folder`, by the passage's text."""
    return {
        passage.text: passage.heading
        for document in read_corpus(folder).documents
        for passage in passages_of(document, ChunkSettings())
    }


def test_word_heading_styles_make_siblings_siblings(tmp_path: Path) -> None:
    word_file(tmp_path / "报销制度.docx", REIMBURSEMENT)
    assert headings_by_text(tmp_path) == {
        "费用发生后三十日内提交报销单，逾期不予受理。": "一、报销时限",
        "差旅费在出差结束后十日内报销，附行程单和住宿发票。": "一、报销时限 › （一）差旅费",
        "住宿费按城市等级执行，一线城市每晚不超过五百元。": "二、报销标准",
        "五千元以上的报销须经部门负责人和财务总监两级审批。": "三、审批",
    }


def test_word_heading_levels_from_chinese_names_base_styles_and_outline_levels(
    tmp_path: Path,
) -> None:
    """Writers name heading styles in Chinese, base their own on Heading N, or set a level on
    the paragraph itself; a level the file gives wins over what the text looks like."""
    document = docx.Document()
    chinese = document.styles.add_style("标题 1", WD_STYLE_TYPE.PARAGRAPH)  # no outline level
    own = document.styles.add_style("制度小标题", WD_STYLE_TYPE.PARAGRAPH)
    own.base_style = document.styles["Heading 2"]
    document.add_paragraph("总则", style=chinese)
    document.add_paragraph("本制度适用于公司全体员工的日常费用报销，自发布之日起施行。")
    document.add_paragraph("适用范围", style=own)
    document.add_paragraph("包括差旅费、招待费、办公用品费和培训费等各类费用的报销。")
    # A Normal paragraph whose own properties put it at outline level 1 (Word's 0): a
    # heading, though its look (a long line ending in a full stop) is not a heading's.
    outlined = document.add_paragraph("报销的流程和各环节的时限，由财务部统一规定并解释。")
    setting = OxmlElement("w:outlineLvl")
    setting.set(qn("w:val"), "0")
    outlined.paragraph_format.element.get_or_add_pPr().append(setting)
    document.add_paragraph("员工填写报销单，部门负责人审核后交财务部复核付款。")
    document.save(tmp_path / "总则.docx")
    assert headings_by_text(tmp_path) == {
        "本制度适用于公司全体员工的日常费用报销，自发布之日起施行。": "总则",
        "包括差旅费、招待费、办公用品费和培训费等各类费用的报销。": "总则 › 适用范围",
        "员工填写报销单，部门负责人审核后交财务部复核付款。": (
            "报销的流程和各环节的时限，由财务部统一规定并解释。"
        ),
    }


def test_word_numbering_sets_levels_without_heading_styles(tmp_path: Path) -> None:
    """Headings typed in Normal style: 一、 （一） 1. 1.1 (1) nest in that order."""
    word_file(
        tmp_path / "numbered.docx",
        [
            (None, "一、报销时限"),
            (None, "费用发生后三十日内提交报销单，逾期不予受理。"),
            (None, "（一）差旅费"),
            (None, "差旅费在出差结束后十日内报销，附行程单和住宿发票。"),
            (None, "1. 住宿"),
            (None, "住宿费按城市等级执行，一线城市每晚不超过五百元。"),
            (None, "1.1 一线城市"),
            (None, "北京、上海、广州、深圳每晚不超过五百元，其余城市三百元。"),
            (None, "(1) 超标部分"),
            (None, "超出标准的部分由个人承担，特殊情况须事先书面申请。"),
            (None, "2. 交通"),
            (None, "交通费凭票据实报实销，出租车须注明起止地点和事由。"),
            (None, "（二）招待费"),
            (None, "招待费须事先申请，报销时附招待对象名单和消费明细。"),
            (None, "二、审批"),
            (None, "五千元以上的报销须经部门负责人和财务总监两级审批。"),
        ],
    )
    assert list(headings_by_text(tmp_path).values()) == [
        "一、报销时限",
        "一、报销时限 › （一）差旅费",
        "一、报销时限 › （一）差旅费 › 1. 住宿",
        "一、报销时限 › （一）差旅费 › 1. 住宿 › 1.1 一线城市",
        "一、报销时限 › （一）差旅费 › 1. 住宿 › 1.1 一线城市 › (1) 超标部分",
        "一、报销时限 › （一）差旅费 › 2. 交通",
        "一、报销时限 › （二）招待费",
        "二、审批",
    ]


def test_word_table_rows_stay_in_their_section(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("一、报销标准", level=1)
    document.add_paragraph("住宿费按城市等级执行，标准见下表，超出部分由个人承担。")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "一线城市"
    table.rows[0].cells[1].text = "每晚不超过五百元，须附住宿发票和水单"
    document.add_heading("二、审批", level=1)
    document.add_paragraph("五千元以上的报销须经部门负责人和财务总监两级审批。")
    document.save(tmp_path / "标准.docx")
    (document,) = read_corpus(tmp_path).documents
    assert document.text.splitlines()[2] == "一线城市：每晚不超过五百元，须附住宿发票和水单"
    passages = passages_of(document, ChunkSettings())
    # The row is a passage of its own (issue 22), in its section.
    assert [(p.heading, p.text) for p in passages] == [
        ("一、报销标准", "住宿费按城市等级执行，标准见下表，超出部分由个人承担。"),
        ("一、报销标准", "一线城市：每晚不超过五百元，须附住宿发票和水单"),
        ("二、审批", "五千元以上的报销须经部门负责人和财务总监两级审批。"),
    ]
    assert all(document.text[p.start : p.end] == p.text for p in passages)


# ----------------------------------------------------- Kangxi radicals in PDF text (issue 11)

# What Chromium's PDF printer writes for 用户一大长门见马 with a Simplified Chinese font.
RADICAL_TEXT = "⽤⼾⼀⼤⻓⻔⻅⻢。⽤⼾报销须经⼤区经理审批，⼀万元以上须经总经理审批。"
REAL_TEXT = "用户一大长门见马。用户报销须经大区经理审批，一万元以上须经总经理审批。"


def test_pdf_radicals_are_folded_to_the_ideographs_meant() -> None:
    pdf = unicode_pdf(RADICAL_TEXT)
    raw = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert raw == RADICAL_TEXT, "the PDF must hold the radicals for this test to mean anything"
    text, _ = extract_text(pdf, ".pdf", "radicals.pdf")
    assert text == REAL_TEXT
    assert len(text) == len(raw), "one character for one: offsets are unchanged"


def test_pdf_passages_quote_the_folded_text_at_exact_offsets(tmp_path: Path) -> None:
    (tmp_path / "radicals.pdf").write_bytes(unicode_pdf(RADICAL_TEXT))
    (document,) = read_corpus(tmp_path).documents
    assert document.text == REAL_TEXT
    passages = passages_of(document, ChunkSettings(max_chars=20))
    assert len(passages) > 1
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text
        assert REAL_TEXT[passage.start : passage.end] == passage.text


def test_radical_table_is_one_ideograph_for_each_radical() -> None:
    assert all(
        len(ideograph) == 1 and unicodedata.name(ideograph).startswith("CJK UNIFIED IDEOGRAPH")
        for ideograph in RADICALS.values()
    )
    kangxi = range(0x2F00, 0x2FD6)
    assert set(kangxi) <= RADICALS.keys(), "every Kangxi radical is folded"
    assert RADICALS[ord("⽤")] == "用" and RADICALS[ord("⻓")] == "长"
    assert RADICALS[ord("⼾")] == "户", "the simplified form, not NFKC's 戶"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")
def test_pdf_printed_by_chromium_reads_as_written(tmp_path: Path) -> None:
    """The real case: Chromium prints a page in Noto Sans CJK SC, which draws 用 and ⽤ alike."""
    written = "用户一大长门见马民青食黄首雨日月竹言走手工女子小心水火"
    page = tmp_path / "page.html"
    page.write_text(
        '<html lang="zh-CN"><meta charset="utf-8">'
        f"<body style=\"font-family: 'Noto Sans CJK SC'\"><p>{written}</p></body></html>",
        encoding="utf-8",
    )
    pdf = tmp_path / "page.pdf"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    raw = pypdf.PdfReader(pdf).pages[0].extract_text()
    assert any("\u2e80" <= char <= "\u2fdf" for char in raw), "Chromium no longer writes radicals"
    text, _ = extract_text(pdf.read_bytes(), ".pdf", "page.pdf")
    assert text.strip() == written
