"""Knowledge bases in the HTTP API: /api/bases, and `base` on the document and question routes.

The routes run in-process (FastAPI's test client) over the stand-in embedder, with an access
file of one editor's and one reader's token, so each case takes a fraction of a second;
tests/e2e/test_api.py runs the real app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HashingEmbedder
from fastapi import FastAPI
from starlette.testclient import TestClient
from web_server import snapshot

from retriever import Retriever
from retriever.config import SettingsError, WebSettings
from web.access import load_access
from web.api import api_router
from web.credentials import hash_token
from web.feedback import AnswerLog, Feedback
from web.feedback_log import FeedbackLog
from web.libraries import BaseBusy, Libraries
from web.library import CLOSED, Library
from web.limits import FeedbackLimit, QuestionLimit
from web.preview import BasePreviews, Previews
from web.service import Service

EDITOR = {"Authorization": "Bearer editor-token"}
READER = {"Authorization": "Bearer reader-token"}
LEAVE = "年假制度\n员工入职满一年后每年享有五天带薪年假，满十年后享有十天。\n"


@pytest.fixture
def libraries(small_corpus: Path, tmp_path: Path, hashing_embedder) -> Libraries:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    default = Library(small_corpus, index, Retriever.load(index, embedder=hashing_embedder))
    return Libraries(default, tmp_path / "bases", max_bases=3)


@pytest.fixture
def answers() -> AnswerLog:
    return AnswerLog()


@pytest.fixture
def client(libraries: Libraries, answers: AnswerLog, tmp_path: Path) -> Iterator[TestClient]:
    access_file = tmp_path / "access.toml"
    access_file.write_text(
        f'[tokens.ed]\nrole = "editor"\nsha256 = "{hash_token("editor-token")}"\n'
        f'[tokens.rd]\nrole = "reader"\nsha256 = "{hash_token("reader-token")}"\n',
        encoding="utf-8",
    )
    feedback = Feedback(answers, FeedbackLog(tmp_path / "fb", max_bytes=10**6), FeedbackLimit(0))
    app = FastAPI()
    app.include_router(
        api_router(
            Service(libraries, QuestionLimit(0), answers),
            load_access(access_file),
            previews=BasePreviews(libraries, Previews(libraries.default)),
            feedback=feedback,
        )
    )
    with TestClient(app) as client:
        yield client


def upload(client: TestClient, base: str, name: str, text: str):
    return client.post(
        "/api/documents",
        params={"base": base},
        files=[("files", (name, text.encode(), "text/plain"))],
        headers=EDITOR,
    )


def test_create_upload_and_ask_in_a_base_while_the_default_is_unaffected(
    client: TestClient, libraries: Libraries, answers: AnswerLog
) -> None:
    default_corpus = snapshot(libraries.default.corpus_dir)
    created = client.post("/api/bases", json={"name": "人事"}, headers=EDITOR)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "人事",
        "default": False,
        "created_at": created.json()["created_at"],
        "documents": 0,
    }

    # Empty: it has no index to answer from, and says so.
    info = client.get("/api/info", params={"base": "人事"}, headers=READER).json()
    assert info["base"] == "人事" and info["documents"] == 0 and info["created_at"] is None
    asked = client.post("/api/ask", json={"question": "年假", "base": "人事"}, headers=READER)
    assert asked.status_code == 409 and "还没有索引" in asked.json()["detail"]

    added = upload(client, "人事", "leave.txt", LEAVE)
    assert added.status_code == 200, added.text
    assert added.json()["index"]["documents"] == 1 and added.json()["build_error"] is None

    answer = client.post(
        "/api/ask", json={"question": "年假有几天?", "base": "人事"}, headers=READER
    ).json()
    assert {citation["source"] for citation in answer["citations"]} == {"leave.txt"}
    assert answers.get(answer["answer_id"]).index == "人事"  # feedback names the base
    hits = client.post(
        "/api/search", json={"question": "年假", "base": "人事", "k": 1}, headers=READER
    ).json()
    assert hits[0]["source"] == "leave.txt"
    rows = client.get("/api/documents", params={"base": "人事"}, headers=READER).json()
    assert rows == [{"name": "leave.txt", "size": len(LEAVE.encode()), "status": "已索引"}]
    citation = answer["citations"][0]
    preview = client.get(
        "/api/preview",
        params={
            "base": "人事",
            "doc_id": citation["doc_id"],
            "start": citation["start"],
            "end": citation["end"],
        },
        headers=READER,
    )
    assert preview.status_code == 200 and "五天带薪年假" in preview.json()["text"]

    # The default base: same documents, same index, and it knows nothing of the new file.
    hits = client.post("/api/search", json={"question": "年假"}, headers=READER).json()
    assert "leave.txt" not in {hit["source"] for hit in hits}
    names = {row["name"] for row in client.get("/api/documents", headers=READER).json()}
    assert names == {"jobs.txt", "fruit.md"}
    assert snapshot(libraries.default.corpus_dir) == default_corpus
    assert client.get("/api/info", headers=READER).json()["base"] == "default"
    missing = client.get(
        "/api/preview",
        params={"doc_id": citation["doc_id"], "start": 0, "end": 5},
        headers=READER,
    )
    assert missing.status_code == 404

    listed = client.get("/api/bases", headers=READER).json()
    assert [(base["name"], base["default"], base["documents"]) for base in listed] == [
        ("default", True, 2),
        ("人事", False, 1),
    ]


def test_each_base_has_its_own_trash(client: TestClient, libraries: Libraries) -> None:
    client.post("/api/bases", json={"name": "hr"}, headers=EDITOR)
    upload(client, "hr", "leave.txt", LEAVE)
    upload(client, "hr", "old.txt", "旧的考勤制度。\n")
    removed = client.delete("/api/documents/old.txt", params={"base": "hr"}, headers=EDITOR)
    assert removed.status_code == 200 and removed.json()["index"]["documents"] == 1
    (entry,) = client.get("/api/trash", params={"base": "hr"}, headers=EDITOR).json()
    assert entry["name"] == "old.txt"
    assert client.get("/api/trash", headers=EDITOR).json() == []
    restored = client.post(
        f"/api/trash/{entry['id']}/restore", params={"base": "hr"}, headers=EDITOR
    )
    assert restored.status_code == 200 and restored.json()["index"]["documents"] == 2
    # The default base has no such document or entry.
    gone = client.delete("/api/documents/leave.txt", headers=EDITOR)
    assert gone.status_code == 404
    assert client.post(f"/api/trash/{entry['id']}/restore", headers=EDITOR).status_code == 404


def test_rename_delete_and_restore_a_base(client: TestClient, libraries: Libraries) -> None:
    client.post("/api/bases", json={"name": "hr"}, headers=EDITOR)
    upload(client, "hr", "leave.txt", LEAVE)
    renamed = client.patch("/api/bases/hr", json={"name": "人事部"}, headers=EDITOR)
    assert renamed.status_code == 200 and renamed.json()["name"] == "人事部"
    ask = {"question": "年假有几天?", "base": "hr"}
    assert client.post("/api/ask", json=ask, headers=READER).status_code == 404
    answer = client.post("/api/ask", json={**ask, "base": "人事部"}, headers=READER).json()
    assert answer["citations"][0]["source"] == "leave.txt"

    deleted = client.delete("/api/bases/人事部", headers=EDITOR)
    assert deleted.status_code == 200 and deleted.json()["name"] == "人事部"
    assert [base["name"] for base in client.get("/api/bases", headers=READER).json()] == ["default"]
    gone = client.post("/api/ask", json={**ask, "base": "人事部"}, headers=READER)
    assert gone.status_code == 404
    trash = client.get("/api/bases/trash", headers=EDITOR).json()
    assert [entry["id"] for entry in trash] == [deleted.json()["id"]]

    restored = client.post(
        f"/api/bases/trash/{deleted.json()['id']}/restore", json={"name": "hr"}, headers=EDITOR
    )
    assert restored.status_code == 200 and restored.json()["documents"] == 1
    answer = client.post("/api/ask", json=ask, headers=READER).json()
    assert answer["citations"][0]["source"] == "leave.txt"


def test_changes_need_an_editor(client: TestClient, libraries: Libraries) -> None:
    client.post("/api/bases", json={"name": "hr"}, headers=EDITOR)
    for method, path, body in [
        ("POST", "/api/bases", {"name": "x"}),
        ("PATCH", "/api/bases/hr", {"name": "y"}),
        ("DELETE", "/api/bases/hr", None),
        ("GET", "/api/bases/trash", None),
        ("POST", "/api/bases/trash/20990101T000000Z-deadbeef/restore", None),
    ]:
        response = client.request(method, path, json=body, headers=READER)
        assert response.status_code == 403, (method, path)
        assert client.request(method, path, json=body).status_code == 401
    refused = upload(client, "hr", "a.txt", LEAVE)
    assert refused.status_code == 200  # the editor's own upload, for contrast
    readers = client.post(
        "/api/documents",
        params={"base": "hr"},
        files=[("files", ("b.txt", b"x", "text/plain"))],
        headers=READER,
    )
    assert readers.status_code == 403
    assert [base.name for base in libraries.list()] == ["default", "hr"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/api/bases", {"name": "../up"}, 422, "不能作知识库的名称"),
        ("POST", "/api/bases", {"name": ".hidden"}, 422, "不能作知识库的名称"),
        ("POST", "/api/bases", {"name": "HR"}, 409, "已经有叫「HR」的知识库"),
        ("POST", "/api/bases", {"name": "default"}, 409, "已经有叫「default」的知识库"),
        ("PATCH", "/api/bases/default", {"name": "main"}, 409, "默认知识库不能改名或删除"),
        ("DELETE", "/api/bases/default", None, 409, "默认知识库不能改名或删除"),
        ("PATCH", "/api/bases/nothere", {"name": "x"}, 404, "没有叫「nothere」的知识库"),
        ("DELETE", "/api/bases/photos", None, 409, "不是本程序建的知识库"),
        ("POST", "/api/bases/trash/nope/restore", None, 404, "知识库回收站里没有这一项"),
        ("POST", "/api/search", {"question": "年假", "base": "nothere"}, 404, "没有叫「nothere」"),
        ("POST", "/api/ask", {"question": "年假", "base": "a/b"}, 422, "知识库的名称"),
        ("GET", "/api/documents?base=nothere", None, 404, "没有叫「nothere」"),
        ("GET", "/api/info?base=..", None, 422, "知识库的名称"),
        ("POST", "/api/documents?base=nothere", None, 404, "没有叫「nothere」"),
    ],
)
def test_refusals(
    client: TestClient,
    libraries: Libraries,
    method: str,
    path: str,
    body: dict | None,
    status: int,
    says: str,
) -> None:
    client.post("/api/bases", json={"name": "hr"}, headers=EDITOR)
    (libraries.bases.root / "photos").mkdir()
    (libraries.bases.root / "photos" / "cat.jpg").write_bytes(b"a cat")
    response = client.request(method, path, json=body, headers=EDITOR)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert (libraries.bases.root / "photos" / "cat.jpg").read_bytes() == b"a cat"
    assert [base.name for base in libraries.list()] == ["default", "hr"]


def test_the_number_of_bases_is_limited(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        assert client.post("/api/bases", json={"name": name}, headers=EDITOR).status_code == 201
    full = client.post("/api/bases", json={"name": "d"}, headers=EDITOR)
    assert full.status_code == 409 and "最多只能有 3 个知识库" in full.json()["detail"]
    entry = client.delete("/api/bases/a", headers=EDITOR).json()
    assert client.post("/api/bases", json={"name": "d"}, headers=EDITOR).status_code == 201
    restored = client.post(f"/api/bases/trash/{entry['id']}/restore", headers=EDITOR)
    assert restored.status_code == 409


def test_a_library_held_across_a_rename_refuses_changes(
    libraries: Libraries, tmp_path: Path
) -> None:
    libraries.create("hr")
    held = libraries.get("hr")
    libraries.rename("hr", "人事")
    upload_file = tmp_path / "leave.txt"
    upload_file.write_text(LEAVE, encoding="utf-8")
    (outcome,) = held.add([(upload_file, "leave.txt")])
    assert not outcome.ok and outcome.message == CLOSED
    assert held.wait(held.rebuild()).error is None  # nothing is built for a closed base
    assert not (tmp_path / "bases" / "hr").exists()
    assert libraries.get("人事").documents() == []


class GatedEmbedder(HashingEmbedder):
    """Embeds passages only while `gate` is set; `building` tells that a build has begun."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.building = threading.Event()

    def encode_passages(self, texts: list[str], *, progress: bool = False):
        self.building.set()
        assert self.gate.wait(timeout=30)
        return super().encode_passages(texts)


def test_a_rename_waits_for_the_rebuild_of_the_base(small_corpus: Path, tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=embedder)
    default = Library(small_corpus, index, Retriever.load(index, embedder=embedder))
    libraries = Libraries(default, tmp_path / "bases")
    libraries.create("hr")
    library = libraries.get("hr")
    upload_file = tmp_path / "leave.txt"
    upload_file.write_text(LEAVE, encoding="utf-8")
    assert library.add([(upload_file, "leave.txt")])[0].ok
    embedder.gate.clear()
    embedder.building.clear()
    library.rebuild()
    assert embedder.building.wait(timeout=30)

    renaming = threading.Thread(target=libraries.rename, args=("hr", "人事"))
    renaming.start()
    time.sleep(0.3)
    assert renaming.is_alive() and (tmp_path / "bases" / "hr" / "corpus").is_dir()
    with pytest.raises(BaseBusy):
        libraries.get("hr")
    embedder.gate.set()
    renaming.join(timeout=30)
    assert not renaming.is_alive() and not (tmp_path / "bases" / "hr").exists()
    # The index the build finished moved with the base, and loads under its new name.
    assert libraries.get("人事").retriever.search("年假", k=1)[0].source == "leave.txt"


def test_the_bases_folder_is_beside_the_index_unless_set(tmp_path: Path) -> None:
    default = WebSettings.from_env({"RETRIEVER_INDEX": str(tmp_path / "data" / "index")})
    assert default.bases_folder == tmp_path / "data" / "bases" and default.max_bases == 100
    assert WebSettings().bases_folder == Path("bases")
    chosen = WebSettings.from_env(
        {"RETRIEVER_BASES": str(tmp_path / "kb"), "RETRIEVER_MAX_BASES": "5"}
    )
    assert chosen.bases_folder == tmp_path / "kb" and chosen.max_bases == 5
    for inside in ["corpus/bases", "index/bases"]:
        with pytest.raises(SettingsError, match=r"RETRIEVER_BASES=.* is inside"):
            WebSettings.from_env(
                {
                    "RETRIEVER_CORPUS": str(tmp_path / "corpus"),
                    "RETRIEVER_INDEX": str(tmp_path / "index"),
                    "RETRIEVER_BASES": str(tmp_path / inside),
                }
            )
