"""Reading files: encodings detected, bad files reported by name and skipped, records parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retriever import corpus
from retriever.corpus import read_corpus
from retriever.text import CorpusError, decode, normalize

TEXT = "办公室主任和行政助理有部门、部门职能方向、职责范围等方面的区别。行政助理负责考勤。\n"


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le", "utf-16-be"]
)
def test_chinese_encodings_decode_to_the_same_text(encoding: str) -> None:
    text, _ = decode(TEXT.encode(encoding), "sample.txt")
    assert text.lstrip("\ufeff") == TEXT


@pytest.mark.parametrize("short", ["你好", "办公室", "行政助理的职责"])
def test_short_gbk_text_is_not_mistaken_for_big5_or_korean(short: str) -> None:
    assert decode(short.encode("gbk"), "short.txt")[0] == short


def test_big5_traditional_text_is_read() -> None:
    text = "辦公室主任和行政主管哪個大？這要看具體的公司。"
    assert decode(text.encode("big5"), "big5.txt")[0] == text


def test_normalize_folds_width_script_and_case() -> None:
    assert normalize("辦公室主任和行政主管哪個大？") == "办公室主任和行政主管哪个大?"
    assert normalize("ＡＢＣ１２３") == "abc123"


def write(folder: Path, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)


def test_bad_files_are_named_and_skipped_good_ones_kept(tmp_path: Path) -> None:
    write(tmp_path, "good.txt", TEXT.encode("gb18030"))
    write(tmp_path, "empty.txt", b"")
    write(tmp_path, "blank.md", b"   \n\n")
    write(tmp_path, "binary.txt", bytes(range(256)) * 40)
    write(tmp_path, "notes.pdf", b"%PDF-1.4 a damaged PDF")
    write(tmp_path, "photo.jpg", b"\xff\xd8\xff ignored: not a supported suffix")
    write(tmp_path, ".hidden.txt", TEXT.encode())
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert result.documents[0].text == TEXT
    assert result.files[0].encoding == "gb18030"
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == {"empty.txt", "blank.md", "binary.txt", "notes.pdf"}
    assert "not a readable PDF" in reasons["notes.pdf"]
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"] or "not readable" in reasons["binary.txt"]


def test_oversized_file_is_refused_with_its_size(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 100)
    write(tmp_path, "big.txt", TEXT.encode() * 10)
    result = read_corpus(tmp_path)
    assert not result.documents
    assert "limit" in result.skipped[0].reason and "big.txt" in result.skipped[0].reason


def test_jsonl_records_become_documents(tmp_path: Path) -> None:
    records = [
        {"id": "a", "title": "甲", "text": "第一段\u2028正文。"},
        {"id": "b", "title": "乙", "text": "第二段正文。"},
        {"id": "c", "title": "丙", "text": "  "},
    ]
    write(
        tmp_path,
        "set.jsonl",
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode(),
    )
    documents = read_corpus(tmp_path).documents
    assert [(d.doc_id, d.title) for d in documents] == [
        ("set.jsonl#a", "甲"),
        ("set.jsonl#b", "乙"),
    ]
    assert documents[0].text == "第一段\u2028正文。"


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b"\n')
    with pytest.raises(CorpusError, match="line 2"):
        corpus.read_file(tmp_path / "bad.jsonl", "bad.jsonl")


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nowhere")
