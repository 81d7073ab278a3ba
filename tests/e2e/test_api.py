"""The HTTP API, with real requests against app.py running the real model and index.

The tests that change the corpus (uploads, removal) come last in the file, and each adds
content no other test asks about.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import httpx
import pytest
from web_server import running_app

from retriever import Hit
from retriever.config import MAX_QUESTION_CHARS

EXAMPLE = "办公室主任和行政主管哪个大?"
SOURCE = "office_director_vs_admin_assistant.txt"
GBK_TEXT = "差旅费报销\n差旅费报销须在出差结束后十五个工作日内提交，由财务部审核后发放。\n"


@pytest.fixture(scope="module")
def server(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("api"), real_index) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as client:
        yield client


def test_page_is_served(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_the_api_docs_page_lists_every_route_without_external_scripts(
    client: httpx.Client,
) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    for path, operations in client.get("/api/openapi.json").json()["paths"].items():
        for method in operations:
            assert f"{method.upper()}</span> <code>{path}</code>" in page.text


def test_info_describes_the_served_index(client: httpx.Client) -> None:
    info = client.get("/api/info").json()
    assert info["documents"] == 1 and info["chunks"] > 0
    assert info["model"] == "multilingual-e5-small" and info["created_at"]
    assert info["rebuilding"] is False and info["last_build_error"] is None


def test_search_returns_hits_with_the_cli_fields(client: httpx.Client) -> None:
    response = client.post("/api/search", json={"question": EXAMPLE, "k": 3})
    assert response.status_code == 200
    hits = response.json()
    assert len(hits) == 3
    assert set(hits[0]) == {field.name for field in fields(Hit)}
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert any("在没有特定公司的前提下" in hit["text"] for hit in hits)


def test_ask_answers_with_markers_that_match_the_sources(client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    assert set(answer) == {
        "question",
        "answer",
        "found",
        "confidence",
        "answer_kind",
        "fallback",
        "citations",
        "answer_id",
    }
    assert (answer["answer_kind"], answer["fallback"]) == ("extractive", None)
    assert answer["found"] is True
    assert "在没有特定公司的前提下" in answer["answer"]
    numbers = {citation["number"] for citation in answer["citations"]}
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    assert markers and markers <= numbers
    for citation in answer["citations"]:
        assert citation["source"] == SOURCE
        for sentence in citation["answer_sentences"]:
            assert sentence["text"] in citation["text"]
            assert citation["start"] <= sentence["start"] < sentence["end"] <= citation["end"]


def test_ask_completes_a_follow_up_from_the_history(client: httpx.Client) -> None:
    answer = client.post(
        "/api/ask",
        json={"question": "那行政助理呢?", "history": ["办公室主任的直接上级是谁?"]},
    ).json()
    assert answer["question"] == "行政助理的直接上级是谁?"
    assert answer["found"] is True
    assert "人事行政经理" in answer["answer"]


def test_ask_says_when_the_corpus_does_not_answer(client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": "量子计算机的原理是什么?"}).json()
    assert answer["found"] is False
    assert "没有" in answer["answer"] and "[1]" not in answer["answer"]
    assert answer["citations"], "the closest passages are still given"
    assert all(not citation["answer_sentences"] for citation in answer["citations"])


@pytest.mark.parametrize("path", ["/api/search", "/api/ask"])
@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("", "问题是空的"),
        ("   ", "问题是空的"),
        ("问" * (MAX_QUESTION_CHARS + 1), f"超过了 {MAX_QUESTION_CHARS} 字的上限"),
    ],
)
def test_unsearchable_questions_get_a_clear_422(
    client: httpx.Client, path: str, question: str, says: str
) -> None:
    response = client.post(path, json={"question": question})
    assert response.status_code == 422
    assert says in response.json()["detail"]


@pytest.mark.parametrize(
    "body", [{}, {"question": 3}, {"question": EXAMPLE, "k": 0}, {"question": EXAMPLE, "k": 999}]
)
def test_malformed_requests_get_a_422_naming_the_field(client: httpx.Client, body: dict) -> None:
    response = client.post("/api/search", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][0] == "body"
    assert re.search(r"[\u4e00-\u9fff]", error["msg"]) and not re.search(
        r"[A-Za-z]{2,}", error["msg"]
    )


def test_a_base_name_in_a_url_is_percent_encoded(server: str, client: httpx.Client) -> None:
    """What the README says: raw UTF-8 in the request line never reaches the app."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall("GET /api/info?base=人事 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while chunk := raw.recv(4096):  # the server closes the connection after its answer
            received += chunk
        reply = received.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 400") and "Invalid HTTP request received." in reply
    encoded = client.get("/api/info?base=%E4%BA%BA%E4%BA%8B")
    assert encoded.status_code == 404
    assert encoded.json()["detail"].startswith("没有叫「人事」的知识库")


def test_the_api_says_why_in_chinese(client: httpx.Client) -> None:
    """No English in a refusal: the engine's reasons and FastAPI's are given in Chinese."""
    refusals = [
        client.post("/api/ask", json={"question": "   "}),
        client.post("/api/search", json={"question": EXAMPLE, "k": 0}),
        client.post(
            "/api/search", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.get("/api/info", params={"base": "人事"}),
    ]
    for response in refusals:
        assert 400 <= response.status_code < 500
        detail = response.json()["detail"]
        said = detail if isinstance(detail, str) else " ".join(e["msg"] for e in detail)
        rest = re.sub(r"JSON|UTF-8|Unicode|API", "", said)  # names, not English
        assert re.search(r"[\u4e00-\u9fff]", said) and not re.search(r"[A-Za-z]{2,}", rest), said


def test_a_body_that_is_not_json_gets_a_422(client: httpx.Client) -> None:
    response = client.post(
        "/api/ask", content=b"question=hello", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_gradio_endpoint_answers_too(server: str) -> None:
    from gradio_client import Client

    reply = Client(server, verbose=False).predict(EXAMPLE, api_name="/ask")
    assert "在没有特定公司的前提下" in reply and SOURCE in reply
    assert '<sup class="qa-marker"><button type="button" class="qa-cite" value="1"' in reply


# --------------------------------------------------------------- citations and feedback


def test_a_citation_opens_in_its_document_with_the_quotes_marked(client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    citation = next(c for c in answer["citations"] if c["answer_sentences"])
    quotes = citation["answer_sentences"]
    response = client.get(
        "/api/preview",
        params={
            "doc_id": citation["doc_id"],
            "start": citation["start"],
            "end": citation["end"],
            "mark": [f"{quote['start']}:{quote['end']}" for quote in quotes],
        },
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["source"] == SOURCE and preview["length"] > len(preview["text"])
    # 0-based, end-exclusive offsets into the document: its slices are the hit's text.
    document_part = preview["text"]
    base = preview["start"]
    passage = preview["passage"]
    assert document_part[passage["start"] - base : passage["end"] - base] == citation["text"]
    assert passage["start"] - base > 1000 and preview["end"] - passage["end"] > 0  # context
    marked = [document_part[h["start"] - base : h["end"] - base] for h in preview["highlights"]]
    assert marked == [quote["text"] for quote in quotes]


@pytest.mark.parametrize(
    "doc_id",
    [
        "../canary.txt",
        "../../../../etc/passwd",
        "/etc/passwd",
        f"/{SOURCE}",
        f"corpus/{SOURCE}",
        f"./{SOURCE}",
        f"..%2F{SOURCE}",
        ".trash",
        "app.py",
        "https://example.com/x.txt",
    ],
)
def test_preview_serves_only_documents_of_the_index(client: httpx.Client, doc_id: str) -> None:
    response = client.get("/api/preview", params={"doc_id": doc_id, "start": 0, "end": 10})
    assert response.status_code == 404
    assert response.json() == {"detail": f"索引里没有这篇文档：{doc_id}"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"doc_id": SOURCE, "start": 10, "end": 5}, 422),
        ({"doc_id": SOURCE, "start": 0, "end": 10**6}, 422),
        ({"doc_id": SOURCE, "start": -1, "end": 5}, 422),
        ({"doc_id": SOURCE, "start": 0, "end": 5, "mark": "0-5"}, 422),
        ({"doc_id": SOURCE, "start": 0}, 422),
    ],
)
def test_preview_refuses_offsets_outside_the_document(
    client: httpx.Client, params: dict, status: int
) -> None:
    assert client.get("/api/preview", params=params).status_code == status


def test_feedback_is_stored_and_exported_as_an_evaluation_set(client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    rating = {"answer_id": answer["answer_id"], "rating": "good", "comment": "引用准确"}
    response = client.post("/api/feedback", json=rating)
    assert response.status_code == 201, response.text
    assert response.json()["answer_id"] == answer["answer_id"]
    export = client.get("/api/feedback/export")
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        queries = [
            json.loads(line)
            for line in archive.read("feedback/queries.jsonl").decode().splitlines()
        ]
        qrels = archive.read("feedback/qrels.tsv").decode().splitlines()
    [query] = [q for q in queries if q["id"] == f"fb-{answer['answer_id']}"]
    assert query["text"] == EXAMPLE and query["rating"] == "good"
    assert query["comment"] == "引用准确" and query["index"] == "default"
    quoted = [c for c in answer["citations"] if c["answer_sentences"]]
    assert [line for line in qrels if line.startswith(query["id"])] == [
        f"{query['id']}\t{c['doc_id']}[{c['start']}:{c['end']}]\t1" for c in quoted
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rating": "good", "comment": "长" * 1001}, 422),
        ({"rating": "great"}, 422),
        ({"rating": "good", "answer_id": "A" * 22}, 404),
        ({"rating": "good", "answer_id": "../feedback.jsonl"}, 404),
    ],
)
def test_bad_feedback_is_refused(client: httpx.Client, body: dict, status: int) -> None:
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    response = client.post("/api/feedback", json={"answer_id": answer["answer_id"], **body})
    assert response.status_code == status


# --------------------------------------------------------------- changing the corpus


def test_bad_files_are_refused_and_nothing_is_lost(client: httpx.Client) -> None:
    before = client.get("/api/documents").json()
    response = client.post(
        "/api/documents",
        files=[
            ("files", ("empty.txt", b"", "text/plain")),
            ("files", ("../escape.txt", "越界的文件".encode(), "text/plain")),
            ("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
            ("files", ("fake.pdf", b"%PDF-1.4 not really", "application/pdf")),
            ("files", ("noise.txt", bytes(range(256)) * 20, "text/plain")),
        ],
    )
    assert response.status_code == 422
    outcomes = {item["name"]: item for item in response.json()["files"]}
    assert not any(item["ok"] for item in outcomes.values())
    assert "空文件" in outcomes["empty.txt"]["message"]
    assert "路径" in outcomes["../escape.txt"]["message"]
    assert ".exe" in outcomes["tool.exe"]["message"]
    assert "无法作为文档读取" in outcomes["fake.pdf"]["message"]
    assert "无法作为文档读取" in outcomes["noise.txt"]["message"]
    assert client.get("/api/documents").json() == before
    assert client.post("/api/ask", json={"question": EXAMPLE}).json()["found"] is True


def test_an_uploaded_gbk_file_is_answerable_without_restart(client: httpx.Client) -> None:
    response = client.post(
        "/api/documents",
        files=[("files", ("travel.txt", GBK_TEXT.encode("gbk"), "text/plain"))],
    )
    assert response.status_code == 200, response.text
    assert response.json()["files"][0]["ok"] is True
    assert response.json()["index"]["documents"] == 2
    names = [row["name"] for row in client.get("/api/documents").json()]
    assert "travel.txt" in names
    answer = client.post("/api/ask", json={"question": "差旅费报销要在多少天内提交?"}).json()
    assert answer["found"] is True
    assert "十五个工作日" in answer["answer"]
    assert answer["citations"][0]["source"] == "travel.txt"


def test_removing_a_document_rebuilds_without_it_and_keeps_it_in_the_trash(
    client: httpx.Client,
) -> None:
    assert client.delete("/api/documents/no-such-file.txt").status_code == 404
    response = client.delete("/api/documents/travel.txt")
    assert response.status_code == 200, response.text
    assert response.json()["index"]["documents"] == 1
    # Kept in the trash, where the API lists it for a restore.
    trash_id = response.json()["files"][0]["trash_id"]
    trash = {entry["id"]: entry["name"] for entry in client.get("/api/trash").json()}
    assert trash[trash_id] == "travel.txt"
    hits = client.post("/api/search", json={"question": "差旅费报销", "k": 5}).json()
    assert all(hit["source"] != "travel.txt" for hit in hits)
    last = client.delete(f"/api/documents/{SOURCE}")
    assert last.status_code == 409 and "最后一篇" in last.json()["files"][0]["message"]


def test_a_knowledge_base_answers_from_its_own_documents(client: httpx.Client) -> None:
    created = client.post("/api/bases", json={"name": "人事"})
    assert created.status_code == 201, created.text
    leave = "年假制度\n员工入职满一年后每年享有五天带薪年假，满十年后享有十天。\n"
    added = client.post(
        "/api/documents",
        params={"base": "人事"},
        files=[("files", ("leave.txt", leave.encode(), "text/plain"))],
    )
    assert added.status_code == 200 and added.json()["index"]["documents"] == 1
    question = "员工每年有几天带薪年假?"
    answer = client.post("/api/ask", json={"question": question, "base": "人事"}).json()
    assert answer["found"] is True and "五天带薪年假" in answer["answer"]
    assert {citation["source"] for citation in answer["citations"]} == {"leave.txt"}
    elsewhere = client.post("/api/ask", json={"question": question}).json()
    assert all(citation["source"] != "leave.txt" for citation in elsewhere["citations"])
    assert "leave.txt" not in {row["name"] for row in client.get("/api/documents").json()}
    assert [base["name"] for base in client.get("/api/bases").json()] == ["default", "人事"]


def test_a_gradio_client_adds_its_own_upload_and_removes_it(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    path = tmp_path / "meeting.txt"
    path.write_text("会议室规定\n蓝鲸会议室在三楼，需提前一天预订。\n", encoding="utf-8")
    gradio = Client(server, verbose=False)
    added = gradio.predict([handle_file(str(path))], api_name="/add_documents")
    assert "meeting.txt 已加入文档库" in added[0] and "索引已重建" in added[0]
    removed = gradio.predict("meeting.txt", api_name="/remove_document")
    assert "meeting.txt 已从文档库删除，移到了回收站" in removed[0]
