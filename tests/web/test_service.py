"""One service behind the page and the API (web/service.py): the same request gets the same
answer, and the same refusal, from both faces.

In-process over the stand-in embedder: the page's handler is called as Gradio calls it, the
API through FastAPI's test client, both on one Service.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from retriever import Retriever
from web.access import Access
from web.api import api_router
from web.browser_uploads import BrowserUploads
from web.feedback import AnswerLog, Feedback
from web.feedback_log import FeedbackLog
from web.libraries import Libraries
from web.library import Library
from web.limits import FeedbackLimit, QuestionLimit
from web.page import Page
from web.preview import BasePreviews, Previews
from web.refusals import Refused
from web.service import Service

BROWSER = SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"), cookies={})


@pytest.fixture
def faces(small_corpus: Path, tmp_path: Path, hashing_embedder) -> tuple[Page, TestClient]:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    default = Library(small_corpus, index, Retriever.load(index, embedder=hashing_embedder))
    libraries = Libraries(default, tmp_path / "bases")
    answers = AnswerLog()
    service = Service(libraries, QuestionLimit(0), answers)
    feedback = Feedback(answers, FeedbackLog(tmp_path / "fb", max_bytes=10**6), FeedbackLimit(0))
    app = FastAPI()
    app.include_router(
        api_router(
            service,
            Access(),
            previews=BasePreviews(libraries, Previews(default)),
            feedback=feedback,
        )
    )
    return Page(service, Access(), BrowserUploads(tmp_path / "gradio")), TestClient(app)


def _text(page_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def test_the_page_and_the_api_give_the_same_answer(faces: tuple[Page, TestClient]) -> None:
    page, api = faces
    history = [{"role": "user", "content": "办公室主任和行政主管哪个大?"}]
    for question, earlier in (("行政助理负责什么?", []), ("那行政助理呢?", history)):
        shown = _text(page.respond(question, earlier, "default", BROWSER))
        earlier_questions = [turn["content"] for turn in earlier]
        answer = api.post("/api/ask", json={"question": question, "history": earlier_questions})
        assert answer.status_code == 200
        body = answer.json()
        assert body["answer"] and body["answer"] in shown.replace("\n", "")
        assert body["question"] in shown or body["question"] == question


@pytest.mark.parametrize(
    ("question", "base", "status"),
    [
        ("   ", "default", 422),
        ("问" * 1001, "default", 422),
        ("\ud800办公室", "default", 400),
        ("行政助理负责什么?", "nothere", 404),
        ("行政助理负责什么?", "../x", 422),
        ("行政助理负责什么?", "empty", 409),
    ],
)
def test_the_page_and_the_api_refuse_alike(
    faces: tuple[Page, TestClient], question: str, base: str, status: int
) -> None:
    page, api = faces
    if base == "empty":
        page.service.libraries.create("empty")  # a base without an index yet
    with pytest.raises(Refused) as refused:
        page.service.ask(Access().user(None), base, question, client="127.0.0.1")
    assert refused.value.status == status
    # As JSON escapes it: a lone surrogate cannot be encoded otherwise.
    body = json.dumps({"question": question, "base": base})
    said = api.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    assert said.status_code == status and said.json()["detail"] == refused.value.message
    shown = _text(page.respond(question, [], base, BROWSER))
    # A conversation's base that is gone is said as such on the page (not another base's).
    expected = "已不存在" if status == 404 else refused.value.message
    assert expected in shown


def test_an_uploaded_document_is_read_once(
    small_corpus: Path, tmp_path: Path, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload's check reads a Word file (web/uploads.py) and the build that follows
    takes that reading (retriever.corpus keeps it) instead of reading the file again."""
    import docx

    import retriever.corpus

    corpus = small_corpus  # this test's own copy
    index = tmp_path / "index"
    Retriever.build(corpus, index, embedder=hashing_embedder)
    library = Library(corpus, index, Retriever.load(index, embedder=hashing_embedder))
    document = docx.Document()
    document.add_paragraph("会议室的钥匙由前台保管，借用时登记。")
    upload = tmp_path / "upload.docx"
    document.save(upload)
    readings: list[str] = []
    extract = retriever.corpus.extract

    def counted(kind: str, data: bytes):
        readings.append(kind)
        return extract(kind, data)

    monkeypatch.setattr(retriever.corpus, "extract", counted)
    (added,) = library.add([(upload, "钥匙.docx")])
    assert added.ok, added.message
    assert library.wait(library.rebuild()).error is None
    assert readings == ["docx"]
    assert any(source.path == "钥匙.docx" for source in library.retriever.manifest.sources)
