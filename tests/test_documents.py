"""PDF, Word and HTML files: text comes out through the libraries; broken files are named."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from conftest import text_pdf

from retriever.corpus import CorpusError, extract_text, read_corpus


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
    assert "岗位 | 行政助理" in text


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
