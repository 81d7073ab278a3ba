"""Bad input against the web layer: paths in Gradio events, roles, limits, upload names, trash.

First the pieces alone, in-process and fast (web/access.py, retriever/config.py, web/limits.py,
web/browser_uploads.py). Then two real servers (app.py with the real model and index): one as
`make run` serves, on loopback without access control, with small limits; one with an access
file, on 0.0.0.0. Every server case asserts the status, the message, and that nothing
outside the intended files changed: the corpus folder (with its trash), Gradio's upload
folder, and a canary file beside the corpus that holds a secret.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import httpx
import pytest
from conftest import ROOT
from web_server import app_environment, running_app, snapshot

from retriever.bases import DEFAULT
from retriever.config import MAX_QUESTION_CHARS, SettingsError, WebSettings
from web.access import (
    ANONYMOUS,
    Access,
    AccessError,
    Role,
    _Credential,
    check_host,
    load_access,
    main,
)
from web.browser_uploads import COOKIE, BrowserUploads
from web.credentials import hash_password, hash_token, new_token
from web.limits import BodyLimit, QuestionLimit
from web.refusals import EDITORS_ONLY, MANAGERS_ONLY
from web.upload_guard import EDITORS_UPLOAD, NO_LENGTH, REFUSED, UploadGuard

SECRET = "金库密码是七三九一"  # in the canary: must never be readable through the app
EXAMPLE = "办公室主任和行政主管哪个大?"
SOURCE = "office_director_vs_admin_assistant.txt"
TRAVEL = "差旅费报销\n差旅费报销须在出差结束后十五个工作日内提交，由财务部审核后发放。\n"
JSON = {"content-type": "application/json"}
FAST_HASH = 1000  # PBKDF2 iterations for unit tests; the servers use the real count

# =================================================================== the pieces alone


def access_file(folder: Path, text: str) -> Access:
    path = folder / "access.toml"
    path.write_text(text, encoding="utf-8")
    return load_access(path)


def test_passwords_are_stored_as_salted_slow_hashes(tmp_path: Path) -> None:
    stored = hash_password("correct horse", iterations=FAST_HASH)
    assert stored.startswith(f"pbkdf2_sha256${FAST_HASH}$") and "correct horse" not in stored
    assert stored != hash_password("correct horse", iterations=FAST_HASH)  # salted
    access = access_file(tmp_path, f'[users.alice]\nrole = "editor"\npassword = "{stored}"\n')
    assert access.login("alice", "correct horse")
    assert not access.login("alice", "wrong") and not access.login("bob", "correct horse")
    assert not access.login("alice", "correct horse\ud800")  # a lone surrogate is no crash


def test_roles_of_users_and_tokens(tmp_path: Path) -> None:
    token = new_token()
    access = access_file(
        tmp_path,
        f'[users.bob]\nrole = "reader"\npassword = "{hash_password("pw", iterations=FAST_HASH)}"\n'
        f'[tokens.bot]\nrole = "editor"\nsha256 = "{hash_token(token)}"\n',
    )
    assert access.configured
    assert access.user("bob").role == Role.READER and access.user("eve") is None
    assert access.user(None) is None
    assert access.bearer(token).role == Role.EDITOR and access.bearer(token).name == "bot"
    assert access.bearer(token + "x") is None and access.bearer(None) is None
    # `bases` keeps a user or token to those knowledge bases; only an unrestricted editor
    # manages bases.
    kept = access_file(
        tmp_path,
        f'[tokens.hr]\nrole = "editor"\nsha256 = "{hash_token(token)}"\n'
        'bases = ["人事", "default"]\n',
    ).bearer(token)
    assert kept.role_in("人事") == kept.role_in("default") == Role.EDITOR
    assert kept.role_in("财务") is None and not kept.manages_bases
    assert access.bearer(token).manages_bases and not access.user("bob").manages_bases
    assert access.bearer(token).role_in("财务") == Role.EDITOR
    # Without users or tokens there is no access control: everyone is an editor.
    assert Access().user(None) == Access().bearer(None) == ANONYMOUS == Access().bearer("x")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[users.alice]\nrole = "editor"\npassword = "hunter22"\n', "not a hash made by"),
        ('[users.alice]\nrole = "admin"\npassword = "x"\n', "role must be reader or editor"),
        ('[tokens.bot]\nrole = "reader"\nsha256 = "abc"\n', "not a hash made by"),
        ('[tokens.bot]\nrole = "reader"\n', "must have the keys role and sha256"),
        (f'[tokens.bot]\nrole = "reader"\nsha256 = "{"a" * 64}"\nbases = "hr"\n', "a list"),
        (
            f'[tokens.bot]\nrole = "reader"\nsha256 = "{"a" * 64}"\nbases = ["../x"]\n',
            "cannot name",
        ),
        (
            f'[tokens.bot]\nrole = "reader"\nsha256 = "{"a" * 64}"\nbase = ["hr"]\n',
            "may have bases",
        ),
        ("[groups.x]\n", "unknown section 'groups'"),
        ("[users.alice\n", "not valid TOML"),
    ],
)
def test_a_bad_access_file_is_refused_with_the_reason(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(AccessError, match=says):
        access_file(tmp_path, text)


def test_the_helper_prints_entries_that_load(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["token", "wiki-bot", "--role", "editor"]) == 0
    out, err = capsys.readouterr()
    token = err.strip().splitlines()[-1]
    monkeypatch.setattr("sys.stdin", _Lines("a long password\n"))
    assert main(["user", "李 雷", "--role", "reader"]) == 0
    user_entry = capsys.readouterr().out
    assert "a long password" not in user_entry and token not in out
    access = access_file(tmp_path, out + user_entry)
    assert access.bearer(token).role == Role.EDITOR
    assert access.user("李 雷").role == Role.READER
    assert access.bearer(token).bases is None
    assert main(["token", "hr-bot", "--base", "人事", "--base", "default"]) == 0
    out, err = capsys.readouterr()
    kept = access_file(tmp_path, out).bearer(err.strip().splitlines()[-1])
    assert kept.bases == {"人事", "default"} and kept.role == Role.READER
    with pytest.raises(SystemExit, match="cannot name a knowledge base"):
        main(["token", "x", "--base", "../etc"])


class _Lines:
    """stdin that is not a terminal, holding `text`."""

    def __init__(self, text: str) -> None:
        self.lines = iter(text.splitlines(keepends=True))

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        return next(self.lines, "")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.20", False),
        ("example.com", False),
    ],
)
def test_without_credentials_only_loopback_is_served(
    tmp_path: Path, host: str, allowed: bool
) -> None:
    if allowed:
        check_host(host, Access())
    else:
        with pytest.raises(AccessError, match=r"RETRIEVER_ACCESS_FILE=access\.toml"):
            check_host(host, Access())
    token = f'[tokens.bot]\nrole = "reader"\nsha256 = "{hash_token("t")}"\n'
    check_host(host, access_file(tmp_path, token), behind_proxy=True)  # with credentials: anywhere


def test_behind_a_proxy_credentials_are_needed_even_on_loopback() -> None:
    with pytest.raises(AccessError, match="RETRIEVER_TRUSTED_PROXIES is set"):
        check_host("127.0.0.1", Access(), behind_proxy=True)
    proxied = WebSettings.from_env({"RETRIEVER_TRUSTED_PROXIES": "127.0.0.1"})
    assert proxied.questions_per_minute == 30


def test_settings_defaults_and_refusals() -> None:
    local = WebSettings.from_env({})
    assert local.host == "127.0.0.1" and local.questions_per_minute == 0
    assert local.max_request_bytes == 2048 * 1024 and local.max_upload_bytes == 200 * 1024**2
    assert WebSettings.from_env({"RETRIEVER_HOST": "0.0.0.0"}).questions_per_minute == 30
    assert WebSettings.from_env({"RETRIEVER_MAX_CORPUS_MB": "5"}).quota.max_bytes == 5 * 1024**2
    with pytest.raises(SettingsError, match="RETRIEVER_MAX_UPLOAD_MB='lots'"):
        WebSettings.from_env({"RETRIEVER_MAX_UPLOAD_MB": "lots"})
    with pytest.raises(SettingsError, match="at least 1"):
        WebSettings.from_env({"RETRIEVER_MAX_REQUEST_KB": "0"})
    with pytest.raises(SettingsError, match="not an IP address"):
        WebSettings.from_env({"RETRIEVER_TRUSTED_PROXIES": "10.0.0.1, proxy.local"})


def test_the_question_limit_counts_a_sliding_minute() -> None:
    now = [0.0]
    limit = QuestionLimit(2, clock=lambda: now[0])
    assert limit.wait("a") == 0 and limit.wait("a") == 0
    assert limit.wait("a") == 60 and limit.wait("b") == 0  # per client
    now[0] = 30
    assert limit.wait("a") == 30
    now[0] = 60.5
    assert limit.wait("a") == 0
    assert "每分钟最多 2 个问题，请 30 秒后再试" in limit.message(29.2)
    assert QuestionLimit(0).wait("a") == 0  # off


class _Echo:
    """An ASGI app that reads the whole body and answers with its length."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def _post(app, path: str, body, headers: dict | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers or {})

    return asyncio.run(run())


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/api/ask", b"x" * 1000, 200, "1000"),
        ("/api/ask", b"x" * 1001, 413, "请求内容超过 1 KB 的上限"),  # announced length
        ("/api/ask", _chunks(3, 400), 413, "请求内容超过 1 KB 的上限"),  # chunked
        ("/gradio_api/upload", b"x" * 5000, 200, "5000"),
        ("/gradio_api/upload", _chunks(30, 400), 413, "上传的内容超过 10 KB 的上限"),
        ("/gradio_api/queue/join", b"x" * 5000, 413, "请求内容超过 1 KB"),  # not an upload
    ],
)
def test_bodies_over_their_cap_are_refused(path: str, body, status: int, says: str) -> None:
    echo = _Echo()
    app = BodyLimit(echo, max_request_bytes=1000, max_upload_bytes=10_000)
    response = _post(app, path, body, {"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == status
    assert says in (response.json()["detail"] if status == 413 else response.text)
    if isinstance(body, bytes) and status == 413:
        assert not echo.called, "refused by its length before the app saw it"


def test_an_upload_belongs_to_the_browser_that_made_it(tmp_path: Path) -> None:
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    upload = folder / "abc" / "a.txt"
    upload.write_text("x", encoding="utf-8")
    uploads = BrowserUploads(folder)
    uploads.record("browser-1", [str(upload)])
    assert uploads.claim("browser-2", str(upload)) is None  # another browser
    assert uploads.claim(None, str(upload)) is None
    assert uploads.claim("browser-1", str(upload)) == upload
    assert uploads.claim("browser-1", str(upload)) is None  # a claim succeeds once
    uploads.discard(upload)
    assert not upload.exists() and not upload.parent.exists()


@pytest.mark.parametrize("kind", ["symlink", "dotdot", "outside", "folder"])
def test_a_recorded_path_that_is_not_a_plain_upload_is_not_claimed(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    (folder / "abc" / "link.txt").symlink_to(secret)
    path = {
        "symlink": folder / "abc" / "link.txt",
        "dotdot": f"{folder}/abc/../../secret.txt",
        "outside": secret,
        "folder": folder / "abc",
    }[kind]
    uploads = BrowserUploads(folder)
    uploads.record("b", [str(path)])
    assert uploads.claim("b", str(path)) is None
    assert secret.read_text(encoding="utf-8") == SECRET


def test_unclaimed_uploads_are_deleted_after_an_hour(tmp_path: Path) -> None:
    now = [0.0]
    uploads = BrowserUploads(tmp_path, clock=lambda: now[0])
    (tmp_path / "h").mkdir()
    old = tmp_path / "h" / "old.txt"
    old.write_text("x", encoding="utf-8")
    uploads.record("b", [str(old)])
    now[0] = 3599
    assert uploads.owns("b", str(old)) and old.exists()
    now[0] = 3601
    assert not uploads.owns("b", str(old)) and not old.exists()


def test_the_guard_sets_a_cookie_records_uploads_and_refuses_other_paths(tmp_path: Path) -> None:
    folder = tmp_path / "gradio"
    stored = str(folder / "h" / "mine.txt")
    (folder / "h").mkdir(parents=True)
    Path(stored).write_text("mine", encoding="utf-8")

    async def gradio(scope, receive, send) -> None:  # answers an upload with the stored path
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps([stored]).encode()})

    uploads = BrowserUploads(folder)
    app = UploadGuard(gradio, uploads)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            upload = await client.post("/gradio_api/upload", content=b"")
            mine = {"data": [[{"path": stored}]]}
            theirs = {"data": [{"deep": [{"path": str(tmp_path / "secret.txt")}]}]}
            return [
                upload,
                await client.post("/gradio_api/queue/join", json=mine),
                await client.post("/gradio_api/queue/join", json=theirs),
                await client.post("/gradio_api/call/x", content=b"not json"),
            ]

    upload, mine, theirs, not_json = asyncio.run(run())
    cookie = upload.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    browser = cookie.split(";")[0].split("=", 1)[1]
    assert uploads.owns(browser, stored)
    assert mine.status_code == 200 and "set-cookie" not in mine.headers  # same browser
    assert theirs.status_code == 403 and theirs.json()["detail"] == REFUSED
    assert not_json.status_code == 200


def _guarded_gradio(folder: Path, uploader=lambda cookies: ""):
    """An UploadGuard in front of a stand-in for Gradio that stores each upload's body as a
    new file in `folder`, answers file URLs with "served", and anything else with "ok"."""
    written: list[int] = []

    async def gradio(scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/gradio_api/upload":
            stored = folder / f"u{len(written)}" / "file.txt"
            stored.parent.mkdir(parents=True)
            stored.write_bytes(body)
            written.append(len(body))
            answer = json.dumps([str(stored)]).encode()
        else:
            answer = b"served" if scope["path"].startswith("/gradio_api/file=") else b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})

    uploads = BrowserUploads(folder, max_held_each=100, max_held=250)
    return UploadGuard(gradio, uploads, uploader=uploader), uploads, written


def _browsers(app, steps) -> list:
    """Run `steps(clients)` with three browsers (each its own cookies) against `app`."""

    async def run() -> list:
        transport = httpx.ASGITransport(app=app)
        clients = [httpx.AsyncClient(transport=transport, base_url="http://test") for _ in "abc"]
        try:
            return await steps(clients)
        finally:
            for client in clients:
                await client.aclose()

    return asyncio.run(run())


def test_uploads_count_against_a_cap_per_browser_and_one_for_all(tmp_path: Path) -> None:
    folder = tmp_path / "gradio"
    folder.mkdir()
    app, _, written = _guarded_gradio(folder)

    async def steps(clients) -> list:
        a, b, c = clients
        return [
            await a.post("/gradio_api/upload", content=b"x" * 60),
            await a.post("/gradio_api/upload", content=b"x" * 60),  # 120 > 100 for a
            await b.post("/gradio_api/upload", content=b"x" * 90),
            await c.post("/gradio_api/upload", content=b"x" * 90),  # 240 of 250 for all
            await c.post("/gradio_api/upload", content=b"x" * 20),  # 260 > 250
        ]

    statuses = [response.status_code for response in _browsers(app, steps)]
    assert statuses == [200, 413, 200, 200, 413]
    assert written == [60, 90, 90], "a refused upload is refused before a byte is written"
    responses = _browsers(app, lambda clients: clients[0].post("/gradio_api/upload", content=b""))
    assert responses.status_code == 200  # a new browser, an empty upload: it fits


def test_the_caps_are_checked_before_gradio_reads_the_body_and_need_its_length(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "gradio"
    folder.mkdir()
    app, _, written = _guarded_gradio(folder)

    async def chunks():
        yield b"x" * 10

    async def steps(clients) -> list:
        return [
            await clients[0].post("/gradio_api/upload", content=chunks()),  # no length
            await clients[0].post("/gradio_api/upload", content=b"x" * 101),
        ]

    unsized, too_big = _browsers(app, steps)
    assert unsized.status_code == 411 and "Content-Length" in unsized.json()["detail"]
    assert too_big.status_code == 413 and "上限" in too_big.json()["detail"]
    assert written == []


def test_only_editors_upload_when_logins_are_configured(tmp_path: Path) -> None:
    folder = tmp_path / "gradio"
    folder.mkdir()
    access = Access(
        users={
            "ed": _Credential(Role.EDITOR, "x"),
            "rd": _Credential(Role.READER, "x"),
        }
    )
    app, _, written = _guarded_gradio(
        folder, uploader=lambda cookies: access.uploader(cookies.get("user"))
    )

    async def steps(clients) -> list:
        said = []
        for name in ("rd", "nobody", "ed"):
            clients[0].cookies.set("user", name)
            said.append(await clients[0].post("/gradio_api/upload", content=b"x"))
        return said

    reader, nobody, editor = _browsers(app, steps)
    assert reader.status_code == nobody.status_code == 403
    assert reader.json()["detail"] == EDITORS_UPLOAD
    assert editor.status_code == 200 and written == [1]


def test_file_urls_serve_only_this_browsers_own_uploads(tmp_path: Path) -> None:
    folder = tmp_path / "gradio"
    folder.mkdir()
    app, _, _ = _guarded_gradio(folder)

    async def steps(clients) -> list:
        mine, other, _ = clients
        [stored] = (await mine.post("/gradio_api/upload", content=b"mine")).json()
        return [
            await mine.get(f"/gradio_api/file={stored}"),
            await other.get(f"/gradio_api/file={stored}"),
            await mine.get(f"/gradio_api/file={tmp_path}/secret.txt"),
            await mine.get(f"/gradio_api/file={folder}/u0/../../secret.txt"),
            await mine.get("/gradio_api/file=http://127.0.0.1:9/x"),
            await mine.head(f"/gradio_api/file={folder}/u0/file.txt/.."),
            await mine.get("/gradio_api/proxy=http://127.0.0.1:9/x"),
        ]

    own, *refused = _browsers(app, steps)
    assert own.status_code == 200 and own.text == "served"
    assert [response.status_code for response in refused] == [403] * 6


def test_gradio_copies_into_its_cache_nothing_from_outside_its_upload_folder(
    tmp_path: Path,
) -> None:
    from gradio.blocks import Block
    from gradio.exceptions import InvalidPathError

    from web.browser_uploads import keep_gradio_to_uploads

    folder = tmp_path / "gradio"
    (folder / "h").mkdir(parents=True)
    upload = folder / "h" / "mine.txt"
    upload.write_text("mine", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    (folder / "h" / "link.txt").symlink_to(secret)
    with gr.Blocks() as demo:
        box = gr.Textbox()
    keep_gradio_to_uploads(demo, folder)
    keep_gradio_to_uploads(demo, folder)  # twice is once
    assert demo.has_launched  # Gradio's own checks apply, as in a launched app
    box.GRADIO_CACHE = str(folder)
    assert box.move_resource_to_block_cache(str(upload)) == str(upload)
    for path in [
        str(secret),
        f"{folder}/h/../../secret.txt",
        str(folder / "h" / "link.txt"),
        "/etc/passwd",
        "http://127.0.0.1:9/x",
        "README.md",
    ]:
        with pytest.raises(InvalidPathError):
            box.move_resource_to_block_cache(path)
        with pytest.raises(InvalidPathError):
            asyncio.run(box.async_move_resource_to_block_cache(path))
    assert set(folder.rglob("*")) == {folder / "h", upload, folder / "h" / "link.txt"}
    assert Block.move_resource_to_block_cache.kept_to_uploads


# =================================================================== a server as `make run` serves


@dataclass(frozen=True)
class Server:
    url: str
    folder: Path

    @property
    def corpus(self) -> Path:
        return self.folder / "corpus"

    @property
    def uploads(self) -> Path:
        return self.folder / "gradio"

    @property
    def canary(self) -> Path:
        return self.folder / "canary.txt"

    def client(self) -> httpx.Client:
        """A new client: a browser of its own, with its own cookies."""
        return httpx.Client(base_url=self.url, timeout=120)


@contextmanager
def nothing_changes(server: Server) -> Iterator[None]:
    """The corpus, Gradio's upload folder and the canary are as they were, and the secret
    was copied nowhere the app serves from."""
    before = snapshot(server.corpus), snapshot(server.uploads), server.canary.read_bytes()
    yield
    assert (snapshot(server.corpus), snapshot(server.uploads), server.canary.read_bytes()) == before
    for path in [*server.uploads.rglob("*"), *server.corpus.rglob("*")]:
        assert not path.is_file() or SECRET.encode() not in path.read_bytes()


def gradio_call(client: httpx.Client, name: str, data: list) -> tuple[int, str, object]:
    """Call a Gradio endpoint the way its REST API does: (status, event, payload or detail)."""
    # Encoded here, as ASCII: httpx's own encoder refuses a lone surrogate.
    body = json.dumps({"data": data})
    started = client.post(f"/gradio_api/call/{name}", content=body, headers=JSON)
    if started.status_code != 200:
        return started.status_code, "", started.json()["detail"]
    result = client.get(f"/gradio_api/call/{name}/{started.json()['event_id']}").text
    event = result.split("event: ", 1)[1].split("\n", 1)[0]
    payload = json.loads(result.split("data: ", 1)[1].split("\n", 1)[0])
    return 200, event, payload


def dependency(client: httpx.Client, test) -> tuple[int, str]:
    """The index and api_name of the first Gradio event `test(event, components)` picks."""
    config = client.get("/config").json()
    components = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for index, event in enumerate(config["dependencies"]):
        if test(event, components):
            return index, event["api_name"]
    raise AssertionError("no such event")


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def upload(client: httpx.Client, name: str, data: bytes) -> str:
    """Upload through Gradio's upload route, as the page's upload area does; the stored path."""
    response = client.post("/gradio_api/upload", files=[("files", (name, data, "text/plain"))])
    assert response.status_code == 200, response.text
    return response.json()[0]


@pytest.fixture(scope="module")
def local(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("local")
    (folder / "canary.txt").write_text(f"机密文件\n服务器上的机密：{SECRET}。\n", encoding="utf-8")
    limits = {
        "RETRIEVER_MAX_REQUEST_KB": "64",
        "RETRIEVER_MAX_UPLOAD_MB": "2",
        "RETRIEVER_MAX_DOCUMENTS": "2",
        "RETRIEVER_MAX_CORPUS_MB": "1",
        "RETRIEVER_QUESTIONS_PER_MINUTE": "40",
        "RETRIEVER_FEEDBACK_PER_MINUTE": "3",
    }
    with running_app(folder, real_index, **limits) as url:
        yield Server(url, folder)


@pytest.fixture(scope="module")
def client(local: Server) -> Iterator[httpx.Client]:
    with local.client() as client:
        yield client


@pytest.fixture(scope="module")
def someone_else(local: Server) -> Iterator[tuple[httpx.Client, str]]:
    """Another browser, and the path of a file it uploaded but has not added."""
    with local.client() as other:
        yield (
            other,
            upload(other, "别人的文件.txt", "别人的文件\n只有上传者能加入这份文件。\n".encode()),
        )


# ------------------------------------------------------------------- paths in Gradio events

ATTACKS = {
    "server-file": lambda server: str(server.canary),
    "repository-file": lambda server: str(ROOT / "README.md"),
    "relative": lambda server: "README.md",
    "traversal": lambda server: f"{server.uploads}/../canary.txt",
    "url": lambda server: f"{server.url}/api/info",
}


def _is_add(event: dict, components: dict) -> bool:
    return event["api_name"] == "add_documents"


@pytest.mark.parametrize("endpoint", ["call add_documents", "queue/join add_documents"])
@pytest.mark.parametrize("attack", [*ATTACKS, "another-browser's-upload"])
def test_no_gradio_event_takes_a_path_this_browser_did_not_upload(
    local: Server, client: httpx.Client, someone_else, endpoint: str, attack: str
) -> None:
    path = someone_else[1] if attack == "another-browser's-upload" else ATTACKS[attack](local)
    with nothing_changes(local):
        if endpoint == "call add_documents":
            response = client.post(
                "/gradio_api/call/add_documents", json={"data": [[file_data(path)]]}
            )
        else:
            index, _ = dependency(client, _is_add)
            body = {"data": [[file_data(path)]], "fn_index": index, "session_hash": "attacker"}
            response = client.post("/gradio_api/queue/join", json=body)
        assert response.status_code == 403
        assert response.json() == {"detail": REFUSED}
    assert Path(someone_else[1]).exists(), "another browser's upload is left alone"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("remove_document", "../canary.txt", "文档库里没有 ../canary.txt"),
        ("remove_document", "/etc/hostname", "文档库里没有 /etc/hostname"),
        ("remove_document", ".trash", "文档库里没有 .trash"),
        ("restore_document", "../../canary.txt", "回收站里没有这一项"),
    ],
)
def test_names_given_to_gradio_events_never_reach_outside_the_corpus(
    local: Server, client: httpx.Client, name: str, value: str, says: str
) -> None:
    with nothing_changes(local):
        status, event, payload = gradio_call(client, name, [value, DEFAULT])
    assert (status, event) == (200, "complete")
    assert says in payload[0]


@pytest.mark.parametrize("attack", ATTACKS)
def test_gradio_serves_no_file_it_did_not_make(local: Server, client: httpx.Client, attack: str):
    with nothing_changes(local):
        response = client.get(f"/gradio_api/file={ATTACKS[attack](local)}")
    assert response.status_code in (403, 404)
    assert SECRET not in response.text and "Quick start" not in response.text


def test_the_browser_that_uploaded_a_file_can_add_it_and_its_copy_is_deleted(
    local: Server, someone_else
) -> None:
    other, path = someone_else
    before = snapshot(local.corpus)
    status, event, payload = gradio_call(other, "add_documents", [[file_data(path)], DEFAULT])
    assert (status, event) == (200, "complete")
    assert "别人的文件.txt 已加入文档库" in payload[0] and "索引已重建" in payload[0]
    assert set(snapshot(local.corpus)) == {*before, "别人的文件.txt"}
    assert not Path(path).exists() and not Path(path).parent.exists()
    # A second add of the same path finds nothing: a claim succeeds once.
    assert (
        other.post("/gradio_api/call/add_documents", json={"data": [[file_data(path)]]}).status_code
        == 403
    )
    # Back to the one starting document, for the tests below.
    assert other.delete("/api/documents/别人的文件.txt").status_code == 200


def test_a_refused_upload_is_deleted_too(local: Server, client: httpx.Client) -> None:
    path = upload(client, "tool.exe", b"MZ\x90\x00")
    corpus = snapshot(local.corpus)
    status, _, payload = gradio_call(client, "add_documents", [[file_data(path)], DEFAULT])
    assert status == 200 and "不支持的文件类型 .exe" in payload[0]
    assert not Path(path).exists()
    assert snapshot(local.corpus) == corpus


# ------------------------------------------------------------------- source previews


def preview_event(client: httpx.Client, spec: object) -> tuple[int, str]:
    """Open a source as the page does: the preview's open_source event, with its spec."""
    config = client.get("/config")
    if config.status_code != 200:  # no login
        return config.status_code, config.text
    for index, event in enumerate(config.json()["dependencies"]):
        if [name for _, name in event["targets"]] == ["open_source"]:
            body = {
                "fn_index": index,
                "data": [],
                "event_data": {"spec": spec if isinstance(spec, str) else json.dumps(spec)},
                "session_hash": "attacker",
                "trigger_id": event["targets"][0][0],
            }
            response = client.post("/gradio_api/run/predict", json=body)
            if response.status_code != 200:
                return response.status_code, response.text
            return 200, response.json()["data"][0]
    raise AssertionError("no open_source event")


@pytest.mark.parametrize("attack", [*ATTACKS, "absolute-corpus-file", "hidden-trash", "record"])
def test_a_preview_reads_no_file_but_the_indexed_documents(
    local: Server, client: httpx.Client, attack: str
) -> None:
    doc_id = {
        "absolute-corpus-file": lambda server: str(server.corpus / SOURCE),
        "hidden-trash": lambda server: ".trash/x/canary.txt",
        "record": lambda server: f"{SOURCE}#1",
        **ATTACKS,
    }[attack](local)
    spec = {"doc_id": doc_id, "start": 0, "end": 10, "marks": []}
    with nothing_changes(local):
        status, shown = preview_event(client, spec)
        params = {key: value for key, value in spec.items() if key != "marks"}
        response = client.get("/api/preview", params=params)
    assert status == 200 and "索引里没有这篇文档" in shown and "qa-preview-passage" not in shown
    assert response.status_code == 404
    assert SECRET not in shown + response.text


def test_the_page_opens_an_indexed_source(local: Server, client: httpx.Client) -> None:
    spec = {"doc_id": SOURCE, "start": 3234, "end": 3380, "marks": [[3234, 3266]]}
    with nothing_changes(local):
        status, shown = preview_event(client, spec)
    assert status == 200
    assert "<mark>办公室主任和行政主管,在没有特定公司的前提下,根本无法进行比较。</mark>" in shown
    for bad in ["{", "[]", json.dumps({**spec, "start": "0"}), "x" * 20_000]:
        status, shown = preview_event(client, bad)
        assert status == 200 and "预览请求不完整" in shown


def test_feedback_past_the_limit_gets_a_429(local: Server, client: httpx.Client) -> None:
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    rating = {"answer_id": answer["answer_id"], "rating": "bad"}
    with nothing_changes(local):
        statuses = [client.post("/api/feedback", json=rating).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]  # RETRIEVER_FEEDBACK_PER_MINUTE=3
    response = client.post("/api/feedback", json=rating)
    assert "每分钟最多 3 次" in response.json()["detail"]
    assert 0 < int(response.headers["retry-after"]) <= 60
    log = local.folder / "feedback" / "feedback.jsonl"
    assert len(log.read_text(encoding="utf-8").splitlines()) == 3


# ------------------------------------------------------------------- request size limits

BIG_JSON = json.dumps({"question": EXAMPLE, "history": ["问" * 999] * 30}).encode()  # ~100 KB


@pytest.mark.parametrize(
    ("path", "chunked", "content_type"),
    [
        ("/api/ask", False, "application/json"),
        ("/api/ask", True, "application/json"),
        ("/api/ask", False, "multipart/form-data; boundary=x"),  # no upload cap by asking
        ("/gradio_api/queue/join", False, "application/json"),
        ("/gradio_api/call/ask", True, "application/json"),
        ("/login", False, "application/x-www-form-urlencoded"),
    ],
)
def test_a_request_body_over_64_kb_is_refused(
    local: Server, client: httpx.Client, path: str, chunked: bool, content_type: str
) -> None:
    body = (
        iter([BIG_JSON[i : i + 8192] for i in range(0, len(BIG_JSON), 8192)])
        if chunked
        else BIG_JSON
    )
    with nothing_changes(local):
        response = client.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == 413
        assert response.json() == {"detail": "请求内容超过 64 KB 的上限"}


@pytest.mark.parametrize("route", ["/gradio_api/upload", "/api/documents"])
@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_over_2_mb_is_refused_and_leaves_no_partial_file(
    local: Server, route: str, chunked: bool
) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    parts = [head, *[("测试。" * 100_000).encode()] * 3, f"\r\n--{boundary}--\r\n".encode()]
    body = iter(parts) if chunked else b"".join(parts)
    with local.client() as client, nothing_changes(local):
        response = client.post(
            route,
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        if chunked and route == "/gradio_api/upload":
            # Its caps are checked before a byte is written, so the page's upload needs a
            # length (a browser always sends one).
            assert response.status_code == 411 and response.json()["detail"] == NO_LENGTH
        else:
            assert response.status_code == 413
            assert response.json()["detail"] == (
                "上传的内容超过 2 MB 的上限：请分几次上传，或把文件拆小"
            )


def test_the_server_still_answers_after_the_refusals(client: httpx.Client) -> None:
    response = client.post("/api/ask", json={"question": EXAMPLE})
    assert response.status_code == 200 and response.json()["found"] is True


# ------------------------------------------------------------------- questions and history


@pytest.mark.parametrize(
    ("history", "where"),
    [
        (["问" * (MAX_QUESTION_CHARS + 1)], ["body", "history", 0]),
        (["办公室主任的直接上级是谁?"] * 51, ["body", "history"]),
    ],
)
def test_history_is_capped_per_item_and_in_length(
    local: Server, client: httpx.Client, history: list[str], where: list
) -> None:
    started = time.monotonic()
    with nothing_changes(local):
        response = client.post("/api/ask", json={"question": "那行政助理呢?", "history": history})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == where
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [
        ("/api/ask", '{"question": "\\ud800办公室主任"}', "不是有效的 Unicode 文本"),
        ("/api/search", '{"question": "办公室\\udfff主任"}', "不是有效的 Unicode 文本"),
    ],
)
def test_a_lone_surrogate_gets_a_400_not_a_server_error(
    local: Server, client: httpx.Client, route: str, body: str, says: str
) -> None:
    with nothing_changes(local):
        response = client.post(route, content=body, headers=JSON)
    assert response.status_code == 400
    assert says in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        '{"question": "那行政助理呢?", "history": ["ok", "\\ud83d"]}',
        '{"question": "\\ud800", "k": "many"}',  # the error echoes the surrogate
    ],
)
def test_a_lone_surrogate_in_a_malformed_body_gets_a_422(
    local: Server, client: httpx.Client, body: str
) -> None:
    with nothing_changes(local):
        response = client.post("/api/ask", content=body, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][0] == "body" and error["msg"]


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("   ", "请先输入问题"),
        ("\ud800办公室主任", "问题里有无效的字符"),
        (
            "问" * (MAX_QUESTION_CHARS + 1),
            f"问题有 1001 个字，超过了 {MAX_QUESTION_CHARS} 字的上限",
        ),
    ],
)
def test_the_chat_explains_an_unsearchable_question_in_chinese(
    local: Server, client: httpx.Client, question: str, says: str
) -> None:
    with nothing_changes(local):
        status, event, payload = gradio_call(client, "ask", [question, DEFAULT])
    assert (status, event) == (200, "complete")
    assert '<p class="qa-error">' in payload[0] and says in payload[0]
    assert "the question" not in payload[0]


# ------------------------------------------------------------------- upload names


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../../escape.txt", "含有路径"),
        ("sub/dir.txt", "含有路径"),
        ("..\\windows.txt", "含有路径"),
        (".hidden.txt", "以点开头"),
        ("tool.exe", "不支持的文件类型 .exe"),
        ("README", "无扩展名"),
        ("长" * 90 + ".txt", "文件名太长"),
        ("..", "含有路径"),
    ],
)
def test_a_bad_upload_name_is_refused_and_nothing_is_written(
    local: Server, client: httpx.Client, name: str, says: str
) -> None:
    with nothing_changes(local):
        response = client.post(
            "/api/documents", files=[("files", (name, TRAVEL.encode(), "text/plain"))]
        )
        assert response.status_code == 422
        [outcome] = response.json()["files"]
        assert outcome["ok"] is False and says in outcome["message"]
    assert not list(local.folder.rglob("escape.txt")) and not list(
        local.folder.rglob("windows.txt")
    )


# ------------------------------------------------------------------- the trash and the quota


def _add(client: httpx.Client, name: str, text: str) -> httpx.Response:
    return client.post("/api/documents", files=[("files", (name, text.encode(), "text/plain"))])


def test_an_upload_of_the_same_name_keeps_the_old_file_in_the_trash(
    local: Server, client: httpx.Client
) -> None:
    assert _add(client, "travel.txt", TRAVEL).status_code == 200
    newer = TRAVEL.replace("十五个工作日", "十个工作日")
    response = _add(client, "travel.txt", newer)
    assert response.status_code == 200
    [outcome] = response.json()["files"]
    assert outcome["ok"] and "已替换同名文件，原来的文件已移到回收站" in outcome["message"]
    [entry] = [e for e in client.get("/api/trash").json() if e["id"] == outcome["trash_id"]]
    assert entry["name"] == "travel.txt"
    assert entry["reason"] == "replaced" and entry["size"] == len(TRAVEL.encode())
    assert (local.corpus / "travel.txt").read_text(encoding="utf-8") == newer
    kept = local.corpus / ".trash" / entry["id"] / "travel.txt"
    assert kept.read_text(encoding="utf-8") == TRAVEL


def test_the_quota_refuses_before_anything_is_written(local: Server, client: httpx.Client) -> None:
    with nothing_changes(local):
        # Two documents are in the corpus, the most RETRIEVER_MAX_DOCUMENTS=2 allows.
        response = _add(client, "third.txt", TRAVEL)
        assert response.status_code == 422
        assert "文档库最多 2 篇文档，已经满了" in response.json()["files"][0]["message"]
        # Replacing stays possible, but not past RETRIEVER_MAX_CORPUS_MB=1.
        response = _add(client, "travel.txt", "差旅费。" * 100_000)
        assert response.status_code == 422
        assert "文档库总大小上限是 1 MB，加入后会超过" in response.json()["files"][0]["message"]


def test_a_removal_goes_to_the_trash_and_can_be_restored(
    local: Server, client: httpx.Client
) -> None:
    kept = (local.corpus / "travel.txt").read_bytes()
    response = client.delete("/api/documents/travel.txt")
    assert response.status_code == 200
    [outcome] = response.json()["files"]
    assert "已从文档库删除，移到了回收站" in outcome["message"]
    hits = client.post("/api/search", json={"question": "差旅费报销", "k": 5}).json()
    assert all(hit["source"] != "travel.txt" for hit in hits)
    assert outcome["trash_id"] in {entry["id"] for entry in client.get("/api/trash").json()}

    response = client.post(f"/api/trash/{outcome['trash_id']}/restore")
    assert response.status_code == 200
    assert "travel.txt 已从回收站恢复" in response.json()["files"][0]["message"]
    assert (local.corpus / "travel.txt").read_bytes() == kept
    answer = client.post("/api/ask", json={"question": "差旅费报销要在多少天内提交?"}).json()
    assert answer["citations"][0]["source"] == "travel.txt"


@pytest.mark.parametrize("entry_id", ["20260101T000000Z-00000000", "..", "%2e%2e%2fcanary.txt"])
def test_restoring_what_is_not_in_the_trash_is_a_404(
    local: Server, client: httpx.Client, entry_id: str
) -> None:
    with nothing_changes(local):
        response = client.post(f"/api/trash/{entry_id}/restore")
    assert response.status_code == 404


def test_the_last_readable_document_is_kept_before_anything_is_touched(
    local: Server, client: httpx.Client
) -> None:
    assert client.delete("/api/documents/travel.txt").status_code == 200
    with nothing_changes(local):
        response = client.delete(f"/api/documents/{SOURCE}")
        assert response.status_code == 409
        assert "是最后一篇可读的文档" in response.json()["files"][0]["message"]
        assert client.delete("/api/documents/no-such-file.txt").status_code == 404
    answer = client.post("/api/ask", json={"question": EXAMPLE}).json()
    assert answer["found"] is True and answer["citations"][0]["source"] == SOURCE


# ------------------------------------------------------------------- the question limit


def test_questions_past_the_limit_get_a_429_and_the_chat_says_why(
    local: Server, client: httpx.Client
) -> None:
    with nothing_changes(local):
        for _ in range(41):  # RETRIEVER_QUESTIONS_PER_MINUTE=40
            response = client.post("/api/search", json={"question": EXAMPLE, "k": 1})
            if response.status_code != 200:
                break
        assert response.status_code == 429
        assert "每分钟最多 40 个问题" in response.json()["detail"]
        assert 0 < int(response.headers["retry-after"]) <= 60
        # Without RETRIEVER_TRUSTED_PROXIES a client cannot pick another address.
        spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
        response = client.post("/api/search", json={"question": EXAMPLE}, headers=spoofed)
        assert response.status_code == 429
        _, _, payload = gradio_call(client, "ask", [EXAMPLE, DEFAULT])
        assert "提问太频繁" in payload[0]
        assert client.get("/api/info").status_code == 200  # not a question


# =================================================================== a server with an access file

PASSWORDS = {"alice": "editor password 1", "bob": "reader password 1"}


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {"editor": new_token(), "reader": new_token(), "kept": new_token()}


@pytest.fixture(scope="module")
def shared(
    real_index: Path, tmp_path_factory: pytest.TempPathFactory, tokens: dict[str, str]
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("shared")
    (folder / "canary.txt").write_text(f"服务器上的机密：{SECRET}。\n", encoding="utf-8")
    access = folder / "access.toml"
    access.write_text(
        f'[users.alice]\nrole = "editor"\npassword = "{hash_password(PASSWORDS["alice"])}"\n'
        f'[users.bob]\nrole = "reader"\npassword = "{hash_password(PASSWORDS["bob"])}"\n'
        f'[tokens.ci]\nrole = "editor"\nsha256 = "{hash_token(tokens["editor"])}"\n'
        f'[tokens.wiki]\nrole = "reader"\nsha256 = "{hash_token(tokens["reader"])}"\n'
        f'[tokens.kept]\nrole = "editor"\nsha256 = "{hash_token(tokens["kept"])}"\n'
        'bases = ["kept"]\n',
        encoding="utf-8",
    )
    settings = {"RETRIEVER_HOST": "0.0.0.0", "RETRIEVER_ACCESS_FILE": str(access)}
    with running_app(folder, real_index, **settings) as url:
        yield Server(url, folder)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


API_ROUTES = [
    ("GET", "/api/info", None),
    ("GET", "/api/documents", None),
    ("GET", f"/api/preview?doc_id={SOURCE}&start=0&end=10&mark=0:5", None),
    ("POST", "/api/search", {"question": EXAMPLE}),
    ("POST", "/api/ask", {"question": EXAMPLE}),
    ("GET", "/api/bases", None),
]
# Needs a model server, which this server has not: a valid reader gets a 409 (tests/web).
MODEL_ROUTES = [("POST", "/api/ask/stream", {"question": EXAMPLE})]
EDITING_ROUTES = [
    ("POST", "/api/documents", None),
    ("DELETE", f"/api/documents/{SOURCE}", None),
    ("GET", "/api/trash", None),
    ("POST", "/api/trash/20260101T000000Z-00000000/restore", None),
    ("GET", "/api/feedback/export", None),
    ("POST", "/api/bases", {"name": "hr"}),
    ("PATCH", "/api/bases/hr", {"name": "人事"}),
    ("DELETE", "/api/bases/hr", None),
    ("GET", "/api/bases/trash", None),
    ("POST", "/api/bases/trash/20260101T000000Z-00000000/restore", None),
]


def _request(client: httpx.Client, method: str, path: str, body, headers=None) -> httpx.Response:
    files = [("files", ("travel.txt", TRAVEL.encode(), "text/plain"))]
    if method == "POST" and path == "/api/documents":
        return client.post(path, files=files, headers=headers)
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES + MODEL_ROUTES + EDITING_ROUTES)
@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        (None, "需要 API 令牌（Authorization: Bearer …）"),
        ("Bearer qa_not-a-real-token", "API 令牌无效"),
        ("Basic YWxpY2U6ZWRpdG9y", "API 令牌无效"),
    ],
)
def test_every_api_route_needs_a_valid_token(
    shared: Server, method: str, path: str, body, credentials: str | None, says: str
) -> None:
    headers = {"Authorization": credentials} if credentials else None
    with shared.client() as client, nothing_changes(shared):
        response = _request(client, method, path, body, headers)
    assert response.status_code == 401
    assert response.json() == {"detail": says}
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_upload_without_a_token_is_refused_before_its_body_is_read(shared: Server) -> None:
    host, port = shared.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        # A megabyte announced, a few bytes sent: a server that read the body would wait.
        connection.sendall(
            b"POST /api/documents HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000000\r\n\r\n--b\r\n"
        )
        reply = b""
        while chunk := connection.recv(65536):  # the server closes after a refusal
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 401")
    assert "需要 API 令牌" in reply.decode("utf-8")


@pytest.mark.parametrize(("method", "path", "body"), EDITING_ROUTES)
def test_a_reader_token_may_not_edit(
    shared: Server, tokens: dict[str, str], method: str, path: str, body
) -> None:
    with shared.client() as client, nothing_changes(shared):
        response = _request(client, method, path, body, _bearer(tokens["reader"]))
    assert response.status_code == 403
    assert response.json() == {"detail": "令牌 wiki 只能提问和查看，不能修改文档库"}
    assert not (shared.folder / "bases").exists()  # no knowledge base was made either


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES)
def test_a_reader_token_may_read_and_ask(
    shared: Server, tokens: dict[str, str], method: str, path: str, body
) -> None:
    with shared.client() as client:
        response = _request(client, method, path, body, _bearer(tokens["reader"]))
    assert response.status_code == 200


def test_an_editor_token_may_see_the_trash(shared: Server, tokens: dict[str, str]) -> None:
    with shared.client() as client:
        response = client.get("/api/trash", headers=_bearer(tokens["editor"]))
    assert response.status_code == 200 and response.json() == []


def test_a_reader_token_may_rate_and_only_an_editor_export(
    shared: Server, tokens: dict[str, str]
) -> None:
    reader, editor = _bearer(tokens["reader"]), _bearer(tokens["editor"])
    with shared.client() as client:
        answer = client.post("/api/ask", json={"question": EXAMPLE}, headers=reader).json()
        rating = {"answer_id": answer["answer_id"], "rating": "good"}
        refused = client.post("/api/feedback", json=rating)
        assert refused.status_code == 401 and refused.json()["detail"].startswith("需要 API 令牌")
        assert client.post("/api/feedback", json=rating, headers=reader).status_code == 201
        assert client.get("/api/feedback/export", headers=reader).status_code == 403
        exported = client.get("/api/feedback/export", headers=editor)
    assert exported.status_code == 200 and exported.content.startswith(b"PK")
    [entry] = [
        json.loads(line)
        for line in (shared.folder / "feedback" / "feedback.jsonl").read_text().splitlines()
    ]
    assert entry["user"] == "wiki" and entry["answer_id"] == answer["answer_id"]


def test_a_token_kept_to_some_bases_uses_only_those(shared: Server, tokens: dict[str, str]) -> None:
    kept, editor = _bearer(tokens["kept"]), _bearer(tokens["editor"])
    with shared.client() as client:
        # Of the default base.
        for method, path, body in API_ROUTES[:-1] + MODEL_ROUTES + EDITING_ROUTES[:4]:
            with nothing_changes(shared):
                response = _request(client, method, path, body, kept)
            assert response.status_code == 403, path
            assert response.json()["detail"] == "你没有使用知识库「default」的权限"
        for method, path, body in EDITING_ROUTES[5:]:  # managing bases
            response = _request(client, method, path, body, kept)
            assert response.status_code == 403 and "不能管理知识库" in response.json()["detail"]
        assert client.get("/api/feedback/export", headers=kept).status_code == 403
        assert client.get("/api/bases", headers=kept).json() == []
        assert client.post("/api/bases", json={"name": "kept"}, headers=editor).status_code == 201
        try:
            assert [base["name"] for base in client.get("/api/bases", headers=kept).json()] == [
                "kept"
            ]
            files = [("files", ("travel.txt", TRAVEL.encode(), "text/plain"))]
            added = client.post("/api/documents?base=kept", files=files, headers=kept)
            assert added.status_code == 200, added.text
            asked = {"question": "差旅费报销要在多久内提交?", "base": "kept"}
            answer = client.post("/api/ask", json=asked, headers=kept).json()
            assert answer["citations"][0]["source"] == "travel.txt"
            export = client.get("/api/feedback/export?index=kept", headers=kept)
            assert export.status_code == 200
        finally:
            client.delete("/api/bases/kept", headers=editor)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/gradio_api/call/ask", {"data": [EXAMPLE]}),
        ("POST", "/gradio_api/queue/join", {"data": [EXAMPLE], "fn_index": 0, "session_hash": "s"}),
        ("POST", "/gradio_api/call/add_documents", {"data": [[]]}),
        ("POST", "/gradio_api/call/page_state", {"data": []}),
        ("POST", "/gradio_api/run/predict", {"data": [], "fn_index": 0, "session_hash": "s"}),
        ("GET", "/config", None),
        ("GET", "/gradio_api/info", None),
    ],
)
def test_gradio_routes_need_a_login(shared: Server, method: str, path: str, body) -> None:
    with shared.client() as client, nothing_changes(shared):
        response = client.request(method, path, json=body)
        assert response.status_code == 401
        assert response.json()["detail"]["error"] == "Not authenticated"
        # Refused before Gradio's login check: only editors upload, only uploads are served.
        files = [("files", ("travel.txt", TRAVEL.encode(), "text/plain"))]
        response = client.post("/gradio_api/upload", files=files)
        assert response.status_code == 403 and response.json()["detail"] == EDITORS_UPLOAD
        assert client.get(f"/gradio_api/file={shared.canary}").status_code == 403


SCHEMAS = ["/api/docs", "/api/openapi.json", "/openapi.json", "/docs", "/redoc"]


def test_no_schema_is_served_without_a_login(shared: Server, local: Server) -> None:
    with shared.client() as client:
        for path in SCHEMAS:
            response = client.get(path)
            assert response.status_code == 404, path
            assert "/api/ask" not in response.text and "openapi" not in response.text
        assert client.get("/gradio_api/info").status_code == 401
    # Without an access file (on loopback) the API's own schema is there to read; Gradio's
    # schema of its internal routes is never served.
    with local.client() as client:
        assert "/api/ask" in client.get("/api/openapi.json").json()["paths"]
        assert client.get("/api/docs").status_code == 200
        for path in SCHEMAS[2:]:
            assert client.get(path).status_code == 404, path


@contextmanager
def logged_in(server: Server, name: str) -> Iterator[httpx.Client]:
    """A browser logged in on the page as `name`."""
    with server.client() as client:
        response = client.post("/login", data={"username": name, "password": PASSWORDS[name]})
        assert response.status_code == 200, response.text
        yield client


def test_a_wrong_password_is_refused(shared: Server) -> None:
    with shared.client() as client, nothing_changes(shared):
        response = client.post("/login", data={"username": "alice", "password": "guess"})
        assert response.status_code == 400
        assert client.get("/config").status_code == 401


def test_a_reader_on_the_page_may_ask_but_not_edit(shared: Server) -> None:
    with logged_in(shared, "bob") as reader:
        uploads = snapshot(shared.uploads)
        files = [("files", ("travel.txt", TRAVEL.encode(), "text/plain"))]
        response = reader.post("/gradio_api/upload", files=files)
        assert response.status_code == 403 and response.json()["detail"] == EDITORS_UPLOAD
        assert snapshot(shared.uploads) == uploads, "nothing of a reader's upload is written"
        corpus = snapshot(shared.corpus)
        for name, data in [
            ("add_documents", [[], DEFAULT]),
            ("remove_document", [SOURCE, DEFAULT]),
            ("restore_document", ["20260101T000000Z-00000000", DEFAULT]),
            ("create_base", ["人事"]),
            ("delete_base", [DEFAULT, None]),
            ("restore_base", ["20260101T000000Z-00000000", "", DEFAULT]),
        ]:
            status, event, payload = gradio_call(reader, name, data)
            assert (status, event) == (200, "complete")
            refusal = MANAGERS_ONLY if name.endswith("_base") else EDITORS_ONLY
            assert refusal in payload[0]
        assert snapshot(shared.corpus) == corpus
        _, _, state = gradio_call(reader, "page_state", [DEFAULT])
        assert [column["visible"] for column in state[-3:]] == [False, False, False]
        assert "回收站是空的" in state[3]
        _, _, payload = gradio_call(reader, "ask", [EXAMPLE, DEFAULT])
        assert "在没有特定公司的前提下" in payload[0]
        spec = {"doc_id": SOURCE, "start": 3234, "end": 3380, "marks": [[3234, 3266]]}
        status, shown = preview_event(reader, spec)
        assert status == 200 and "<mark>办公室主任和行政主管" in shown
    with shared.client() as stranger:
        assert preview_event(stranger, spec)[0] == 401


def test_an_editor_on_the_page_sees_the_editing_controls(shared: Server) -> None:
    with logged_in(shared, "alice") as editor:
        _, _, state = gradio_call(editor, "page_state", [DEFAULT])
    assert [column["visible"] for column in state[-3:]] == [True, True, True]


def test_an_editor_adds_and_removes_through_gradio_client_with_a_login(shared: Server) -> None:
    from gradio_client import Client, handle_file

    path = shared.folder / "travel.txt"
    path.write_text(TRAVEL, encoding="utf-8")
    gradio = Client(shared.url, auth=("alice", PASSWORDS["alice"]), verbose=False)
    added = gradio.predict([handle_file(str(path))], api_name="/add_documents")
    assert "travel.txt 已加入文档库" in added[0]
    removed = gradio.predict("travel.txt", api_name="/remove_document")
    assert "travel.txt 已从文档库删除，移到了回收站" in removed[0]


# =================================================================== start-up refusals


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"RETRIEVER_HOST": "0.0.0.0"}, "not a loopback address, and no users or API tokens"),
        ({"RETRIEVER_ACCESS_FILE": "plain.toml"}, "is not a hash made by"),
        ({"RETRIEVER_MAX_UPLOAD_MB": "-1"}, "RETRIEVER_MAX_UPLOAD_MB='-1'"),
    ],
)
def test_the_app_refuses_to_start_with_unsafe_settings(
    tmp_path: Path, settings: dict[str, str], says: str
) -> None:
    (tmp_path / "plain.toml").write_text(
        '[users.alice]\nrole = "editor"\npassword = "hunter22"\n', encoding="utf-8"
    )
    if "RETRIEVER_ACCESS_FILE" in settings:
        settings = {**settings, "RETRIEVER_ACCESS_FILE": str(tmp_path / "plain.toml")}
    environment = app_environment(tmp_path, RETRIEVER_PORT="1", **settings)
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("not starting: ")
    assert says in result.stderr
    if "RETRIEVER_HOST" in settings:
        assert "python -m web.access user" in result.stderr and "docs/SECURITY.md" in result.stderr
