"""The HTTP API for other applications: JSON in and out, no Gradio client needed.

    POST   /api/search            {"question": "...", "k": 5}  → [hit, ...]
    POST   /api/ask               {"question": "...", "history": [...]}
                                  → {"question", "answer", "found", "confidence", "citations"}
    GET    /api/info              → the served index, and whether a rebuild runs
    GET    /api/documents         → the corpus folder's files
    POST   /api/documents         multipart "files" → each file's outcome, after the rebuild
    DELETE /api/documents/{name}  → the outcome, after the rebuild

Hits and answers carry the same fields as `python -m retriever search/ask --json`.
A question that cannot be searched (empty, too long) gets a 422 with {"detail": "why"};
a malformed body gets FastAPI's usual 422 listing each bad field.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from retriever import QuestionError
from web.followup import complete_followup
from web.library import Library, Outcome

# More passages than this is a dump of the corpus, not a search.
MAX_K = 50


class SearchRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)


class AskRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    # Earlier questions of the same conversation, oldest first, to complete a follow-up
    # such as "那行政助理呢?"; the answer's "question" field shows what was searched.
    history: list[str] = Field(default_factory=list, max_length=50)


def api_router(library: Library) -> APIRouter:
    """The /api routes, answering from whichever index `library` serves at the time."""
    router = APIRouter(prefix="/api", tags=["api"])

    # Plain `def` routes: FastAPI runs them on its thread pool, so a search, which holds
    # the CPU, never blocks the event loop that serves the page.
    @router.post("/search")
    def search(request: SearchRequest) -> list[dict[str, Any]]:
        """The k passages that best match the question, best first."""
        try:
            hits = library.retriever.search(request.question, request.k)
        except QuestionError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return [hit.to_dict() for hit in hits]

    @router.post("/ask")
    def ask(request: AskRequest) -> dict[str, Any]:
        """An extractive answer with [n] markers and the passages they cite."""
        question = complete_followup(request.question, request.history)
        try:
            answer = library.retriever.ask(question, request.k)
        except QuestionError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return answer.to_dict()

    @router.get("/info")
    def info() -> dict[str, Any]:
        """The served index (documents, chunks, model, when built) and the rebuild state."""
        state = library.state
        return {
            **library.retriever.info.to_dict(),
            "rebuilding": state.running,
            "last_build_error": state.error,
        }

    @router.get("/documents")
    def documents() -> list[dict[str, Any]]:
        """The corpus folder's files: name, size, and whether the served index holds them."""
        return [asdict(row) for row in library.documents()]

    @router.post("/documents")
    def add_documents(files: list[UploadFile]) -> JSONResponse:
        """Add files to the corpus and rebuild; answers once the new index is served.

        422 when every file was refused; otherwise 200, with each file's outcome.
        """
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

    @router.delete("/documents/{name:path}")
    def remove_document(name: str) -> JSONResponse:
        """Remove one file of the corpus and rebuild; answers once the new index is served."""
        if name not in {row.name for row in library.documents()}:
            raise HTTPException(status_code=404, detail=f"no document {name!r} in the corpus")
        return _rebuilt([library.remove(name)], refused=409)

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
