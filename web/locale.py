"""Gradio's own labels in Chinese, whatever language the browser prefers.

Gradio translates its labels (the upload area, the chat's buttons, the footer, the queue)
into the language the browser reports in `navigator.language` when the page starts, and
has no setting for a page's language. Everything else on this page is Chinese, so
`ChinesePage` puts a script before Gradio's in the page's HTML that makes the browser report
zh-CN, and marks the document zh-CN, which also has the browser draw hanzi in their
Simplified Chinese forms. `LABELS` adds what Gradio's own zh-CN catalogue lacks.
"""

from __future__ import annotations

import re

import gradio as gr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANGUAGE = "zh-CN"
_SCRIPT = (
    "<script>Object.defineProperties(navigator, {"
    f'language: {{value: "{LANGUAGE}"}}, languages: {{value: ["{LANGUAGE}"]}}}});</script>'
).encode()
_HTML_LANG = re.compile(rb'(<html\b[^>]*?\blang=")[^"]*(")')

# What this page says that Gradio's zh-CN catalogue (Gradio 6.31) leaves in English: the
# place of an event waiting in the queue, behind a rebuild or busy questions, as read out to
# screen readers. (The "queue: 1/2" shown on screen is not in any catalogue.)
LABELS = gr.I18n(
    **{LANGUAGE: {"status": {"queue_position": "排队中：第 {position} 位，共 {size} 位"}}}
)


def in_chinese(page: bytes) -> bytes:
    """Gradio's page HTML, made to start in zh-CN whatever the browser's language."""
    page = page.replace(b"<head>", b"<head>" + _SCRIPT, 1)
    return _HTML_LANG.sub(rb"\g<1>" + LANGUAGE.encode() + rb"\g<2>", page, count=1)


class ChinesePage:
    """ASGI middleware: the HTML of Gradio's page at `path` goes out through `in_chinese`."""

    def __init__(self, app: ASGIApp, *, path: str = "/") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def rewriting(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # sent once the body is known: its length changes
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers, page = start["headers"], bytes(body)
            if _is_html(headers):
                page = in_chinese(page)
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, rewriting)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        key.lower() == b"content-type" and value.startswith(b"text/html") for key, value in headers
    )
