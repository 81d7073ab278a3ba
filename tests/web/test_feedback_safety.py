"""👍/👎 under failure and abuse (web/feedback.py, the page's and the API's rating handlers).

- A rating confirmed (201, or 已记录 on the page) is in the export, whatever came before it:
  a torn last line from a crash, a failed or short write, a full disk.
- A failed write is refused with a Chinese message (507 when the disk is full, 500
  otherwise) and leaves no part of the entry in the log.
- A user or token kept to some knowledge bases cannot rate answers of another.
- qrels.tsv holds no cell a spreadsheet would run as a formula.

All in-process: the API is its router in a bare FastAPI app, the page is its handler.
"""

from __future__ import annotations

import errno
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from retriever import Answer, Citation, Hit, Quote
from retriever.bases import DEFAULT
from retriever.config import MB
from web.access import Access, Identity, Role, load_access
from web.api import api_router
from web.citations import Citations
from web.credentials import hash_password, hash_token
from web.feedback import AnswerLog, Feedback
from web.feedback_export import export, export_zip
from web.feedback_log import FeedbackError, FeedbackLog
from web.limits import FeedbackLimit, QuestionLimit
from web.service import Service

HYPERLINK = '=HYPERLINK("http://example.com/x","点这里")'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TOKENS = {"all": "token-of-all", "kept": "token-of-kept", "editor": "token-of-editor"}

Write = Callable[[int, bytes], int]
real_write = os.write


def _answer(doc_id: str = "规章.txt") -> Answer:
    text = "差旅费十五日内报销。"
    hit = Hit(
        rank=1,
        score=0.9,
        text=text,
        source=doc_id,
        doc_id=doc_id,
        title="规章",
        heading="报销",
        start=0,
        end=len(text),
        dense_score=0.9,
        bm25_score=1.0,
        chunk_id=1,
    )
    quote = Quote(0, len(text), text)
    return Answer("差旅费多久内报销?", text + "[1]", True, 0.9, [Citation(1, hit, [quote])])


@pytest.fixture
def access(tmp_path: Path) -> Access:
    """A user and a token kept to the base "kept"; a token of every base; an editor."""
    path = tmp_path / "access.toml"
    path.write_text(
        f'[users.kept]\nrole = "reader"\nbases = ["kept"]\n'
        f'password = "{hash_password("pw", iterations=1000)}"\n'
        f'[tokens.all]\nrole = "reader"\nsha256 = "{hash_token(TOKENS["all"])}"\n'
        f'[tokens.kept]\nrole = "reader"\nbases = ["kept"]\n'
        f'sha256 = "{hash_token(TOKENS["kept"])}"\n'
        f'[tokens.editor]\nrole = "editor"\nsha256 = "{hash_token(TOKENS["editor"])}"\n',
        encoding="utf-8",
    )
    return load_access(path)


@pytest.fixture
def feedback(tmp_path: Path) -> Feedback:
    return Feedback(AnswerLog(), FeedbackLog(tmp_path / "feedback", max_bytes=MB), FeedbackLimit(0))


@pytest.fixture
def client(feedback: Feedback, access: Access) -> TestClient:
    """The /api routes; the feedback routes use neither the bases nor the previews."""
    app = FastAPI()
    router = api_router(
        Service(SimpleNamespace(), QuestionLimit(0), feedback.answers),
        access,
        previews=SimpleNamespace(),
        feedback=feedback,
    )
    app.include_router(router)
    return TestClient(app)  # raises what the app does not answer, an OSError say


def _bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


BOB = Identity("bob", Role.EDITOR)


def _rate(feedback: Feedback, base: str = DEFAULT, user: Identity = BOB) -> str:
    """`user` rates a fresh answer of `base`; its id."""
    answer_id = feedback.answers.remember(_answer(), index=base)
    feedback.rate(answer_id, "good", "", user=user, client="1.2.3.4")
    return answer_id


def _exported(feedback: Feedback) -> list[str]:
    """The answer ids in the export, in order."""
    lines = export(feedback.log.entries())["queries.jsonl"].splitlines()
    return [json.loads(line)["id"].removeprefix("fb-") for line in lines]


def _cut(path: Path, count: int) -> None:
    """Drop the file's last `count` bytes, as a crash in the middle of a write would."""
    data = path.read_bytes()
    path.write_bytes(data[:-count])


def _fail_writes(monkeypatch: pytest.MonkeyPatch, how: Write) -> None:
    """Make os.write act as `how` for the log's lines, and as itself for anything else."""

    def write(descriptor: int, data: bytes) -> int:
        return how(descriptor, data) if b'"answer_id"' in data else real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)


def _half(descriptor: int, data: bytes) -> int:
    return real_write(descriptor, data[: len(data) // 2])


def _all_but_the_line_break(descriptor: int, data: bytes) -> int:
    return real_write(descriptor, data[:-1])


def _half_then(code: int) -> Write:
    """Write part of the line, then fail with `code`: the worst a failing write can leave."""

    def write(descriptor: int, data: bytes) -> int:
        real_write(descriptor, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    return write


# ------------------------------------------------------------------ torn lines


def test_a_torn_last_line_loses_only_itself(feedback: Feedback) -> None:
    intact = [_rate(feedback), _rate(feedback)]
    torn = _rate(feedback)
    _cut(feedback.log.path, 7)
    later = [_rate(feedback), _rate(feedback)]
    assert _exported(feedback) == intact + later
    assert torn not in _exported(feedback)
    lines = feedback.log.path.read_bytes().split(b"\n")
    assert len(lines) == 6 and lines[-1] == b""  # the torn line kept apart, unread


def test_through_the_api_every_201_is_exported(feedback: Feedback, client: TestClient) -> None:
    """The bug as found: rate, tear the last line, rate two more; both must be exported."""

    def rate() -> str:
        answer_id = feedback.answers.remember(_answer(), index=DEFAULT)
        body = {"answer_id": answer_id, "rating": "good"}
        response = client.post("/api/feedback", json=body, headers=_bearer("all"))
        assert response.status_code == 201, response.text
        return answer_id

    rate()
    _cut(feedback.log.path, 7)  # that rating is lost: the crash tore it
    later = [rate(), rate()]
    response = client.get("/api/feedback/export", headers=_bearer("editor"))
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        queries = archive.read("feedback/queries.jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in queries] == [f"fb-{id_}" for id_ in later]


# ------------------------------------------------------------------ failed writes


@pytest.mark.parametrize(
    ("how", "status", "says"),
    [
        (_half, 507, "磁盘空间不足"),
        (_all_but_the_line_break, 507, "磁盘空间不足"),
        (_half_then(errno.ENOSPC), 507, "磁盘空间不足"),
        (_half_then(errno.EDQUOT), 507, "磁盘空间不足"),
        (_half_then(errno.EIO), 500, "写入评价记录时出错"),
    ],
    ids=["short", "short-by-the-line-break", "ENOSPC", "EDQUOT", "EIO"],
)
def test_a_failed_write_is_refused_and_leaves_nothing(
    feedback: Feedback, monkeypatch: pytest.MonkeyPatch, how: Write, status: int, says: str
) -> None:
    before = _rate(feedback)
    logged = feedback.log.path.read_bytes()
    _fail_writes(monkeypatch, how)
    with pytest.raises(FeedbackError) as refused:
        _rate(feedback)
    assert refused.value.status == status and says in str(refused.value)
    assert "没有记录下来" in str(refused.value)
    assert feedback.log.path.read_bytes() == logged  # no partial line
    monkeypatch.undo()
    after = _rate(feedback)
    assert _exported(feedback) == [before, after]


def test_a_failed_fsync_is_refused_and_leaves_nothing(
    feedback: Feedback, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _rate(feedback)
    logged = feedback.log.path.read_bytes()

    def fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(FeedbackError) as refused:
        _rate(feedback)
    assert refused.value.status == 500
    assert feedback.log.path.read_bytes() == logged
    monkeypatch.undo()
    after = _rate(feedback)
    assert _exported(feedback) == [before, after]


def test_a_partial_line_that_could_not_be_cut_does_not_swallow_the_next(
    feedback: Feedback, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _rate(feedback)
    _fail_writes(monkeypatch, _all_but_the_line_break)

    def ftruncate(descriptor: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with pytest.raises(FeedbackError) as refused:
        _rate(feedback)
    assert refused.value.status == 500
    monkeypatch.undo()
    after = _rate(feedback)
    assert after in _exported(feedback) and before in _exported(feedback)


def test_no_oserror_escapes_as_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be made, a log that cannot be opened: a FeedbackError each."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    answers = AnswerLog()
    unmakeable = FeedbackLog(tmp_path / "a-file" / "feedback", max_bytes=MB)
    with pytest.raises(FeedbackError) as refused:
        _rate(Feedback(answers, unmakeable, FeedbackLimit(0)))
    assert refused.value.status == 500

    def refuse(*args, **kwargs) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    unopenable = FeedbackLog(tmp_path / "feedback", max_bytes=MB)
    with pytest.raises(FeedbackError) as refused:
        _rate(Feedback(answers, unopenable, FeedbackLimit(0)))
    assert refused.value.status == 500


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [(errno.ENOSPC, 507, "磁盘空间不足"), (errno.EIO, 500, "写入评价记录时出错")],
    ids=["ENOSPC", "EIO"],
)
def test_the_api_answers_a_failed_write_in_json(
    feedback: Feedback,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    status: int,
    says: str,
) -> None:
    answer_id = feedback.answers.remember(_answer(), index=DEFAULT)
    body = {"answer_id": answer_id, "rating": "bad", "comment": "不对"}
    _fail_writes(monkeypatch, _half_then(code))
    response = client.post("/api/feedback", json=body, headers=_bearer("all"))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert says in response.json()["detail"]
    monkeypatch.undo()
    assert client.post("/api/feedback", json=body, headers=_bearer("all")).status_code == 201
    assert _exported(feedback) == [answer_id]


def test_the_page_says_a_write_failed(
    feedback: Feedback, access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_id = feedback.answers.remember(_answer(), index="kept")
    _fail_writes(monkeypatch, _half_then(errno.ENOSPC))
    said = _page(access, feedback).rate(_Events(answer=answer_id, rating="good"), _user("kept"))
    assert 'data-ok="0"' in said and "磁盘空间不足" in said
    assert feedback.log.entries() == []


# ------------------------------------------------------------------ other bases


class _Events:
    """What the page's handler reads of a Gradio event."""

    def __init__(self, **data) -> None:
        self._data = data


def _user(name: str) -> SimpleNamespace:
    """What the page's handler reads of a Gradio request of logged-in user `name`."""
    return SimpleNamespace(username=name, client=SimpleNamespace(host="1.2.3.4"))


def _page(access: Access, feedback: Feedback) -> Citations:
    # The service and the previews: unused by rate.
    return Citations(access, SimpleNamespace(), SimpleNamespace(), feedback)


KEPT = Identity("kept", Role.READER, frozenset({"kept"}))
ELSEWHERE = "你没有使用这个回答所在知识库的权限"


def test_a_rater_kept_to_some_bases_rates_only_their_answers(feedback: Feedback) -> None:
    with pytest.raises(FeedbackError) as refused:
        _rate(feedback, DEFAULT, user=KEPT)
    assert refused.value.status == 403 and ELSEWHERE in str(refused.value)
    assert not feedback.log.path.exists()
    mine = _rate(feedback, "kept", user=KEPT)
    [entry] = feedback.log.entries()
    assert entry["answer_id"] == mine and entry["user"] == "kept" and entry["index"] == "kept"


def test_the_api_refuses_a_token_another_bases_answer(
    feedback: Feedback, client: TestClient
) -> None:
    theirs = feedback.answers.remember(_answer(), index=DEFAULT)
    mine = feedback.answers.remember(_answer(), index="kept")
    refused = client.post(
        "/api/feedback", json={"answer_id": theirs, "rating": "bad"}, headers=_bearer("kept")
    )
    assert refused.status_code == 403 and ELSEWHERE in refused.json()["detail"]
    assert not feedback.log.path.exists()
    for answer_id, token in [(mine, "kept"), (theirs, "all")]:
        body = {"answer_id": answer_id, "rating": "good"}
        assert client.post("/api/feedback", json=body, headers=_bearer(token)).status_code == 201
    assert _exported(feedback) == [mine, theirs]


def test_the_page_refuses_a_user_another_bases_answer(feedback: Feedback, access: Access) -> None:
    page = _page(access, feedback)
    theirs = feedback.answers.remember(_answer(), index=DEFAULT)
    mine = feedback.answers.remember(_answer(), index="kept")
    refused = page.rate(_Events(answer=theirs, rating="good"), _user("kept"))
    assert 'data-ok="0"' in refused and ELSEWHERE in refused
    assert not feedback.log.path.exists()
    said = page.rate(_Events(answer=mine, rating="good"), _user("kept"))
    assert 'data-ok="1"' in said and "已记录" in said
    assert _exported(feedback) == [mine]


# ------------------------------------------------------------------ the export


def test_no_cell_of_qrels_is_a_formula(feedback: Feedback) -> None:
    names = ["+1+1.txt", "=cmd|' /C calc'!A0", "@SUM(1).txt", "-2+3.txt", "\tx.txt", "规章.txt"]
    for name in names:
        answer_id = feedback.answers.remember(_answer(name), index=DEFAULT)
        feedback.rate(answer_id, "good", HYPERLINK, user=BOB, client="1.2.3.4")
    files = export(feedback.log.entries())
    rows = [line.split("\t") for line in files["qrels.tsv"].splitlines()]
    assert len(rows) == len(names) and all(len(row) == 3 for row in rows)
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    queries = [json.loads(line) for line in files["queries.jsonl"].splitlines()]
    passages = [query["cited"][0]["passage"] for query in queries]
    assert [row[1] for row in rows] == [
        "'+1+1.txt[0:10]",
        "'=cmd|' /C calc'!A0[0:10]",
        "'@SUM(1).txt[0:10]",
        "'-2+3.txt[0:10]",
        "\\tx.txt[0:10]",  # escaped, so not a tab: needs no quote
        "规章.txt[0:10]",
    ]
    assert [row[1].removeprefix("'") for row in rows] == passages  # as the README says
    # JSON, not cells: the text as given.
    assert [query["cited"][0]["doc_id"] for query in queries] == names
    assert {query["comment"] for query in queries} == {HYPERLINK}
    assert "single quote `'`" in files["README.md"]
    with zipfile.ZipFile(io.BytesIO(export_zip(feedback.log.entries()))) as archive:
        assert archive.read("feedback/qrels.tsv").decode() == files["qrels.tsv"]
