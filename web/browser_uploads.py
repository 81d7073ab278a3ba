"""Only bytes a client uploaded may enter the corpus, or be served back: Gradio's uploads,
tied to their browser, and Gradio kept to them.

Gradio's events take files as {"path": ...} objects (and chat messages, components and URLs
that name files), and when the app is mounted on FastAPI (not started by Gradio's launch())
Gradio does not check those paths: it copies whatever file a value names into its cache,
hands it to the event and serves it back. A client could name `/etc/passwd`, another
client's upload, or a URL, and read it or add it to the corpus. Three things close that,
each on its own:

- `keep_gradio_to_uploads`: Gradio copies nothing into its cache that is not there already
  (no server path, no URL), whatever value or event asks for it, and its own path checks
  run as in a launched app.
- `UploadGuard`, in front of Gradio: every browser gets a random, httponly cookie; the paths
  Gradio's upload route returns are recorded for that browser; a request whose JSON names
  another path is refused, and so is a file URL (`/gradio_api/file=…`) for anything but
  that browser's own uploads. Uploading needs the editor role when logins are configured,
  and counts against a cap per user (or browser) and a cap for everyone, before a byte of
  it is written.
- The event handler claims each path (`BrowserUploads.claim`: recorded, still a plain file
  inside Gradio's upload folder, no symlink), reads it, and deletes Gradio's copy. Uploads
  never added are deleted after an hour.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.blocks import Block
from gradio.exceptions import InvalidPathError
from gradio_client.utils import is_http_url_like
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.limits import content_length, send_json

COOKIE = "qa-browser"
UPLOAD_ROUTE = "/gradio_api/upload"
# Gradio's routes that serve a file named in the URL: a server path, or a URL it fetches.
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/proxy=")
EDITORS_UPLOAD = "只有编辑者可以上传文件。"
NO_LENGTH = "上传请求要带 Content-Length：请用浏览器上传"
NOT_YOURS = "只能取回这个浏览器自己上传的文件"
# How long an upload waits to be added (or not) before it is deleted.
KEEP_SECONDS = 3600.0
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
REFUSED = "只能加入这个浏览器刚上传的文件（上传超过一小时的也要重新上传）"


def browser_of(cookies: dict[str, str]) -> str | None:
    """The browser id in a request's cookies, if it has a well-formed one."""
    value = cookies.get(COOKIE, "")
    return value if _BROWSER_ID.fullmatch(value) else None


def keep_gradio_to_uploads(blocks: gr.Blocks, folder: Path) -> None:
    """Let Gradio copy into its cache only files that are in its upload folder already: no
    other server path and no URL, whichever event, value or component names it.

    Every copy Gradio makes into its cache (a file named in an event's data, in a chat
    message, in a component's arguments) goes through Block.move_resource_to_block_cache or
    its async twin; a file already in the folder is used where it is. So refusing there
    closes every shape of request at once. Gradio's own checks (only uploads as inputs, no
    dotfiles) run only in an app started by launch(); this app is mounted, so they are
    turned on here too.
    """
    blocks.has_launched = True
    real_folder = folder.resolve()

    def check(resource: str | Path | None) -> None:
        if resource is None:
            return
        if is_http_url_like(str(resource)) or not _inside(Path(resource), real_folder):
            raise InvalidPathError(f"不能读取上传文件夹以外的文件：{resource}")

    copy, async_copy = Block.move_resource_to_block_cache, Block.async_move_resource_to_block_cache
    if getattr(copy, "kept_to_uploads", False):
        return  # already kept, in this process

    def kept(self: Block, resource: str | Path | None) -> str | None:
        check(resource)
        return copy(self, resource)

    async def async_kept(self: Block, resource: str | Path | None) -> str | None:
        check(resource)
        return await async_copy(self, resource)

    kept.kept_to_uploads = True  # type: ignore[attr-defined]
    Block.move_resource_to_block_cache = kept  # type: ignore[method-assign]
    Block.async_move_resource_to_block_cache = async_kept  # type: ignore[method-assign]


def _megabytes(size: float) -> str:
    return f"{size / 1024 / 1024:.0f} MB"


def _inside(path: Path, real_folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_folder)
    except (OSError, RuntimeError, ValueError):
        return False


@dataclass
class _Held:
    """An upload waiting to be added: when, who it counts against, its size in bytes."""

    when: float
    holder: str
    size: int


class BrowserUploads:
    """The files in Gradio's upload folder, each with the browser that uploaded it, and the
    bytes each holder (a user, or a browser without logins) has there.

    `max_held_each` and `max_held` cap what one holder and everyone together may keep in the
    folder, uploads under way included: uploads are checked against them before they start.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_held_each: float = math.inf,
        max_held: float = math.inf,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder.absolute()  # as Gradio spells it in the paths it returns
        self._real_folder = folder.resolve()
        self.max_held_each = max_held_each
        self.max_held = max_held
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._uploads: dict[tuple[str, str], _Held] = {}  # (browser, path) → the upload
        self._reserved: dict[str, int] = {}  # holder → bytes of its uploads under way
        self._lock = threading.Lock()

    def reserve(self, holder: str, size: int) -> str | None:
        """Count an upload of `size` bytes against `holder` before it starts; None if it
        fits under the caps (then `release` it when done), else why not, in Chinese."""
        with self._lock:
            self._expire()
            held = list(self._uploads.values())
            mine = self._reserved.get(holder, 0) + sum(
                item.size for item in held if item.holder == holder
            )
            everyone = sum(self._reserved.values()) + sum(item.size for item in held)
            if mine + size > self.max_held_each:
                return (
                    f"你上传了还没加入文档库的文件共 {_megabytes(mine)}，再加这次的 "
                    f"{_megabytes(size)} 就超过了 {_megabytes(self.max_held_each)} 的上限："
                    "请先把它们加入文档库"
                )
            if everyone + size > self.max_held:
                return "服务器上等待加入文档库的上传文件已经太多，请稍后再上传"
            self._reserved[holder] = self._reserved.get(holder, 0) + size
            return None

    def release(self, holder: str, size: int) -> None:
        with self._lock:
            left = self._reserved.get(holder, 0) - size
            if left > 0:
                self._reserved[holder] = left
            else:
                self._reserved.pop(holder, None)

    def record(self, browser: str, paths: list[str], holder: str = "") -> None:
        with self._lock:
            self._expire()
            for path in paths:
                try:
                    size = Path(path).stat().st_size
                except OSError:
                    continue  # not a file Gradio wrote: nothing to claim
                self._uploads[browser, path] = _Held(self._clock(), holder or browser, size)

    def owns(self, browser: str | None, path: str) -> bool:
        with self._lock:
            self._expire()
            return browser is not None and (browser, path) in self._uploads

    def claim(self, browser: str | None, path: str) -> Path | None:
        """The uploaded file at `path`, if `browser` uploaded it and it is still a plain file
        inside the upload folder, reached without a symlink or `..`; else None. Either way
        the path is forgotten: a claim succeeds once."""
        with self._lock:
            self._expire()
            if browser is None or self._uploads.pop((browser, path), None) is None:
                return None
        candidate = Path(path)
        if not candidate.is_relative_to(self.folder):
            return None
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        # Equal only when no part below the folder is a symlink or "..".
        if resolved != self._real_folder / candidate.relative_to(self.folder):
            return None
        return resolved if resolved.is_file() else None

    def discard(self, path: Path) -> None:
        """Delete an uploaded file, and its folder (Gradio makes one per upload) if empty."""
        if not path.resolve().is_relative_to(self._real_folder):
            return
        path.unlink(missing_ok=True)
        if path.parent.resolve() != self._real_folder:
            with contextlib.suppress(OSError):  # not empty: another upload, same content
                path.parent.rmdir()

    def _expire(self) -> None:
        """Forget uploads older than keep_seconds, and delete their files."""
        deadline = self._clock() - self.keep_seconds
        for key in [key for key, held in self._uploads.items() if held.when < deadline]:
            del self._uploads[key]
            if not any(path == key[1] for _, path in self._uploads):
                self.discard(Path(key[1]))


class UploadGuard:
    """ASGI middleware: the browser cookie, the record of uploads, the refusal of other paths.

    `uploader` says, from a request's cookies, whom an upload counts against (a user's
    name; "" for the browser, without logins), or None when the caller may not upload.
    Runs inside BodyLimit, so the bodies it reads whole are already capped.
    """

    def __init__(
        self,
        app: ASGIApp,
        uploads: BrowserUploads,
        *,
        uploader: Callable[[dict[str, str]], str | None] = lambda cookies: "",
        api_prefix: str = "/api/",
    ):
        self.app = app
        self.uploads = uploads
        self.uploader = uploader
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)  # the JSON API takes no paths
            return
        cookies = cookie_parser(_header(scope, b"cookie"))
        browser = browser_of(cookies)
        if browser is None:
            browser = secrets.token_urlsafe(32)
            send = _setting_cookie(send, browser, secure=scope.get("scheme") == "https")
        path = scope["path"]
        if path.startswith(FILE_ROUTES):
            # Gradio serves its cache and upload folder here, and fetches URLs: only this
            # browser's own uploads are served (the page shows no other file).
            named = path.split("=", 1)[1]
            if path.startswith(FILE_ROUTES[0]) and self.uploads.owns(browser, named):
                await self.app(scope, receive, send)
            else:
                await send_json(send, 403, NOT_YOURS)
        elif scope["method"] in ("GET", "HEAD", "OPTIONS"):  # no body
            await self.app(scope, receive, send)
        elif path == UPLOAD_ROUTE:
            await self._upload(scope, receive, send, browser, cookies)
        else:
            await self._checked(scope, receive, send, browser)

    async def _upload(
        self, scope: Scope, receive: Receive, send: Send, browser: str, cookies: dict[str, str]
    ) -> None:
        """Pass an upload on if its caller may upload and its announced size fits the caps;
        record what it stored."""
        holder = self.uploader(cookies)
        if holder is None:
            await send_json(send, 403, EDITORS_UPLOAD)
            return
        holder = holder or f"browser {browser}"
        size = content_length(scope)
        if size is None:  # the caps are checked before a byte is written, so one is needed
            await send_json(send, 411, NO_LENGTH)
            return
        refusal = self.uploads.reserve(holder, size)
        if refusal:
            await send_json(send, 413, refusal)
            return
        try:
            await self.app(scope, receive, self._recording(send, browser, holder))
        finally:
            self.uploads.release(holder, size)

    def _recording(self, send: Send, browser: str, holder: str) -> Send:
        """A send that records the paths a successful upload response lists."""
        status = 0
        body = bytearray()

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if status == 200 and not message.get("more_body", False):
                    paths = json.loads(body)  # Gradio's answer: the list of stored paths
                    stored = [path for path in paths if isinstance(path, str)]
                    self.uploads.record(browser, stored, holder)
            await send(message)

        return recording

    async def _checked(self, scope: Scope, receive: Receive, send: Send, browser: str) -> None:
        """Pass the request on only if every path in its JSON body is an upload of `browser`."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            data = json.loads(body) if body else None
        except (ValueError, RecursionError):
            data = None  # not JSON: then nothing downstream can read a path from it either
        if any(not self.uploads.owns(browser, path) for path in _paths(data)):
            await send_json(send, 403, REFUSED)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _paths(data: object) -> Iterator[str]:
    """Every "path" string in a JSON document: where Gradio's file objects keep theirs."""
    pending = [data]  # a stack, not recursion: any nesting depth json.loads accepts is fine
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                yield item["path"]
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _header(scope: Scope, name: bytes) -> str:
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return "; ".join(values)


def _setting_cookie(send: Send, browser: str, *, secure: bool) -> Send:
    cookie = f"{COOKIE}={browser}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    async def setting(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message["headers"], (b"set-cookie", cookie.encode())]
            message = {**message, "headers": headers}
        await send(message)

    return setting
