"""Limits that hold before memory or CPU is spent: request bodies, and questions per client.

`BodyLimit` wraps the whole app (the JSON API and Gradio's routes alike). A body announced
larger than its cap is refused with 413 before a byte of it is read; a body without a length
(chunked) is counted as it streams and refused as soon as it passes the cap. Uploads get a
larger cap than everything else, and only on the routes that take uploads, so a client cannot
raise its cap by calling a JSON route "multipart".

`QuestionLimit` counts each client's questions over the last minute, `FeedbackLimit` its 👍/👎.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection

from python_multipart.exceptions import MultipartParseError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The routes that take files: Gradio's upload (the page's upload area) and the JSON API's.
UPLOAD_ROUTES = frozenset({("POST", "/gradio_api/upload"), ("POST", "/api/documents")})


class _TooLarge(MultipartParseError):
    """Raised into the app when a streamed body passes its cap.

    A MultipartParseError, because that is what Gradio's upload parser catches to delete the
    partial files it has written; anything else would leave them in its upload folder.
    """


class BodyLimit:
    """ASGI middleware: refuse request bodies over their cap with 413 and a JSON message."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_bytes: int,
        max_upload_bytes: int,
        upload_routes: Collection[tuple[str, str]] = UPLOAD_ROUTES,
    ) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_routes = upload_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = (scope["method"], scope["path"]) in self.upload_routes
        cap = self.max_upload_bytes if upload else self.max_request_bytes
        message = _too_large_message(cap, upload)
        announced = content_length(scope)
        if announced is not None and announced > cap:
            await send_json(send, 413, message)
            return

        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    exceeded = True
                    raise _TooLarge("the request body is over its cap")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app makes of the interruption, the 413 goes out instead
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            # The app may let _TooLarge through as it is, or wrapped in its own errors.
            if not exceeded:
                raise
        if exceeded and not started:
            await send_json(send, 413, message)


def _too_large_message(cap: int, upload: bool) -> str:
    size = f"{cap / 1024 / 1024:.0f} MB" if cap >= 1024 * 1024 else f"{math.ceil(cap / 1024)} KB"
    if upload:
        return f"上传的内容超过 {size} 的上限：请分几次上传，或把文件拆小"
    return f"请求内容超过 {size} 的上限"


def content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def send_json(send: Send, status: int, detail: str) -> None:
    """Answer with `status` and {"detail": detail}, the shape of FastAPI's own errors."""
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The client may still be sending: tell it to stop rather than read on.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class QuestionLimit:
    """At most `per_minute` questions per client in any 60 seconds; 0 turns it off."""

    WINDOW = 60.0
    # Clients remembered before the idle ones are forgotten, so memory stays bounded.
    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._asked: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # API routes and Gradio events run on worker threads

    def wait(self, client: str) -> float:
        """0 if `client` may ask now (the question is counted), else seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            asked = self._asked.setdefault(client, deque())
            while asked and asked[0] <= now - self.WINDOW:
                asked.popleft()
            if len(asked) >= self.per_minute:
                return asked[0] + self.WINDOW - now
            asked.append(now)
            if len(self._asked) > self.MAX_CLIENTS:
                self._forget_idle(now)
            return 0.0

    def message(self, wait: float) -> str:
        return f"提问太频繁：每分钟最多 {self.per_minute} 个问题，请 {math.ceil(wait)} 秒后再试"

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, asked in self._asked.items() if asked[-1] <= now - self.WINDOW]:
            del self._asked[client]


class FeedbackLimit(QuestionLimit):
    """At most `per_minute` 👍/👎 entries per client in any 60 seconds; 0 turns it off. Each
    entry is a line on disk, so one client must not be able to fill the log."""

    def message(self, wait: float) -> str:
        return f"评价太频繁：每分钟最多 {self.per_minute} 次，请 {math.ceil(wait)} 秒后再试"
