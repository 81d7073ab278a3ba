"""The HTTP API for other applications: JSON in and out, no Gradio client needed.

    POST   /api/search               {"question": "...", "k": 5}  → [hit, ...]
    POST   /api/ask                  {"question": "...", "history": [...]}
                                     → {"question", "answer", "found", "confidence", "citations"}
    GET    /api/info                 → the served index, and whether a rebuild runs
    GET    /api/documents            → the corpus folder's files
    POST   /api/documents            multipart "files" → each file's outcome, after the rebuild
    DELETE /api/documents/{name}     → the outcome (the file is in the trash), after the rebuild
    GET    /api/trash                → the trash's entries, newest first
    POST   /api/trash/{id}/restore   → the outcome, after the rebuild

Hits and answers carry the same fields as `python -m retriever search/ask --json`.
With an access file (web/access.py) every route needs `Authorization: Bearer <token>`: 401
without a valid one; the last five routes need an editor's token, 403 otherwise.
A question that cannot be searched (empty, too long) gets a 422 with {"detail": "why"}, one
that is not valid Unicode a 400; too many questions a 429; a malformed body FastAPI's usual
422 listing each bad field (`validation_error`, which app.py installs).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from retriever import QuestionError
from retriever.config import MAX_QUESTION_CHARS
from web.access import Access, Identity, Role
from web.followup import MAX_HISTORY, complete_followup
from web.library import Library, Outcome
from web.limits import QuestionLimit
from web.questions import is_text

# More passages than this is a dump of the corpus, not a search.
MAX_K = 50
# An earlier question is a question, so no longer than one: longer ones cost jieba time.
# (A constrained str, so pydantic also refuses a lone surrogate in it, with a 422.)
EarlierQuestion = Annotated[str, Field(max_length=MAX_QUESTION_CHARS)]
# POST /api/documents reads its form itself (see there); this describes it in the OpenAPI.
_FILES_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


class SearchRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)


class AskRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    # Earlier questions of the same conversation, oldest first, to complete a follow-up
    # such as "那行政助理呢?"; the answer's "question" field shows what was searched.
    history: list[EarlierQuestion] = Field(default_factory=list, max_length=MAX_HISTORY)


def client_address(request: Request) -> str:
    """Who asks, for the question limit: the peer address, or the address a trusted proxy
    reports (uvicorn rewrites the peer from X-Forwarded-For only for RETRIEVER_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def api_router(library: Library, access: Access, limit: QuestionLimit) -> APIRouter:
    """The /api routes, answering from whichever index `library` serves at the time."""

    def reader(request: Request) -> Identity:
        """Whoever holds a valid token (anyone, without access control)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        identity = access.bearer(token.strip() if scheme.lower() == "bearer" else None)
        if identity is None:
            detail = "API 令牌无效" if token else "需要 API 令牌（Authorization: Bearer …）"
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
        return identity

    def editor(request: Request) -> Identity:
        """Whoever holds an editor's token: only they may change the corpus."""
        identity = reader(request)
        if identity.role < Role.EDITOR:
            raise HTTPException(403, f"令牌 {identity.name} 只能提问和查看，不能修改文档库")
        return identity

    def asker(request: Request) -> Identity:
        """A reader within the question limit."""
        identity = reader(request)
        wait = limit.wait(client_address(request))
        if wait:
            retry = str(math.ceil(wait))
            raise HTTPException(429, limit.message(wait), headers={"Retry-After": retry})
        return identity

    reading = [Depends(reader)]
    asking = [Depends(asker)]
    editing = [Depends(editor)]
    router = APIRouter(prefix="/api", tags=["api"])

    # Plain `def` routes: FastAPI runs them on its thread pool, so a search, which holds
    # the CPU, never blocks the event loop that serves the page.
    @router.post("/search", dependencies=asking)
    def search(request: SearchRequest) -> list[dict[str, Any]]:
        """The k passages that best match the question, best first."""
        _check_text(request.question, "the question")
        try:
            hits = library.retriever.search(request.question, request.k)
        except QuestionError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return [hit.to_dict() for hit in hits]

    @router.post("/ask", dependencies=asking)
    def ask(request: AskRequest) -> dict[str, Any]:
        """An extractive answer with [n] markers and the passages they cite."""
        _check_text(request.question, "the question")
        question = complete_followup(request.question, request.history)
        try:
            answer = library.retriever.ask(question, request.k)
        except QuestionError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return answer.to_dict()

    @router.get("/info", dependencies=reading)
    def info() -> dict[str, Any]:
        """The served index (documents, chunks, model, when built) and the rebuild state."""
        state = library.state
        return {
            **library.retriever.info.to_dict(),
            "rebuilding": state.running,
            "last_build_error": state.error,
        }

    @router.get("/documents", dependencies=reading)
    def documents() -> list[dict[str, Any]]:
        """The corpus folder's files: name, size, and whether the served index holds them."""
        return [asdict(row) for row in library.documents()]

    @router.post("/documents", dependencies=editing, openapi_extra=_FILES_FORM)
    async def add_documents(request: Request) -> JSONResponse:
        """Add files (multipart field "files") to the corpus and rebuild; answers once the
        new index is served.

        A file with the name of a document replaces it; the old one goes to the trash.
        422 when every file was refused; otherwise 200, with each file's outcome.
        """
        # The form is read here, once the token has been checked; as a parameter it would be
        # read (and spooled to disk) first, for anyone.
        async with request.form() as form:
            files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
            if not files:
                raise HTTPException(422, 'no files: send them as the multipart field "files"')
            return await run_in_threadpool(_add, files)

    def _add(files: list[UploadFile]) -> JSONResponse:
        with tempfile.TemporaryDirectory(prefix="upload-") as folder:
            uploads = []
            for number, upload in enumerate(files):
                # Saved under a made-up name: the client's name is checked, never used as a
                # path, until it has passed check_name.
                path = Path(folder, str(number))
                with path.open("wb") as target:
                    shutil.copyfileobj(upload.file, target)
                uploads.append((path, upload.filename or ""))
            outcomes = library.add(uploads)
        return _rebuilt(outcomes)

    @router.delete("/documents/{name:path}", dependencies=editing)
    def remove_document(name: str) -> JSONResponse:
        """Move one file of the corpus to the trash and rebuild; answers once the new index
        is served. 409 when it is the last readable document."""
        if name not in {row.name for row in library.documents()}:
            raise HTTPException(status_code=404, detail=f"文档库里没有 {name}")
        return _rebuilt([library.remove(name)], refused=409)

    @router.get("/trash", dependencies=editing)
    def trash() -> list[dict[str, Any]]:
        """The removed and replaced files, newest first: id, name, removed_at, reason, size."""
        return [entry.to_dict() for entry in library.trash()]

    @router.post("/trash/{entry_id}/restore", dependencies=editing)
    def restore(entry_id: str) -> JSONResponse:
        """Put a file of the trash back (a current file of that name goes to the trash) and
        rebuild; answers once the new index is served."""
        if entry_id not in {entry.id for entry in library.trash()}:
            raise HTTPException(status_code=404, detail="回收站里没有这一项")
        return _rebuilt([library.restore(entry_id)], refused=409)

    def _rebuilt(outcomes: list[Outcome], refused: int = 422) -> JSONResponse:
        """Rebuild if any file changed, wait for it, and report each file and the index."""
        error = None
        if any(outcome.ok for outcome in outcomes):
            error = library.wait(library.rebuild()).error
        body = {
            "files": [asdict(outcome) for outcome in outcomes],
            "index": library.retriever.info.to_dict(),
            "build_error": error,
        }
        status = 200 if any(outcome.ok for outcome in outcomes) else refused
        return JSONResponse(body, status_code=500 if error else status)

    return router


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's 422 for a malformed body, safe for any input.

    Its errors echo the input, and a lone surrogate there (JSON can carry one) would fail
    the UTF-8 encoding of the response, making it a 500; escaped as ASCII it cannot.
    """
    body = json.dumps({"detail": jsonable_encoder(error.errors())}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def _check_text(text: str, what: str) -> None:
    """400 for text that is not valid Unicode (a lone surrogate, which JSON can carry)."""
    if not is_text(text):
        raise HTTPException(400, f"{what} is not valid Unicode text (it holds a lone surrogate)")
