"""`UploadGuard`, the ASGI middleware in front of Gradio that ties uploads to their browser
(web/browser_uploads.py says why, and what the other two layers do): it gives every browser
a random, httponly cookie, records the paths Gradio's upload route returns for it, and
refuses a request whose JSON names another path, or a file URL for anything but that
browser's own uploads.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.browser_uploads import COOKIE, BrowserUploads, browser_of
from web.limits import content_length, send_json

UPLOAD_ROUTE = "/gradio_api/upload"
# Gradio's routes that serve a file named in the URL: a server path, or a URL it fetches.
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/proxy=")
EDITORS_UPLOAD = "只有编辑者可以上传文件。"
NO_LENGTH = "上传请求要带 Content-Length：请用浏览器上传"
NOT_YOURS = "只能取回这个浏览器自己上传的文件"
REFUSED = "只能加入这个浏览器刚上传的文件（上传超过一小时的也要重新上传）"


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
