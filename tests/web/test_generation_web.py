"""Generated answers through the HTTP API and the page's chat handler, in-process, against
the scripted OpenAI-compatible server (tests/model_server_stub.py) over real HTTP; the
browser test (tests/e2e/test_browser.py) drives the real page against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from model_server_stub import Reply, Stub, model_server
from starlette.testclient import TestClient

from retriever import Retriever
from retriever.generation import GenerationSettings, ModelServer
from web.access import Access
from web.api import api_router
from web.browser_uploads import BrowserUploads
from web.feedback import AnswerLog, Feedback
from web.feedback_log import FeedbackLog
from web.generating import streamed_reply
from web.libraries import Libraries
from web.library import Library
from web.limits import FeedbackLimit, QuestionLimit
from web.page import Page
from web.preview import BasePreviews, Previews
from web.service import Service

QUESTION = "行政助理负责什么?"
BROWSER = SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"), cookies={})


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    with model_server() as stub:
        yield stub


def _faces(
    small_corpus: Path, tmp_path: Path, embedder, model: ModelServer | None
) -> tuple[Page, TestClient]:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=embedder)
    default = Library(small_corpus, index, Retriever.load(index, embedder=embedder))
    libraries = Libraries(default, tmp_path / "bases")
    answers = AnswerLog()
    service = Service(libraries, QuestionLimit(0), answers, model=model)
    feedback = Feedback(answers, FeedbackLog(tmp_path / "fb", max_bytes=10**6), FeedbackLimit(0))
    app = FastAPI()
    previews = BasePreviews(libraries, Previews(default))
    app.include_router(api_router(service, Access(), previews=previews, feedback=feedback))
    return Page(service, Access(), BrowserUploads(tmp_path / "gradio")), TestClient(app)


@pytest.fixture
def faces(small_corpus: Path, tmp_path: Path, hashing_embedder, stub: Stub):
    model = ModelServer(GenerationSettings(stub.url, "stub", first_token_timeout=1.0))
    return _faces(small_corpus, tmp_path, hashing_embedder, model)


def test_the_api_answers_with_a_generated_answer_when_asked(faces, stub: Stub) -> None:
    _, api = faces
    stub.play(Reply(["行政助理负责员工的考勤[1]。"]))
    body = api.post("/api/ask", json={"question": QUESTION, "generate": True}).json()
    assert (body["answer_kind"], body["fallback"]) == ("generated", None)
    assert body["answer"] == "行政助理负责员工的考勤[1]。" and body["answer_id"]
    # Not asked for: extractive, and the model is not called.
    stub.play()
    body = api.post("/api/ask", json={"question": QUESTION}).json()
    assert body["answer_kind"] == "extractive" and stub.requests == []


def test_the_api_says_why_a_generation_fell_back(faces, stub: Stub) -> None:
    _, api = faces
    stub.play(Reply(status=500))
    body = api.post("/api/ask", json={"question": QUESTION, "generate": True}).json()
    assert body["answer_kind"] == "extractive" and "HTTP 500" in body["fallback"]


def test_the_api_streams_the_answer_as_server_sent_events(faces, stub: Stub) -> None:
    _, api = faces
    stub.play(Reply(["行政助理负责", "员工的考勤[1]。"]))
    with api.stream("POST", "/api/ask/stream", json={"question": QUESTION}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:]))
        for block in text.strip().split("\n\n")
    ]
    assert [name for name, _ in events] == ["extractive", "piece", "piece", "answer"]
    assert events[0][1]["answer_kind"] == "extractive"
    assert [data["text"] for name, data in events if name == "piece"] == [
        "行政助理负责",
        "员工的考勤[1]。",
    ]
    assert events[-1][1]["answer_kind"] == "generated" and events[-1][1]["answer_id"]


def test_without_a_model_generation_is_refused_and_the_page_has_no_switch(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    page, api = _faces(small_corpus, tmp_path, hashing_embedder, None)
    for path in ("/api/ask", "/api/ask/stream"):
        said = api.post(path, json={"question": QUESTION, "generate": True})
        assert said.status_code == 409 and "RETRIEVER_GENERATE_URL" in said.json()["detail"]
    assert page.service.model is None


def test_the_chat_shows_the_draft_then_the_checked_answer(faces, stub: Stub) -> None:
    page, _ = faces
    stub.play(Reply(["行政助理负责", "员工的考勤[1]。"]))
    shown = list(streamed_reply(page, QUESTION, [], "default", BROWSER))
    assert "模型正在撰写" in shown[0] and "qa-answer" in shown[0]  # the extractive one, at once
    assert "行政助理负责" in shown[1]
    assert "由模型撰写，每句都已与它所引的段落核对" in shown[-1]
    assert "行政助理负责员工的考勤" in shown[-1] and "模型正在撰写" not in shown[-1]
    stub.play(Reply(["行政助理每月加班 48 小时[1]。"]))
    final = list(streamed_reply(page, QUESTION, [], "default", BROWSER))[-1]
    assert "没有采用模型写的回答" in final and "「48」不在所引资料中" in final
    # A refusal is said as the plain chat says it.
    assert "请先输入问题" in list(streamed_reply(page, "  ", [], "default", BROWSER))[-1]


@pytest.mark.model
def test_the_cli_asks_with_generate(
    real_index: Path, stub: Stub, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from retriever.__main__ import main

    question = ["ask", "--index", str(real_index), "办公室主任的直接上级是谁?"]
    monkeypatch.delenv("RETRIEVER_GENERATE_URL", raising=False)
    monkeypatch.delenv("RETRIEVER_GENERATE_MODEL", raising=False)
    assert main([*question, "--generate"]) == 2
    assert "RETRIEVER_GENERATE_URL" in capsys.readouterr().err
    monkeypatch.setenv("RETRIEVER_GENERATE_URL", stub.url)
    monkeypatch.setenv("RETRIEVER_GENERATE_MODEL", "stub")
    stub.play(Reply(["办公室主任的直接上级是公司高层总经理或副总[1]。"]))
    assert main([*question, "--generate", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answer_kind"] == "generated" and "总经理或副总[1]" in answer["answer"]
    stub.play(Reply(status=503))
    assert main([*question, "--generate"]) == 0
    said = capsys.readouterr().out
    assert "没有采用模型写的回答：模型服务返回了错误（HTTP 503）" in said and "[1]" in said


def test_a_generated_follow_up_gives_the_model_the_conversation(faces, stub: Stub) -> None:
    _, api = faces
    stub.play(Reply(["行政助理负责员工的考勤[1]。"]))
    body = {"question": "那行政助理呢?", "history": ["办公室主任负责什么?"], "generate": True}
    assert api.post("/api/ask", json=body).json()["answer_kind"] == "generated"
    assert "之前问过：办公室主任负责什么?" in stub.requests[0]["messages"][-1]["content"]
