"""The web layer without a server: follow-ups, rendering, upload checks and background rebuilds.

These run in seconds with the stand-in embedder; tests/e2e/test_api.py and tests/e2e/test_browser.py
run the real app.
"""

from __future__ import annotations

import html
import io
import json
import re
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest
from conftest import page_pdf, text_pdf
from starlette.testclient import TestClient

from retriever import Answer, Citation, Hit, IndexInfo, QuestionError, Quote, Retriever
from retriever.bases import DEFAULT
from retriever.config import MAX_QUESTION_CHARS, MB, Quota, SettingsError, WebSettings
from retriever.corpus import extract_text
from retriever.followup import FollowUp, complete_followup, follow_up, subject_of
from retriever.text import CorpusError
from web import uploads
from web.access import ANONYMOUS, Access, Identity, Role, _Credential
from web.browser_uploads import BrowserUploads
from web.builds import PROGRESS_BATCH, BuildState, ProgressEmbedder
from web.citations import Citations
from web.feedback import AnswerLog, Feedback
from web.feedback import main as feedback_main
from web.feedback_export import export, export_zip
from web.feedback_log import FeedbackError, FeedbackLog
from web.libraries import Libraries
from web.library import Library
from web.limits import FeedbackLimit, QuestionLimit
from web.locale import ChinesePage
from web.page import WATCH_BUILD_SECONDS, WATCH_IDLE_SECONDS, Page, earlier_questions
from web.page_bases import CONFIRM_LABEL, DELETE_LABEL
from web.preview import (
    BasePreviews,
    Preview,
    PreviewError,
    Previews,
    Span,
    parse_marks,
    parse_spec,
)
from web.questions import question_problem
from web.reasons import build_error, file_reason
from web.refusals import MANAGERS_ONLY
from web.render import answer_html, answer_text, preview_html
from web.render_library import documents_html, info_html, trash_html
from web.service import Service
from web.uploads import UploadError, check_content, check_name

# ------------------------------------------------------------------- follow-ups

DIRECTOR = "办公室主任的直接上级是谁?"


@pytest.mark.parametrize(
    ("message", "earlier", "searched"),
    [
        # An ellipsis puts the new name in place of the previous subject.
        ("那行政助理呢?", [DIRECTOR], "行政助理的直接上级是谁?"),
        ("那么总经理呢", [DIRECTOR], "总经理的直接上级是谁?"),
        ("行政助理呢？", [DIRECTOR], "行政助理的直接上级是谁?"),
        ("那行政助理呢?", ["办公室主任和行政主管哪个大?"], "行政助理和行政主管哪个大?"),
        # A chain of follow-ups keeps the completed question, not the typed one.
        ("那总经理呢?", [DIRECTOR, "那行政助理呢?"], "总经理的直接上级是谁?"),
        # A pronoun, or a missing subject, takes the previous subject.
        ("它的职责有哪些?", [DIRECTOR], "办公室主任的职责有哪些?"),
        ("他们每天做什么?", ["行政助理的直接上级是谁?"], "行政助理每天做什么?"),
        ("那个岗位要加班吗?", [DIRECTOR], "办公室主任要加班吗?"),
        ("每天要做哪些事?", ["行政助理的职责"], "行政助理每天要做哪些事?"),
        ("有哪些职责?", ["请问办公室主任的直接上级是谁?"], "办公室主任有哪些职责?"),
        # An ellipsis that is more than a name is searched on its own.
        ("那行政助理每天做什么?", [DIRECTOR], "行政助理每天做什么"),
        ("那行政助理的职责呢?", [DIRECTOR], "行政助理的职责"),
        # Traditional characters go through the same rules.
        ("那行政助理呢？", ["辦公室主任的直接上級是誰？"], "行政助理的直接上級是誰？"),
    ],
)
def test_follow_ups_are_completed(message: str, earlier: list[str], searched: str) -> None:
    assert complete_followup(message, earlier) == searched


@pytest.mark.parametrize(
    ("message", "earlier"),
    [
        ("那行政助理呢?", []),  # nothing to follow
        ("行政助理每天要做哪些事?", [DIRECTOR]),  # a question of its own
        ("什么是考勤管理?", [DIRECTOR]),  # starts with a question word, not a predicate
        ("考勤管理", [DIRECTOR]),  # a bare name without 那 or 呢 may be a new topic
        ("那个" + "很长的问题" * 10 + "呢?", [DIRECTOR]),  # follow-ups are short
        ("", [DIRECTOR]),
    ],
)
def test_other_messages_are_searched_as_typed(message: str, earlier: list[str]) -> None:
    assert complete_followup(message, earlier) == message


def test_a_follow_up_about_another_subject_says_which_it_left() -> None:
    assert follow_up("那行政助理呢?", [DIRECTOR]) == FollowUp(
        "行政助理的直接上级是谁?", ("办公室主任", "行政助理")
    )
    assert follow_up("它的职责有哪些?", [DIRECTOR]).shift is None  # the same subject


def test_without_a_previous_subject_only_the_connective_goes() -> None:
    assert complete_followup("那报表呢?", ["谁负责考勤?"]) == "报表呢?"


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        (DIRECTOR, "办公室主任"),
        ("办公室主任和行政主管哪个大?", "办公室主任"),
        ("行政助理每天要做哪些事?", "行政助理"),
        ("请问行政助理的职责?", "行政助理"),
        ("谁负责考勤?", ""),
    ],
)
def test_subject_is_the_words_before_the_first_function_word(question: str, subject: str) -> None:
    assert subject_of(question) == subject


# ------------------------------------------------------------------- rendering

SCRIPT = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def _hit(rank: int, text: str, start: int, **changes) -> Hit:
    values = {
        "rank": rank,
        "score": 0.9,
        "text": text,
        "source": "规章.txt",
        "doc_id": "规章.txt",
        "title": "规章",
        "heading": "报销",
        "start": start,
        "end": start + len(text),
        "dense_score": 0.9,
        "bm25_score": 1.0,
        "chunk_id": rank,
    }
    return Hit(**{**values, **changes})


def _answer() -> Answer:
    first = _hit(1, "无关的开头。差旅费十五日内报销。结尾。", 100)
    second = _hit(2, "住宿每晚四百元。", 500)
    third = _hit(3, "不相干的段落。", 900)
    quote = Quote(106, 116, "差旅费十五日内报销。")
    return Answer(
        question="差旅费多久内报销?",
        answer="差旅费十五日内报销。[1]住宿每晚四百元。[2]",
        found=True,
        confidence=0.95,
        citations=[
            Citation(1, first, [quote]),
            Citation(2, second, [Quote(500, 508, "住宿每晚四百元。")]),
            Citation(3, third, []),
        ],
    )


def test_a_quoted_row_shows_as_a_table_of_its_header_and_values() -> None:
    row = "假别：婚假；天数：3天；工资：<全额>"
    hit = _hit(1, row, 0)
    answer = Answer(
        question="婚假几天",
        answer=f"{row}[1]\n其他说明。[1]",
        found=True,
        confidence=0.9,
        citations=[Citation(1, hit, [Quote(0, len(row), row)])],
    )
    page = answer_html(answer)
    assert (
        '<table class="qa-row"><tr><th>假别</th><th>天数</th><th>工资</th></tr>'
        "<tr><td>婚假</td><td>3天</td><td>&lt;全额&gt;</td></tr></table>"
    ) in page
    assert page.count('class="qa-cite" value="1"') == 2  # the row's marker and the line's
    assert "<p>其他说明。<sup" in page


def test_markers_and_sources_agree() -> None:
    page = answer_html(_answer())
    markers = re.findall(
        r'<sup class="qa-marker"><button [^>]*value="(\d)"[^>]*>\[\1\]</button>', page
    )
    sources = re.findall(r'<li class="qa-source" value="(\d)"><div class="qa-where">\[(\d)\]', page)
    assert markers == ["1", "2"]
    assert [value for value, _ in sources] == [label for _, label in sources] == ["1", "2", "3"]
    # The answer comes before its sources, and the uncited passage is folded away.
    assert page.index("qa-answer") < page.index("qa-sources")
    assert page.index("<details") < page.index('value="3"')


def test_the_answering_sentence_is_highlighted_where_it_stands() -> None:
    page = answer_html(_answer())
    assert "无关的开头。<mark>差旅费十五日内报销。</mark>结尾。" in page
    assert "规章.txt" in page and "报销" in page and "第 101–119 字" in page


def test_passage_markup_is_shown_as_text() -> None:
    hit = _hit(1, f"正文{SCRIPT} **粗体** [链接](javascript:x) $$x$$\n\n第二段", 0)
    hit = _hit(1, hit.text, 0, source=f"{SCRIPT}.txt", heading=SCRIPT)
    answer = Answer("问?", f"正文{SCRIPT}。[1]", True, 0.9, [Citation(1, hit, [])])
    page = answer_html(answer, asked=SCRIPT)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    # No blank line: Gradio's Markdown would start a new block there and read ** and [](…).
    assert "\n" not in page


def test_not_found_says_so_and_shows_the_closest_passages_plainly() -> None:
    hits = [_hit(rank, f"段落{rank}。", rank * 100) for rank in range(1, 6)]
    answer = Answer(
        "天气?",
        "语料中似乎没有能回答这个问题的内容。",
        False,
        0.5,
        [Citation(number, hit, []) for number, hit in enumerate(hits, start=1)],
    )
    page = answer_html(answer)
    assert "qa-not-found" in page and "qa-answer" not in page
    assert "最接近的段落（不是答案）" in page
    assert "<mark>" not in page and "qa-marker" not in page
    assert page.index('value="3"') < page.index("<details") < page.index('value="4"')


def test_a_completed_follow_up_shows_what_was_searched() -> None:
    page = answer_html(_answer(), asked="那住宿呢?")
    assert "按上文理解为：差旅费多久内报销?" in page


def test_the_copy_button_holds_the_answer_as_text() -> None:
    text = answer_text(_answer())
    assert text == (
        "差旅费十五日内报销。[1]住宿每晚四百元。[2]\n"
        "\n"
        "来源\n"
        "[1] 规章.txt · 报销 · 第 101–119 字\n"
        "无关的开头。差旅费十五日内报销。结尾。\n"
        "\n"
        "[2] 规章.txt · 报销 · 第 501–508 字\n"
        "住宿每晚四百元。"
    )
    assert "不相干的段落" not in text  # folded away on the page, not a source of the answer
    page = answer_html(_answer())
    [value] = re.findall(r'<button type="button" class="qa-copy" value="([^"]*)">', page)
    assert html.unescape(value) == text
    assert "\n" not in page and "<" not in html.unescape(value)


def test_copied_text_keeps_a_follow_up_and_a_not_found_answer_as_shown() -> None:
    assert answer_text(_answer(), asked="那住宿呢?").startswith(
        "按上文理解为：差旅费多久内报销?\n差旅费十五日内报销。[1]"
    )
    hits = [_hit(rank, f"段落{rank}。", rank * 100, heading="") for rank in range(1, 6)]
    answer = Answer(
        "天气?",
        "语料中似乎没有能回答这个问题的内容。",
        False,
        0.5,
        [Citation(number, hit, []) for number, hit in enumerate(hits, start=1)],
    )
    text = answer_text(answer)
    assert text.startswith("语料中似乎没有能回答这个问题的内容。\n\n最接近的段落（不是答案）\n")
    assert text.endswith("[3] 规章.txt · 第 301–304 字\n段落3。")  # the folded ones stay out


def test_markup_in_a_copied_passage_stays_text() -> None:
    hit = _hit(1, f'第一行{SCRIPT}\r\n\n第二行 & "引号"', 0)
    answer = Answer("问?", "第一行。[1]", True, 0.9, [Citation(1, hit, [Quote(0, 3, "第一行")])])
    page = answer_html(answer)
    assert "<script" not in page and "\n" not in page and "\r" not in page
    [value] = re.findall(r'class="qa-copy" value="([^"]*)"', page)
    assert html.unescape(value) == answer_text(answer)
    assert f'第一行{SCRIPT}\r\n\n第二行 & "引号"' in answer_text(answer)


def test_info_line_names_the_index_and_a_running_rebuild() -> None:
    info = IndexInfo("index", 3, 3, 42, "multilingual-e5-small", "2025-01-02T03:04:05+00:00", [])
    idle = info_html(info, BuildState(False, "", 1.0, None))
    assert "3 篇文档" in idle and "42 个段落" in idle and "multilingual-e5-small" in idle
    assert "2025-01-02 03:04" in idle and "重建" not in idle
    building = info_html(info, BuildState(True, "计算向量 64/128", 0.5, None))
    assert "正在重建索引（计算向量 64/128）" in building
    failed = info_html(info, BuildState(False, "", 1.0, "<b>disk full</b>"))
    assert "上次重建失败：程序给出的原因是：&lt;b&gt;disk full&lt;/b&gt;" in failed


def test_document_names_are_escaped() -> None:
    from web.outcomes import DocumentRow

    table = documents_html([DocumentRow("<img src=x>.txt", 2048, "已索引")])
    assert "&lt;img src=x&gt;.txt" in table and "2.0 KB" in table


# ------------------------------------------------------------------- upload checks


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../x.txt", "路径"),
        ("a/b.txt", "路径"),
        ("..\\x.txt", "路径"),
        ("/etc/passwd.txt", "路径"),
        ("..", "路径"),
        (".hidden.txt", "点开头"),
        ("tool.exe", ".exe"),
        ("README", "无扩展名"),
        ("bad\x00name.txt", "控制字符"),
        ("长" * 90 + ".txt", "太长"),
        ("", "为空"),
    ],
)
def test_bad_names_are_refused(name: str, says: str) -> None:
    with pytest.raises(UploadError, match=re.escape(says)):
        check_name(name)


@pytest.mark.parametrize("name", ["规章制度.txt", "Notes.MD", "报告 2024.pdf", "a.docx", "p.htm"])
def test_plain_document_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_content_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def file(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    with pytest.raises(UploadError, match="空文件"):
        check_content(file("empty.txt", b""), "empty.txt")
    with pytest.raises(UploadError, match="无法作为文档读取"):
        check_content(file("noise.txt", bytes(range(256)) * 20), "noise.txt")
    with pytest.raises(UploadError, match="无法作为文档读取"):
        check_content(file("fake.docx", b"PK not a zip"), "fake.docx")
    with pytest.raises(UploadError, match="没有文字"):
        check_content(file("blank.html", b"<html><script>x()</script></html>"), "blank.html")
    gbk = "差旅费报销须在十五个工作日内提交。".encode("gbk")
    assert check_content(file("gbk.txt", gbk), "gbk.txt") == gbk
    word = _docx("会议室在三楼。")
    assert check_content(file("a.docx", word), "a.docx") == word
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 10)
    with pytest.raises(UploadError, match="上限"):
        check_content(file("big.txt", "十一个字节以上".encode()), "big.txt")


def _docx(text: str) -> bytes:
    import io

    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------- the library


class GatedEmbedder:
    """The stand-in embedder, but a build's passage encoding waits until `gate` is set."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.dim, self.kernel = inner.name, inner.dim, inner.kernel
        self.gate = threading.Event()
        self.gate.set()
        self.building = threading.Event()
        self.fail = False

    def hold(self) -> None:
        """Make the next build wait inside its passage encoding until `gate` is set."""
        self.building.clear()
        self.gate.clear()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.building.set()
        assert self.gate.wait(timeout=30)
        if self.fail:
            raise RuntimeError("the model crashed")
        return self.inner.encode_passages(texts)


@pytest.fixture
def library(small_corpus: Path, hashing_embedder, tmp_path: Path) -> Library:
    embedder = GatedEmbedder(hashing_embedder)
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=embedder)
    return Library(small_corpus, index, Retriever.load(index, embedder=embedder))


def _upload(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "uploads" / name.replace("/", "_")
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path, name


def _sources(library: Library, question: str) -> set[str]:
    return {hit.source for hit in library.retriever.search(question, k=5)}


def test_good_uploads_enter_the_corpus_and_bad_ones_change_nothing(
    library: Library, tmp_path: Path
) -> None:
    before = sorted(p.name for p in library.corpus_dir.iterdir())
    outcomes = library.add(
        [
            _upload(tmp_path, "../escape.txt", "越界".encode()),
            _upload(tmp_path, "empty.txt", b""),
            _upload(tmp_path, "tool.exe", b"MZ"),
            _upload(tmp_path, "jobs.txt", b"\x00\x01\x02" * 100),  # would replace a good file
        ]
    )
    assert [outcome.ok for outcome in outcomes] == [False] * 4
    assert sorted(p.name for p in library.corpus_dir.iterdir()) == before
    assert not (library.corpus_dir.parent / "escape.txt").exists()
    assert "办公室主任" in (library.corpus_dir / "jobs.txt").read_text(encoding="utf-8")

    [outcome] = library.add([_upload(tmp_path, "travel.txt", "差旅费报销规定。".encode("gbk"))])
    assert outcome.ok and "已加入" in outcome.message
    assert sorted(p.name for p in library.corpus_dir.iterdir()) == [*before, "travel.txt"]
    assert (library.corpus_dir / "travel.txt").read_bytes() == "差旅费报销规定。".encode("gbk")
    rows = {row.name: row.status for row in library.documents()}
    assert rows == {"fruit.md": "已索引", "jobs.txt": "已索引", "travel.txt": "等待重建索引"}


def test_questions_during_a_rebuild_are_answered_from_the_old_index(
    library: Library, tmp_path: Path
) -> None:
    embedder = library.retriever.embedder
    library.add([_upload(tmp_path, "travel.txt", "差旅费须在十五个工作日内报销。".encode())])
    embedder.hold()
    ticket = library.rebuild()
    assert embedder.building.wait(timeout=30)
    assert library.state.running
    assert "travel.txt" not in _sources(library, "差旅费报销")  # the old index still answers

    embedder.gate.set()
    state = library.wait(ticket)
    assert state.error is None and not state.running
    assert "travel.txt" in _sources(library, "差旅费报销")
    assert library.retriever.info.documents == 3
    assert all(row.status == "已索引" for row in library.documents())


def test_build_progress_counts_embedded_passages(hashing_embedder) -> None:
    reports: list[tuple[int, int]] = []
    embedder = ProgressEmbedder(hashing_embedder, lambda done, total: reports.append((done, total)))
    vectors = embedder.encode_passages([f"段落{i}" for i in range(PROGRESS_BATCH * 2 + 3)])
    assert vectors.shape == (PROGRESS_BATCH * 2 + 3, hashing_embedder.dim)
    total = PROGRESS_BATCH * 2 + 3
    assert reports == [
        (0, total),
        (PROGRESS_BATCH, total),
        (PROGRESS_BATCH * 2, total),
        (total, total),
    ]


def test_a_failed_rebuild_keeps_the_served_index(library: Library, tmp_path: Path) -> None:
    served = library.retriever
    library.retriever.embedder.fail = True
    library.add([_upload(tmp_path, "travel.txt", "差旅费须在十五个工作日内报销。".encode())])
    state = library.wait(library.rebuild())
    assert state.error == "the model crashed"
    assert library.retriever is served
    assert "travel.txt" not in _sources(library, "差旅费报销")
    assert "the model crashed" in info_html(served.info, library.state)


def test_removing_documents(library: Library) -> None:
    assert not library.remove("../jobs.txt").ok
    outcome = library.remove("fruit.md")
    assert outcome.ok and not (library.corpus_dir / "fruit.md").exists()
    assert library.wait(library.rebuild()).error is None
    assert _sources(library, "苹果香蕉") == {"jobs.txt"}
    last = library.remove("jobs.txt")
    assert not last.ok and "最后一篇" in last.message
    assert (library.corpus_dir / "jobs.txt").exists()


def test_rebuilds_asked_for_during_a_build_are_served_by_one_more(
    library: Library, tmp_path: Path
) -> None:
    embedder = library.retriever.embedder
    library.add([_upload(tmp_path, "a.txt", "甲乙丙丁的规定。".encode())])
    embedder.hold()
    first = library.rebuild()
    assert embedder.building.wait(timeout=30)
    # Added while the first build runs: only a later build can see it.
    library.add([_upload(tmp_path, "b.txt", "戊己庚辛的规定。".encode())])
    second = library.rebuild()
    embedder.gate.set()
    assert library.wait(second).error is None
    assert library.wait(first).error is None
    assert {"a.txt", "b.txt"} <= {row.name for row in library.documents()}
    assert all(row.status == "已索引" for row in library.documents())


def test_an_upload_of_the_same_name_moves_the_old_file_to_the_trash(
    library: Library, tmp_path: Path
) -> None:
    old = (library.corpus_dir / "jobs.txt").read_bytes()
    [outcome] = library.add([_upload(tmp_path, "jobs.txt", "新的岗位职责说明。".encode())])
    assert outcome.ok and "原来的文件已移到回收站" in outcome.message
    [entry] = library.trash()
    assert entry.id == outcome.trash_id and entry.reason == "replaced"
    restored = library.restore(entry.id)
    assert restored.ok and "原来的同名文件已移到回收站" in restored.message
    assert (library.corpus_dir / "jobs.txt").read_bytes() == old
    assert [e.reason for e in library.trash()] == ["restored-over"]


def test_the_quota_refuses_before_writing(small_corpus: Path, hashing_embedder, tmp_path) -> None:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    retriever = Retriever.load(index, embedder=hashing_embedder)
    size = sum(path.stat().st_size for path in small_corpus.iterdir())
    library = Library(small_corpus, index, retriever, Quota(max_documents=3, max_bytes=size + 30))
    before = sorted(p.name for p in small_corpus.iterdir())
    outcomes = library.add(
        [
            _upload(
                tmp_path, "big.txt", ("差旅费报销规定。" * 10).encode()
            ),  # 240 bytes: too large
            _upload(tmp_path, "a.txt", "甲。".encode()),  # fits: the third document
            _upload(tmp_path, "b.txt", "乙。".encode()),  # a fourth is one too many
        ]
    )
    assert [o.ok for o in outcomes] == [False, True, False]
    assert "总大小上限" in outcomes[0].message and "最多 3 篇文档" in outcomes[2].message
    assert sorted(p.name for p in small_corpus.iterdir()) == sorted([*before, "a.txt"])


def test_removing_to_the_trash_and_restoring(library: Library) -> None:
    outcome = library.remove("fruit.md")
    assert outcome.ok and outcome.trash_id and "移到了回收站" in outcome.message
    assert [entry.name for entry in library.trash()] == ["fruit.md"]
    assert not library.restore("no-such-entry").ok
    assert library.restore(outcome.trash_id).ok
    assert (library.corpus_dir / "fruit.md").exists() and library.trash() == []


# ------------------------------------------------------------------- the page's helpers


def test_earlier_questions_take_only_what_could_have_been_asked() -> None:
    history = [
        {"role": "user", "content": "办公室主任的直接上级是谁?"},
        {"role": "assistant", "content": "<div>答案</div>"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "那"}, {"type": "text", "text": "呢"}],
        },
        {"role": "user", "content": "问" * (MAX_QUESTION_CHARS + 1)},  # refused when asked
        {"role": "user", "content": [{"type": "file", "file": {"path": "/etc/passwd"}}]},
        "not a message",
        {"role": "user"},
    ]
    assert earlier_questions(history) == ["办公室主任的直接上级是谁?", "那呢", "", ""]
    assert earlier_questions("junk") == []
    many = [{"role": "user", "content": f"问题{n}"} for n in range(80)]
    assert earlier_questions(many) == [f"问题{n}" for n in range(30, 80)]


def test_a_full_history_costs_little() -> None:
    history = [f"{'办公室主任的直接上级是谁' * 83}{n}" for n in range(50)]
    assert all(len(item) <= MAX_QUESTION_CHARS for item in history)
    started = time.monotonic()
    complete_followup("那行政助理呢?", history)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("", "请先输入问题"),
        (" \n ", "请先输入问题"),
        ("\udc80办公室", "无效的字符"),
        ("问" * (MAX_QUESTION_CHARS + 1), "超过了"),
    ],
)
def test_unsearchable_questions_are_explained_in_chinese(question: str, says: str) -> None:
    assert says in question_problem(question)


def test_trash_names_are_escaped() -> None:
    from retriever.trash import TrashEntry

    entry = TrashEntry(
        "20260101T000000Z-1", "<img src=x>.txt", "2026-01-01T00:00:00+00:00", "removed", 3
    )
    table = trash_html([entry])
    assert "&lt;img src=x&gt;.txt" in table and "2026-01-01 00:00 UTC 被删除" in table


def test_a_name_that_is_not_valid_unicode_is_refused() -> None:
    with pytest.raises(UploadError, match="不是有效的 Unicode"):
        check_name("\udcff.txt")


@pytest.mark.parametrize("question", ["\u200b", " \ufeff\u200d ", "\u3000\u2060"])
def test_a_question_that_shows_nothing_is_empty(question: str) -> None:
    assert question_problem(question) == "请先输入问题"


# ------------------------------------------------------------------- the engine's reasons

# Files the engine cannot read, in the common ways: their reasons must be known to
# web/reasons.py, or the page would show them in English.
UNREADABLE = {
    "damaged.pdf": b"%PDF-1.4 this is not the rest of a PDF",
    "cut.pdf": text_pdf("hello")[:200],
    "scan.pdf": page_pdf(b""),
    "fake.docx": b"PK not a zip",
    "noise.txt": bytes(range(256)) * 20,
    "binary.txt": b"abc\x01\x02\x03\x04\x05\x06" * 50,
}
ENGLISH = re.compile(r"[A-Za-z]{5,}")  # PDF, Word, docx, UTF-8, OCR may stay


@pytest.mark.parametrize("name", UNREADABLE)
def test_why_the_engine_cannot_read_a_file_is_said_in_chinese(name: str) -> None:
    with pytest.raises(CorpusError) as refused:
        extract_text(UNREADABLE[name], Path(name).suffix, name)
    reason = file_reason(name, str(refused.value))
    assert not ENGLISH.search(reason), reason
    assert name not in reason  # shown beside it on the page


def test_the_reason_of_a_damaged_pdf_upload_is_chinese(tmp_path: Path) -> None:
    path = tmp_path / "damaged.pdf"
    path.write_bytes(UNREADABLE["damaged.pdf"])
    with pytest.raises(UploadError) as refused:
        check_content(path, "damaged.pdf")
    assert (
        str(refused.value)
        == "damaged.pdf 无法作为文档读取：不是可读的 PDF：文件已损坏，或者不是 PDF"
    )


@pytest.mark.parametrize(
    ("reason", "chinese"),
    [
        ("x.pdf: not a readable PDF (Stream has ended unexpectedly)", "不是可读的 PDF"),
        ("x.pdf: the PDF has 6000 pages, over the limit of 5000 for one file", "6000 页"),
        ("x.pdf: 60.2 MB is over the 50 MB limit for one file", "60.2 MB，超过单个文件 50 MB"),
        ("x.pdf, line 3: id 'a' appears twice", "第 3 行的 id 'a' 重复出现"),
        (
            "x.pdf: cannot be read (Permission denied)",
            "无法读取文件（系统提示：Permission denied）",
        ),
        ("x.pdf: a reason nobody foresaw", "无法读取这个文件，程序给出的原因是：a reason nobody"),
    ],
)
def test_file_reasons(reason: str, chinese: str) -> None:
    assert chinese in file_reason("x.pdf", reason)


def test_build_errors() -> None:
    assert build_error("nothing to index in corpus: a.pdf: …") == "文档库里没有能读取的文档"
    assert build_error("disk full") == "程序给出的原因是：disk full"


def test_a_skipped_file_is_listed_with_a_chinese_reason(
    small_corpus: Path, hashing_embedder, tmp_path: Path
) -> None:
    (small_corpus / "damaged.pdf").write_bytes(UNREADABLE["damaged.pdf"])
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    library = Library(small_corpus, index, Retriever.load(index, embedder=hashing_embedder))
    rows = {row.name: row.status for row in library.documents()}
    assert rows["damaged.pdf"] == "未能读取：不是可读的 PDF：文件已损坏，或者不是 PDF"


# ------------------------------------------------------------------- the page's handlers


def _request() -> SimpleNamespace:
    """What the handlers read of a Gradio request, without access control: an editor."""
    return SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"), cookies={})


@pytest.fixture
def page(library: Library, tmp_path: Path) -> Page:
    libraries = Libraries(library, tmp_path / "bases")
    return Page(Service(libraries, QuestionLimit(0)), Access(), BrowserUploads(tmp_path / "gradio"))


def test_a_follow_up_completed_past_the_limit_is_searched_as_typed(page: Page) -> None:
    earlier = "办公室主任" * 199 + "的职责"  # its subject alone is 995 characters
    history = [{"role": "user", "content": earlier}]
    # Completed, it would be over the limit: it is searched as typed.
    assert complete_followup("它每天做什么?", [earlier]) == "它每天做什么?"
    reply = page.respond("它每天做什么?", history, DEFAULT, _request())
    assert "qa-error" not in reply and "按上文理解为" not in reply


def test_a_question_the_engine_refuses_gets_a_chinese_reply(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(question: str, **settings: object) -> None:
        raise QuestionError("the question is empty")

    monkeypatch.setattr(page.libraries.default.retriever, "searched", refuse)
    reply = page.respond("办公室主任是谁?", [], DEFAULT, _request())
    assert "无法搜索这个问题" in reply and "empty" not in reply
    assert "请先输入问题" in page.respond("\u200b", [], DEFAULT, _request())


def test_the_progress_bar_starts_with_reading_and_no_made_up_percent(page: Page) -> None:
    shown: list[tuple[float, str]] = []
    page.remove_document(
        "fruit.md", DEFAULT, _request(), lambda fraction, desc: shown.append((fraction, desc))
    )
    assert shown[0] == (0.0, "正在重建索引：读取文档")
    assert all(fraction == 0.0 for fraction, desc in shown if re.search(r"计算向量 0/", desc))


def test_what_the_page_says_after_a_rebuild_fits_the_change(page: Page) -> None:
    def progress(fraction: float, desc: str) -> None:
        pass

    removed = page.remove_document("fruit.md", DEFAULT, _request(), progress)[0]
    assert "索引已重建，fruit.md 的内容不会再出现在答案里。" in removed
    assert "新加入" not in removed
    [entry] = page.libraries.default.trash()
    restored = page.restore_document(entry.id, DEFAULT, _request(), progress)[0]
    assert "索引已重建，fruit.md 又可以提问了。" in restored


def test_build_progress_moves_with_the_passages_embedded(library: Library) -> None:
    library._embedded(0, 400)
    assert (library.state.stage, library.state.fraction) == ("计算向量 0/400", 0.0)
    library._embedded(200, 400)
    assert library.state.fraction == pytest.approx(0.45)
    library._embedded(400, 400)
    assert (library.state.stage, library.state.fraction) == ("写入索引", 0.9)


def test_the_index_line_follows_a_rebuild(page: Page, library: Library, tmp_path: Path) -> None:
    line, again = page.index_line(DEFAULT, _request())
    assert "正在重建索引" not in line and again.value == WATCH_IDLE_SECONDS
    # Between an editing button's click and its rebuild's start, the page asks as often.
    assert page.index_line(DEFAULT, _request(), awaiting=True)[1].value == WATCH_BUILD_SECONDS
    embedder = library.retriever.embedder
    library.add([_upload(tmp_path, "travel.txt", "差旅费须在十五个工作日内报销。".encode())])
    embedder.hold()
    ticket = library.rebuild()
    assert library.state.running and library.state.fraction == 0.0  # reading, at once
    assert embedder.building.wait(timeout=30)
    line, again = page.index_line(DEFAULT, _request())
    assert "正在重建索引（计算向量 0/" in line and again.value == WATCH_BUILD_SECONDS
    embedder.gate.set()
    library.wait(ticket)
    line, again = page.index_line(DEFAULT, _request())
    assert "3 篇文档" in line and "正在重建索引" not in line
    assert again.value == WATCH_IDLE_SECONDS


def test_the_page_creates_renames_and_deletes_knowledge_bases(page: Page) -> None:
    said, picker = page.create_base(" 制度 ", _request())
    assert "已新建知识库「制度」" in said and picker.value == "制度"
    assert picker.choices == [("默认知识库", DEFAULT), ("制度", "制度")]
    # A new base has no index: asking it says so, in Chinese; the default base still answers.
    assert "知识库「制度」还没有索引：请先上传文档" in page.respond("报销?", [], "制度", _request())
    assert "还没有索引" in page.index_line("制度", _request())[0]
    assert "qa-answer" in page.respond("办公室主任和行政主管哪个大?", [], DEFAULT, _request())
    for name, why in (("制度", "已经有叫「制度」的知识库"), ("../etc", "不能作知识库的名称")):
        said, picker = page.create_base(name, _request())
        assert why in said and picker.value == DEFAULT
    said, picker, renamed = page.rename_base("制度", "规章", _request())
    assert "已改名为「规章」" in said and picker.value == "规章"
    assert json.loads(renamed) == {"from": "制度", "to": "规章"}  # for the saved conversations
    assert page.rename_base("规章", "规章", _request())[2] == ""
    assert "知识库「制度」已不存在" in page.respond("报销?", [], "制度", _request())
    assert "默认知识库不能改名或删除" in page.delete_base(DEFAULT, None, _request())[0]
    # The first click asks; a second within a few seconds deletes.
    said, _, armed, button = page.delete_base("规章", None, _request())
    assert "再点一次" in said and armed[0] == "规章" and button.value == CONFIRM_LABEL
    assert [base.name for base in page.libraries.list()] == [DEFAULT, "规章"]
    assert page.delete_base("规章", ["规章", armed[1] - 60], _request())[2][0] == "规章"
    said, picker, armed, button = page.delete_base("规章", armed, _request())
    assert "已移到知识库回收站" in said and picker.value == DEFAULT
    assert armed is None and button.value == DELETE_LABEL
    # A conversation of the deleted base reopened: said, and no other base chosen for it.
    assert page.bases(_request(), "规章").value == "规章"
    gone = page.state("规章", _request())
    assert "知识库「规章」已不存在" in gone[0] and "jobs.txt" not in gone[1]
    assert gone[5].choices and gone[-1].visible  # a manager may restore it from there
    assert "知识库「规章」已不存在" in page.respond("报销?", [], "规章", _request())
    assert [base.name for base in page.libraries.list()] == [DEFAULT]
    [entry] = page.libraries.trash()
    assert entry.name == "规章"
    # The deleted base is offered for restoring, to editors, and comes back chosen.
    deleted = page.state(DEFAULT, _request())[5]
    assert deleted.choices[0][1] == entry.id and deleted.choices[0][0].startswith("规章（")
    assert "请先选择要恢复的知识库" in page.restore_base(None, "", DEFAULT, _request())[0]
    page.create_base("规章", _request())  # its old name taken: restored under a new one
    said, _ = page.restore_base(entry.id, "", "规章", _request())
    assert "已经有叫「规章」的知识库" in said and "新名称" in said
    said, picker = page.restore_base(entry.id, "旧规章", "规章", _request())
    assert "知识库「旧规章」已恢复" in said and picker.value == "旧规章"
    assert [base.name for base in page.libraries.list()] == [DEFAULT, "旧规章", "规章"]
    assert page.libraries.trash() == []
    said, _ = page.restore_base(entry.id, "", DEFAULT, _request())
    assert "知识库回收站里没有这一项" in said


def test_readers_cannot_change_the_knowledge_bases(library: Library, tmp_path: Path) -> None:
    access = Access(users={"ann": _Credential(Role.READER, "not a real hash")})
    uploads = BrowserUploads(tmp_path / "gradio")
    page = Page(Service(Libraries(library, tmp_path / "bases"), QuestionLimit(0)), access, uploads)
    reader = SimpleNamespace(username="ann", client=SimpleNamespace(host="127.0.0.1"), cookies={})
    assert MANAGERS_ONLY in page.create_base("x", reader)[0]
    assert [base.name for base in page.libraries.list()] == [DEFAULT]
    entry = page.libraries.delete(page.libraries.create("x").name)
    assert page.state(DEFAULT, reader)[5].choices == []  # deleted bases are not listed
    assert MANAGERS_ONLY in page.restore_base(entry.id, "", DEFAULT, reader)[0]
    assert page.libraries.trash() == [entry]


def test_access_rules_apply_per_knowledge_base(library: Library, tmp_path: Path) -> None:
    """An access file's `bases` lets a user into those bases only: the picker, questions,
    the index line, the documents, editing and previews all follow it, and only an editor
    of every base manages bases."""
    users = {
        "hr": _Credential(Role.EDITOR, "x", frozenset({"人事"})),
        "boss": _Credential(Role.EDITOR, "x"),
    }
    libraries = Libraries(library, tmp_path / "bases")
    service = Service(libraries, QuestionLimit(0))
    page = Page(service, Access(users=users), BrowserUploads(tmp_path / "g"))
    hr, boss = (
        SimpleNamespace(username=name, client=SimpleNamespace(host="127.0.0.1"), cookies={})
        for name in ("hr", "boss")
    )
    assert "已新建知识库「人事」" in page.create_base("人事", boss)[0]
    assert page.bases(hr).choices == [("人事", "人事")] and page.bases(hr).value == "人事"
    assert page.bases(boss, "人事").value == "人事" and len(page.bases(boss).choices) == 2
    forbidden = "你没有使用知识库「default」的权限"
    assert forbidden in page.respond("办公室主任和行政主管哪个大?", [], DEFAULT, hr)
    assert forbidden in page.index_line(DEFAULT, hr)[0]
    # Asked for the default base's side, it gets its own base's, never the default's.
    info, documents, *_ = page.state(DEFAULT, hr)
    assert "人事" in info and "jobs.txt" not in documents
    assert "jobs.txt" in page.state(DEFAULT, boss)[1]
    assert forbidden in page.remove_document("jobs.txt", DEFAULT, hr)[0]
    assert (library.corpus_dir / "jobs.txt").exists()
    *_, editing, bases = page.state("人事", hr)
    assert editing.visible and not bases.visible  # edits its base, manages none
    assert MANAGERS_ONLY in page.rename_base("人事", "人事部", hr)[0]
    assert page.state(DEFAULT, boss)[-1].visible
    # A renamed base is no longer the one listed: the rule fails closed.
    page.rename_base("人事", "人事部", boss)
    assert page.bases(hr).choices == []
    assert "你没有使用知识库「人事部」的权限" in page.respond("报销?", [], "人事部", hr)


# ------------------------------------------------------------------- the page's language

GRADIO_PAGE = (
    '<!doctype html>\n<html\n\tlang="en"\n\tstyle="margin: 0">\n\t<head>\n'
    '\t\t<meta charset="utf-8" />\n\t\t<script type="module" src="./assets/index.js"></script>'
    "\n\t</head><body>中文</body></html>"
)


def _served(path: str) -> httpx.Response:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    def page(request) -> HTMLResponse:
        response = HTMLResponse(GRADIO_PAGE)
        response.set_cookie("qa-browser", "x")
        return response

    app = Starlette(
        routes=[Route("/", page), Route("/config", lambda request: JSONResponse({"a": "<head>"}))]
    )
    with TestClient(ChinesePage(app)) as client:
        return client.get(path)


def test_gradio_page_starts_in_chinese_whatever_the_browser_prefers() -> None:
    response = _served("/")
    page = response.text
    assert page.index("<head><script>Object.defineProperties(navigator") < page.index(
        'type="module"'
    )
    assert 'language: {value: "zh-CN"}' in page and '<html\n\tlang="zh-CN"' in page
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.cookies["qa-browser"] == "x"
    assert _served("/config").json() == {"a": "<head>"}  # only the page's HTML changes


# ------------------------------------------------------------------- citations you can follow


def _specs(page_html: str) -> list[dict]:
    values = re.findall(r'<button type="button" class="qa-open" value="([^"]*)"', page_html)
    return [json.loads(html.unescape(value)) for value in values]


def test_each_marker_and_source_opens_the_passage_in_its_document() -> None:
    page_html = answer_html(_answer())
    assert re.findall(r'class="qa-cite" value="(\d)"', page_html) == ["1", "2"]
    specs = _specs(page_html)
    assert specs[0] == {
        "doc_id": "规章.txt",
        "start": 100,
        "end": 119,
        "marks": [[106, 116]],
        "base": DEFAULT,
    }
    assert [spec["marks"] for spec in specs] == [[[106, 116]], [[500, 508]], []]
    assert "qa-rate" not in page_html  # an answer nobody remembered cannot be rated


def test_a_remembered_answer_has_rating_buttons_with_its_id() -> None:
    page_html = answer_html(_answer(), answer_id="abc_DEF-0123456789abcd")
    buttons = re.findall(r'class="qa-rate" name="(good|bad)" value="([^"]*)"', page_html)
    assert buttons == [("good", "abc_DEF-0123456789abcd"), ("bad", "abc_DEF-0123456789abcd")]
    assert "\n" not in page_html


def test_a_script_in_a_document_name_stays_inside_the_spec() -> None:
    hit = _hit(1, "正文。", 0, doc_id=f'"{SCRIPT}.txt', source=f'"{SCRIPT}.txt')
    page_html = answer_html(Answer("问?", "正文。[1]", True, 0.9, [Citation(1, hit, [])]))
    assert "<script" not in page_html and "<img" not in page_html
    assert _specs(page_html)[0]["doc_id"] == f'"{SCRIPT}.txt'


def _preview(text: str, start: int, end: int, marks=(), *, low: int = 0) -> Preview:
    return Preview(
        doc_id="规章.txt",
        source=f"{SCRIPT}.txt",
        title="规章",
        heading=SCRIPT,
        length=len(text) + low + 10,
        start=low,
        end=low + len(text),
        text=text,
        passage=Span(start, end),
        marks=tuple(Span(a, b) for a, b in marks),
    )


def test_the_preview_marks_the_quotes_inside_the_passage_and_escapes_everything() -> None:
    text = f"前文{SCRIPT}。差旅费十五日内报销。住宿另计。后文 & 结尾"
    start = text.index("差旅费")
    quote = (start, start + len("差旅费十五日内报销。"))
    shown = preview_html(_preview(text, start, text.index("后文"), [quote]))
    assert "<script" not in shown and "<img" not in shown
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in shown
    assert (
        '<span class="qa-preview-passage"><mark>差旅费十五日内报销。</mark></span>'
        '<span class="qa-preview-passage">住宿另计。</span>后文 &amp; 结尾'
    ) in shown
    # Counted from 1 on the page, as the sources are: offsets 11–24 are 第 12–24 字.
    assert f"第 {start + 1}–{text.index('后文')} 字" in shown
    assert "全文共" in shown and "前后从略" in shown and "\n" not in shown


def test_a_preview_window_that_starts_later_keeps_its_offsets() -> None:
    shown = preview_html(_preview("甲乙丙丁戊", 102, 104, [(103, 104)], low=100))
    assert '…甲乙<span class="qa-preview-passage">丙</span>' in shown
    assert '<span class="qa-preview-passage"><mark>丁</mark></span>戊…' in shown
    assert "原文第 101–105 字" in shown


@pytest.fixture
def previews(library: Library) -> Previews:
    return Previews(library, context=30)


def test_a_preview_is_a_window_of_the_indexed_document(previews: Previews) -> None:
    text = (previews.library.corpus_dir / "jobs.txt").read_text(encoding="utf-8")
    start = text.index("办公室主任和行政主管,在没有")
    end = text.index("两者职责不同。") + len("两者职责不同。")
    quote = (start, text.index("两者"))
    shown = previews.preview("jobs.txt", start, end, [quote])
    assert shown.text == text[shown.start : shown.end]
    assert shown.start < start and end < shown.end and shown.length == len(text)
    assert shown.start == 0 or text[shown.start - 1] == "\n"  # whole lines where it can
    assert [text[mark.start : mark.end] for mark in shown.marks] == [text[quote[0] : quote[1]]]
    assert shown.source == "jobs.txt" and shown.heading
    assert shown.to_dict()["highlights"] == [{"start": quote[0], "end": quote[1]}]


@pytest.mark.parametrize(
    "doc_id",
    [
        "../canary.txt",
        "/etc/passwd",
        "corpus/jobs.txt",
        "./jobs.txt",
        "jobs.txt/",
        "JOBS.TXT",
        ".trash/x/jobs.txt",
        "",
    ],
)
def test_a_preview_names_only_documents_of_the_served_index(
    previews: Previews, doc_id: str
) -> None:
    canary = previews.library.corpus_dir.parent / "canary.txt"
    canary.write_text("机密", encoding="utf-8")
    with pytest.raises(PreviewError) as refused:
        previews.preview(doc_id, 0, 2)
    assert refused.value.status == 404 and "索引里没有这篇文档" in str(refused.value)


def test_a_file_added_since_the_build_is_not_previewed(previews: Previews) -> None:
    (previews.library.corpus_dir / "new.txt").write_text("新文件的内容。", encoding="utf-8")
    with pytest.raises(PreviewError) as refused:
        previews.preview("new.txt", 0, 2)
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("start", "end", "marks"),
    [(5, 2, []), (0, 10_001, []), (0, 5, [(0, 100_000)]), (100_000, 100_001, [])],
)
def test_offsets_outside_the_document_are_refused(
    previews: Previews, start: int, end: int, marks: list
) -> None:
    with pytest.raises(PreviewError) as refused:
        previews.preview("jobs.txt", start, end, marks)
    assert refused.value.status == 422


def test_a_document_changed_since_the_build_is_not_previewed(previews: Previews) -> None:
    path = previews.library.corpus_dir / "fruit.md"
    path.write_text("# 苹果\n改过的内容。\n", encoding="utf-8")
    with pytest.raises(PreviewError) as refused:
        previews.preview("fruit.md", 0, 4)
    assert refused.value.status == 409 and "改过了" in str(refused.value)


def test_a_document_replaced_by_a_symlink_is_not_followed(
    previews: Previews, tmp_path: Path
) -> None:
    path = previews.library.corpus_dir / "fruit.md"
    outside = tmp_path / "outside.md"
    outside.write_bytes(path.read_bytes())  # the same bytes, so only the link gives it away
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(PreviewError) as refused:
        previews.preview("fruit.md", 0, 4)
    assert refused.value.status == 409


@pytest.mark.parametrize(
    "spec",
    [
        None,
        [],
        {"doc_id": "jobs.txt", "start": "0", "end": 4, "marks": []},
        {"doc_id": "jobs.txt", "start": True, "end": 4, "marks": []},
        {"doc_id": "jobs.txt", "start": 0, "end": 4, "marks": [[0]]},
        {"doc_id": "jobs.txt", "start": 0, "end": 4, "marks": [[0, -1]]},
        {"doc_id": 3, "start": 0, "end": 4, "marks": []},
        {"doc_id": "jobs.txt", "start": 0, "end": 4},
        {"base": 3, "doc_id": "jobs.txt", "start": 0, "end": 4, "marks": []},
    ],
)
def test_a_malformed_preview_request_from_the_page_is_refused(spec: object) -> None:
    with pytest.raises(PreviewError):
        parse_spec(spec)


def test_marks_are_written_as_slices() -> None:
    assert parse_marks(["3:10", "0:0"]) == [(3, 10), (0, 0)]
    for bad in ["3-10", ":4", "a:b", "1:2:3", "-1:4", "１:２"]:
        with pytest.raises(PreviewError):
            parse_marks([bad])


class _Events:
    """What the page's handlers read of a Gradio event."""

    def __init__(self, **data) -> None:
        self._data = data


def test_the_page_opens_a_source_and_refuses_what_the_index_does_not_hold(
    library: Library, previews: Previews, tmp_path: Path
) -> None:
    feedback = Feedback(AnswerLog(), FeedbackLog(tmp_path / "fb", max_bytes=MB), FeedbackLimit(0))
    libraries = Libraries(library, tmp_path / "bases")
    service = Service(libraries, QuestionLimit(0))
    citations = Citations(Access(), service, BasePreviews(libraries, previews), feedback)
    answer = library.retriever.ask("办公室主任和行政主管哪个大?")
    [spec] = _specs(answer_html(answer))[:1]
    shown = citations.open_source(_Events(spec=json.dumps(spec)), _request())
    assert "qa-preview-passage" in shown and "qa-error" not in shown
    for bad in [json.dumps({**spec, "doc_id": "../canary.txt"}), "{", "x" * 20_000, 3]:
        refused = citations.open_source(_Events(spec=bad), _request())
        assert "qa-error" in refused and "qa-preview-passage" not in refused
    for base, why in (("nobody", "没有叫「nobody」的知识库"), ("../x", "不能作知识库的名称")):
        elsewhere = json.dumps({**spec, "base": base})
        refused = citations.open_source(_Events(spec=elsewhere), _request())
        assert why in refused and "qa-preview-passage" not in refused


# ------------------------------------------------------------------- feedback


@pytest.fixture
def feedback(tmp_path: Path) -> Feedback:
    return Feedback(AnswerLog(), FeedbackLog(tmp_path / "feedback", max_bytes=MB), FeedbackLimit(0))


def _rate(feedback: Feedback, answer_id: str, rating: str = "good", comment: str = "", **kw):
    rater = Identity(kw.get("user", "bob"), Role.EDITOR)
    return feedback.rate(answer_id, rating, comment, user=rater, client="1.2.3.4")


def test_a_rating_stores_the_answer_as_it_was_given(feedback: Feedback) -> None:
    answer_id = feedback.answers.remember(_answer(), index="index", asked="那报销呢?")
    entry = _rate(feedback, answer_id, "bad", "  住宿那句不对  ")
    [stored] = feedback.log.entries()
    assert stored == entry
    assert stored["comment"] == "住宿那句不对" and stored["user"] == "bob"
    assert stored["question"] == "差旅费多久内报销?" and stored["asked"] == "那报销呢?"
    assert stored["index"] == "index" and stored["rated_at"] and stored["answered_at"]
    assert stored["answer"] == _answer().answer
    first = stored["citations"][0]
    assert (first["doc_id"], first["start"], first["end"]) == ("规章.txt", 100, 119)
    assert first["answer_sentences"] == [{"start": 106, "end": 116, "text": "差旅费十五日内报销。"}]
    assert (feedback.log.path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    ("answer_id", "rating", "comment", "status"),
    [
        ("REMEMBERED", "great", "", 422),
        ("REMEMBERED", "good", "长" * 1001, 422),
        ("REMEMBERED", "good", "\ud800", 422),
        ("REMEMBERED", "good", None, 422),
        ("A" * 22, "good", "", 404),
        ("../../etc/passwd", "good", "", 404),
        (None, "good", "", 404),
    ],
)
def test_bad_ratings_are_refused_and_nothing_is_written(
    feedback: Feedback, answer_id, rating, comment, status: int
) -> None:
    remembered = feedback.answers.remember(_answer(), index="index")
    if answer_id == "REMEMBERED":
        answer_id = remembered
    with pytest.raises(FeedbackError) as refused:
        feedback.rate(answer_id, rating, comment, user=ANONYMOUS, client="c")
    assert refused.value.status == status
    assert not feedback.log.path.exists()


def test_ratings_are_limited_per_client_and_the_log_in_size(tmp_path: Path) -> None:
    answers = AnswerLog()
    limited = Feedback(answers, FeedbackLog(tmp_path / "a", max_bytes=MB), FeedbackLimit(2))
    answer_id = answers.remember(_answer(), index="index")
    _rate(limited, answer_id)
    _rate(limited, answer_id)
    with pytest.raises(FeedbackError) as refused:
        _rate(limited, answer_id)
    assert refused.value.status == 429 and "每分钟最多 2 次" in str(refused.value)
    assert len(limited.log.entries()) == 2
    small = Feedback(answers, FeedbackLog(tmp_path / "b", max_bytes=3000), FeedbackLimit(0))
    _rate(small, answer_id)
    with pytest.raises(FeedbackError) as full:
        _rate(small, answer_id, comment="再来一次" * 100)
    assert full.value.status == 507 and len(small.log.entries()) == 1


def test_old_answers_are_forgotten(tmp_path: Path) -> None:
    answers = AnswerLog(size=2)
    first, *_ = [answers.remember(_answer(), index="index") for _ in range(3)]
    assert answers.get(first) is None


def test_a_torn_last_line_is_skipped(feedback: Feedback) -> None:
    answer_id = feedback.answers.remember(_answer(), index="index")
    _rate(feedback, answer_id)
    with feedback.log.path.open("a", encoding="utf-8") as log:
        log.write('{"id": "torn", "rating": "go')
    assert len(feedback.log.entries()) == 1


def test_the_export_is_an_evaluation_set_without_a_corpus(feedback: Feedback) -> None:
    liked = feedback.answers.remember(_answer(), index="index")
    disliked = feedback.answers.remember(_answer(), index="index")
    elsewhere = feedback.answers.remember(_answer(), index="other")
    nothing = Answer(
        "天气?", "语料中似乎没有…", False, 0.2, [Citation(1, _hit(1, "段落。", 0), [])]
    )
    unanswerable = feedback.answers.remember(nothing, index="index")
    _rate(feedback, liked, "bad")
    _rate(feedback, liked, "good", "引用准确")  # the latest rating wins
    _rate(feedback, disliked, "bad")
    _rate(feedback, elsewhere, "good")
    _rate(feedback, unanswerable, "good")
    files = export(feedback.log.entries(), index="index")
    queries = [json.loads(line) for line in files["queries.jsonl"].splitlines()]
    # In the order of each answer's latest rating.
    assert [query["id"] for query in queries] == [
        f"fb-{liked}",
        f"fb-{disliked}",
        f"fb-{unanswerable}",
    ]
    by_id = {query["id"]: query for query in queries}
    assert (
        by_id[f"fb-{liked}"]["rating"] == "good" and by_id[f"fb-{liked}"]["comment"] == "引用准确"
    )
    assert by_id[f"fb-{liked}"]["text"] == "差旅费多久内报销?"
    assert [q["answerable"] for q in queries] == [True, None, False]
    assert by_id[f"fb-{unanswerable}"]["cited"] == []
    assert files["qrels.tsv"].splitlines() == [
        f"fb-{liked}\t规章.txt[100:119]\t1",
        f"fb-{liked}\t规章.txt[500:508]\t1",
        f"fb-{disliked}\t规章.txt[100:119]\t0",
        f"fb-{disliked}\t规章.txt[500:508]\t0",
    ]
    assert "qrels.tsv" in files["README.md"]
    assert len(export(feedback.log.entries())["queries.jsonl"].splitlines()) == 4
    with zipfile.ZipFile(io.BytesIO(export_zip(feedback.log.entries()))) as archive:
        assert sorted(archive.namelist()) == [
            "feedback/README.md",
            "feedback/qrels.tsv",
            "feedback/queries.jsonl",
        ]


def test_the_export_reads_back_as_an_evaluation_set(feedback: Feedback, tmp_path: Path) -> None:
    from retriever.evaluation import load_dataset

    answer_id = feedback.answers.remember(_answer(), index="index")
    _rate(feedback, answer_id, "good")
    out = tmp_path / "exported"
    assert feedback_main(["export", str(feedback.log.folder), str(out)]) == 0
    (out / "corpus.jsonl").write_text("", encoding="utf-8")  # the corpus is the user's
    dataset = load_dataset(out)
    assert dataset.questions == {f"fb-{answer_id}": "差旅费多久内报销?"}
    assert dataset.gold[f"fb-{answer_id}"] == {"规章.txt[100:119]", "规章.txt[500:508]"}


def test_the_page_stores_a_rating_and_says_so(library: Library, tmp_path: Path) -> None:
    answers = AnswerLog()
    feedback = Feedback(answers, FeedbackLog(tmp_path / "fb", max_bytes=MB), FeedbackLimit(0))
    libraries = Libraries(library, tmp_path / "bases")
    service = Service(libraries, QuestionLimit(0), answers)
    page = Page(service, Access(), BrowserUploads(tmp_path / "g"))
    reply = page.respond("办公室主任和行政主管哪个大?", [], DEFAULT, _request())
    [answer_id] = set(re.findall(r'class="qa-rate" name="good" value="([^"]+)"', reply))
    citations = Citations(Access(), service, BasePreviews(libraries, Previews(library)), feedback)
    said = citations.rate(_Events(answer=answer_id, rating="good", comment=""), _request())
    assert 'data-ok="1"' in said and "已记录" in said and 'data-commented="0"' in said
    said = citations.rate(_Events(answer=answer_id, rating="good", comment="好"), _request())
    assert 'data-commented="1"' in said
    assert [entry["comment"] for entry in feedback.log.entries()] == ["", "好"]
    refused = citations.rate(_Events(answer="nope", rating="good"), _request())
    assert 'data-ok="0"' in refused and "找不到这个回答" in refused
    refused = citations.rate(_Events(answer=answer_id, rating="<b>", comment=3), _request())
    assert 'data-ok="0"' in refused and "<b>" not in refused


def test_the_feedback_folder_lives_apart_from_the_corpus_and_the_index(tmp_path: Path) -> None:
    default = WebSettings.from_env({"RETRIEVER_INDEX": str(tmp_path / "data" / "index")})
    assert default.feedback_folder == tmp_path / "data" / "feedback"
    assert WebSettings().feedback_folder == Path("feedback")
    for inside in ["corpus/feedback", "index/fb"]:
        with pytest.raises(SettingsError, match="choose a folder of its own"):
            WebSettings.from_env(
                {
                    "RETRIEVER_CORPUS": str(tmp_path / "corpus"),
                    "RETRIEVER_INDEX": str(tmp_path / "index"),
                    "RETRIEVER_FEEDBACK": str(tmp_path / inside),
                }
            )
    assert WebSettings.from_env({"RETRIEVER_FEEDBACK_PER_MINUTE": "0"}).feedback_per_minute == 0


# ------------------------------------------------------------------- conversations


class _Answers:
    """The page's handlers the chat calls, standing in for web.page.Page."""

    service = SimpleNamespace(model=None)  # no model server: no generated answers

    def check_question(self, message):
        return gr.validate(True, "")

    def respond(self, message, history, base, request):
        return f"答：{message}"

    def ask(self, question: str, request: gr.Request, base: str = "default") -> str:
        return self.respond(question, [], base, request)


def test_conversations_are_kept_by_the_browser_and_handed_to_the_chat_as_text() -> None:
    from web import conversations
    from web.chat import Generating, chat

    with gr.Blocks() as demo:
        base = gr.Dropdown(["default", "hr"], value="default")
        switch = Generating(gr.Checkbox(visible=False), gr.Button(visible=False))
        talk = chat(_Answers(), base, ["例子"], switch)
        conversations.conversation_list()
        shown = conversations.keep_in_browser(demo, talk, base)
    events = demo.get_config_file()["dependencies"]
    ours = {event["js"]: event for event in events if "qaConversations" in (event["js"] or "")}
    # Saving, restoring and switching run in the browser: no conversation goes to the server.
    save, restore, switch = (
        "(m, b) => qaConversations.save(m, b)",
        "(b) => qaConversations.restore(b)",
        "(m, b) => qaConversations.switched(m, b)",
    )
    assert set(ours) == {save, restore, switch}
    assert not any(event["backend_fn"] for event in ours.values())
    # Each change is saved with the base chosen; a conversation put back brings its base,
    # and its text as JSON for the server.
    assert ours[save]["inputs"] == [talk.chatbot._id, base._id]
    for js in [restore, switch]:
        assert ours[js]["outputs"] == [talk.chatbot._id, base._id, talk.restored._id]
    # That text becomes the history the next answer (and a follow-up) starts from; none of
    # this is part of the API. These steps are what the page chains its base check to.
    for js, then_event in zip([restore, switch], shown, strict=True):
        [then] = [event for event in events if event["trigger_after"] == ours[js]["id"]]
        assert then["backend_fn"] and then["api_visibility"] == "private"
        assert then["inputs"] == [talk.restored._id] and then["outputs"] == [talk.history._id]
        assert then_event["id"] == then["id"]
    # No event that runs on the server takes the chat's messages from the browser: a chat
    # message can name files and components, which Gradio would open and build.
    assert all(talk.chatbot._id not in event["inputs"] for event in events if event["backend_fn"])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (
            [
                {"role": "user", "content": "你好"},
                {"role": "assistant", "content": [{"type": "text", "text": "答"}]},
            ],
            [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "答"}],
        ),
        # Files and components keep no more than their text, and nothing names a path.
        (
            [
                {"role": "user", "content": [{"type": "file", "file": {"path": "/etc/passwd"}}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "component", "component": "image", "constructor_args": {}},
                        {"type": "text", "text": "看", "files": ["/etc/passwd"]},
                    ],
                },
                {"role": "system", "content": "忽略"},
                {"content": "无角色"},
                "/etc/passwd",
            ],
            [{"role": "user", "content": ""}, {"role": "assistant", "content": "看"}],
        ),
        ({"path": "/etc/passwd"}, []),
        ("[" * 100_000, []),
        ("not json", []),
    ],
)
def test_a_conversation_from_the_browser_is_kept_as_text_only(sent: object, kept: list) -> None:
    from web.chat import text_messages

    assert text_messages(json.dumps(sent) if not isinstance(sent, str) else sent) == kept
