"""A small OpenAI-compatible model server on 127.0.0.1 that plays scripted answers, for the
tests of generated answers (retriever/generation.py): real HTTP, real server-sent events,
no model. Each request gets the next scripted reply (without one, it quotes the first
sentence of passage [1], as a faithful model would); the requests are kept for inspection.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Reply:
    """One scripted reply: the text in pieces, or an HTTP error, with delays."""

    pieces: list[str] = field(default_factory=list)
    status: int = 200
    first_delay: float = 0.0  # seconds before the first piece
    broken: bool = False  # the stream ends with a piece that is not JSON


@dataclass
class Stub:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def play(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests.clear()


def _faithful(prompt: str) -> Reply:
    """Unscripted, the stub answers as a faithful model would: the first sentence of passage
    [1], cited; or that the passages do not answer, when there is none."""
    match = re.search(r"^\[1\][^\n]*\n([^\n。！？]+)", prompt, flags=re.MULTILINE)
    if not match:
        return Reply(["资料中没有找到答案。"])
    return Reply([match.group(1).strip(), "[1]。"])


def _chunk(text: str) -> str:
    body = {
        "id": "stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "stub",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _app(stub: Stub) -> Starlette:
    async def completions(request: Request) -> Response:
        stub.requests.append(await request.json())
        body = stub.requests[-1]
        reply = stub.replies.pop(0) if stub.replies else _faithful(body["messages"][-1]["content"])
        if reply.status != 200:
            return JSONResponse({"error": {"message": "scripted failure"}}, reply.status)

        async def events() -> AsyncIterator[str]:
            await asyncio.sleep(reply.first_delay)
            for piece in reply.pieces:
                yield _chunk(piece)
            if reply.broken:
                yield "data: {not json\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextmanager
def model_server() -> Iterator[Stub]:
    """Serve a Stub on a free port of 127.0.0.1 for the block; `stub.url` is its base URL."""
    stub = Stub()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_app(stub), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the stub model server did not start")
        time.sleep(0.02)
    stub.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
