"""Only bytes a client uploaded may enter the corpus: Gradio's uploads, tied to their browser.

Gradio's events take files as {"path": ...} objects, and when the app is mounted on FastAPI
(not started by Gradio's launch()) Gradio does not check those paths: it copies whatever file
a path names into its cache, hands it to the event and serves it back. A client could post
`/etc/passwd`, another client's upload, or a URL, and read it or add it to the corpus.

So every browser gets a random, httponly cookie; `UploadGuard` records the paths Gradio's
upload route returns to each browser, and refuses, before Gradio sees it, any other request
whose JSON body holds a path that browser did not upload. The event handler then claims each
path (`BrowserUploads.claim`: recorded, still a plain file inside Gradio's upload folder,
no symlink), reads it, and deletes Gradio's copy. Uploads never added are deleted after an
hour.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.limits import send_json

COOKIE = "qa-browser"
UPLOAD_ROUTE = "/gradio_api/upload"
# How long an upload waits to be added (or not) before it is deleted.
KEEP_SECONDS = 3600.0
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
REFUSED = "只能加入这个浏览器刚上传的文件（上传超过一小时的也要重新上传）"


def browser_of(cookies: dict[str, str]) -> str | None:
    """The browser id in a request's cookies, if it has a well-formed one."""
    value = cookies.get(COOKIE, "")
    return value if _BROWSER_ID.fullmatch(value) else None


class BrowserUploads:
    """The files in Gradio's upload folder, each with the browser that uploaded it."""

    def __init__(
        self,
        folder: Path,
        *,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder.absolute()  # as Gradio spells it in the paths it returns
        self._real_folder = folder.resolve()
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._uploads: dict[tuple[str, str], float] = {}  # (browser, path) → when
        self._lock = threading.Lock()

    def record(self, browser: str, paths: list[str]) -> None:
        with self._lock:
            self._expire()
            for path in paths:
                self._uploads[browser, path] = self._clock()

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
        for key in [key for key, when in self._uploads.items() if when < deadline]:
            del self._uploads[key]
            if not any(path == key[1] for _, path in self._uploads):
                self.discard(Path(key[1]))


class UploadGuard:
    """ASGI middleware: the browser cookie, the record of uploads, the refusal of other paths.

    Runs inside BodyLimit, so the bodies it reads whole are already capped.
    """

    def __init__(self, app: ASGIApp, uploads: BrowserUploads, *, api_prefix: str = "/api/"):
        self.app = app
        self.uploads = uploads
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)  # the JSON API takes no paths
            return
        browser = browser_of(cookie_parser(_header(scope, b"cookie")))
        if browser is None:
            browser = secrets.token_urlsafe(32)
            send = _setting_cookie(send, browser, secure=scope.get("scheme") == "https")
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):  # no body
            await self.app(scope, receive, send)
        elif scope["path"] == UPLOAD_ROUTE:
            await self.app(scope, receive, self._recording(send, browser))
        else:
            await self._checked(scope, receive, send, browser)

    def _recording(self, send: Send, browser: str) -> Send:
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
                    self.uploads.record(browser, [path for path in paths if isinstance(path, str)])
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
