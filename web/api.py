"""The HTTP API for other applications: JSON in and out, no Gradio client needed.

    POST   /api/search               {"question": "...", "k": 5, "base": "default"}  → [hit, ...]
    POST   /api/ask                  {"question": "...", "history": [...], "base": "default",
                                      "generate": false}
                                     → {"question", "answer", "found", "confidence",
                                        "answer_kind", "fallback", "citations", "answer_id"}
    POST   /api/ask/stream           the same body → server-sent events: extractive, piece…,
                                     answer (a generated answer as it is written)
    GET    /api/info                 → the served index, and whether a rebuild runs
    GET    /api/documents            → the corpus folder's files
    POST   /api/documents            multipart "files" → each file's outcome, after the rebuild
    DELETE /api/documents/{name}     → the outcome (the file is in the trash), after the rebuild
    GET    /api/trash                → the trash's entries, newest first
    POST   /api/trash/{id}/restore   → the outcome, after the rebuild
    GET    /api/preview?doc_id=…&start=…&end=…&mark=a:b
                                     → a window of the document's text around a passage
    POST   /api/feedback             {"answer_id", "rating": "good"|"bad", "comment"}
    GET    /api/feedback/export      → a zip of queries.jsonl, qrels.tsv, README.md
    GET    /api/bases                → the knowledge bases, the default first
    POST   /api/bases                {"name": "hr"} → the new, empty base (201)
    PATCH  /api/bases/{name}         {"name": "人事"} → the base under its new name
    DELETE /api/bases/{name}         → the bases-trash entry that restores it
    GET    /api/bases/trash          → the deleted bases, newest first
    POST   /api/bases/trash/{id}/restore  {"name": optional} → the restored base

Every route about documents or questions works on one knowledge base (retriever.bases): the
`base` field of a JSON body, or the `base` query parameter of the others (`?base=hr`); without
it, the default base (corpus/ and index/). An unknown base is a 404, a name no base may have a
422. A base has no index until its first documents are added: questions to it get a 409.
Hits and answers carry the same fields as `python -m retriever search/ask --json`; an
answer also carries `answer_id`, which feedback names it by. Offsets are 0-based and
end-exclusive (Python slices) everywhere in the API.
With an access file (web/access.py) every route needs `Authorization: Bearer <token>`: 401
without a valid one; adding, removing, the trash and the feedback export need an editor's
token, 403 otherwise, and so do creating, renaming and deleting bases. A token of the server
reads every base: access per base is not configurable yet.
Every `detail` says why in Chinese (the engine's QuestionError, in English for the command
line, is said again here). A question that cannot be searched (empty, too long) gets a 422
with {"detail": "why"}, one that is not valid Unicode a 400; too many questions a 429; a
malformed body FastAPI's usual 422 listing each bad field, its `msg` in Chinese. A change
to the documents that the full disk failed is undone and answered with a 507 {"detail":
"why"}, and so is any request that meets a full disk elsewhere. (`validation_error` and
`disk_full`, in web/api_models.py, are the handlers web/server.py installs for these.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from retriever.bases import DEFAULT
from retriever.generation import Extracted, Piece
from web.access import Access, Identity, Role
from web.api_bases import add_base_routes
from web.api_documents import add_document_routes
from web.api_models import (
    AskRequest,
    BaseParameter,
    FeedbackRequest,
    SearchRequest,
    check_text,
    refusing,
)
from web.feedback import Feedback
from web.feedback_export import export_zip
from web.feedback_log import FeedbackError
from web.preview import MAX_MARKS, BasePreviews, PreviewError, parse_marks
from web.service import Asked, Service

T = TypeVar("T")


def _answer_json(asked: Asked) -> dict[str, Any]:
    return {**asked.answer.to_dict(), "answer_id": asked.answer_id}


def _server_sent(events: Iterator[Extracted | Piece | Asked]) -> Iterator[str]:
    """Each event of a streamed answer as a server-sent event."""
    for event in events:
        if isinstance(event, Extracted):
            name, data = "extractive", event.answer.to_dict()
        elif isinstance(event, Piece):
            name, data = "piece", {"text": event.text}
        else:
            name, data = "answer", _answer_json(event)
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def asking(
    action: Callable[..., T], request: AskRequest, http: Request, identity: Identity, **more: Any
) -> T:
    """The service's `action` (ask, or ask streamed) on the question `request` carries, or
    the HTTP error its refusal names."""
    return refusing(
        action,
        identity,
        request.base,
        request.question,
        client=client_address(http),
        earlier=request.history,
        k=request.k,
        **more,
    )


def client_address(request: Request) -> str:
    """Who asks, for the question limit: the peer address, or the address a trusted proxy
    reports (uvicorn rewrites the peer from X-Forwarded-For only for RETRIEVER_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def api_router(
    service: Service,
    access: Access,
    *,
    previews: BasePreviews,
    feedback: Feedback,
) -> APIRouter:
    """The /api routes: the service's answers as JSON, and its refusals as HTTP errors.

    `previews` reads the windows of each base's documents, `feedback` stores the ratings.
    """

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

    def manager(request: Request) -> Identity:
        """Whoever holds the token of an editor of every base: only they manage bases."""
        identity = editor(request)
        if not identity.manages_bases:
            raise HTTPException(403, f"令牌 {identity.name} 只能用于部分知识库，不能管理知识库")
        return identity

    # Each route gets its caller as a parameter with one of these as its default (not
    # Annotated: a string annotation cannot name a local function), so that it can check
    # the knowledge base asked for against the caller's access rules.
    reading = Depends(reader)
    editing = Depends(editor)
    managing = Depends(manager)
    router = APIRouter(prefix="/api", tags=["api"])

    # Plain `def` routes: FastAPI runs them on its thread pool, so a search, which holds
    # the CPU, never blocks the event loop that serves the page.
    @router.post("/search")
    def search(
        request: SearchRequest, http: Request, identity: Identity = reading
    ) -> list[dict[str, Any]]:
        """The k passages that best match the question, best first."""
        hits = refusing(
            service.search,
            identity,
            request.base,
            request.question,
            request.k,
            client=client_address(http),
        )
        return [hit.to_dict() for hit in hits]

    @router.post("/ask")
    def ask(request: AskRequest, http: Request, identity: Identity = reading) -> dict[str, Any]:
        """An extractive answer with [n] markers and the passages they cite."""
        return _answer_json(asking(service.ask, request, http, identity, generate=request.generate))

    @router.post("/ask/stream")
    def ask_streamed(
        request: AskRequest, http: Request, identity: Identity = reading
    ) -> StreamingResponse:
        """A generated answer as it is made, as server-sent events: `extractive` (the
        extractive answer, at once), `piece` ({"text"}: the model's text as it comes, not yet
        checked), then `answer` (what /api/ask gives: the checked answer, or the extractive
        one with `fallback` saying why). 409 when no model is configured."""
        events = asking(service.ask_streamed, request, http, identity)
        return StreamingResponse(_server_sent(events), media_type="text/event-stream")

    @router.get("/preview")
    def preview(
        doc_id: Annotated[str, Query(max_length=1000)],
        start: Annotated[int, Query(ge=0)],
        end: Annotated[int, Query(ge=0)],
        mark: Annotated[list[str], Query(max_length=MAX_MARKS)] = [],  # noqa: B006
        base: BaseParameter = DEFAULT,
        identity: Identity = reading,
    ) -> dict[str, Any]:
        """A cited passage in its document: the document's extracted text from about 2,000
        characters before `start` to about 2,000 after `end`, with `mark` (spans written
        `a:b`, such as the answer's quoted sentences) to highlight.

        `doc_id` is a hit's `doc_id` (for most files, its `source`). Offsets are 0-based and
        end-exclusive, into the document's extracted text: the answer's `text` is
        `document[start:end]`. 404 for a document the served index does not hold, 422 for
        offsets outside it, 409 when its file changed since the index was built.
        """
        check_text(doc_id, "doc_id")
        library = refusing(service.library, identity, base)
        refusing(service.retriever, library)  # a base without an index has nothing to preview
        try:
            window = previews.of(library).preview(doc_id, start, end, parse_marks(mark))
            return window.to_dict()
        except PreviewError as error:
            raise HTTPException(error.status, str(error)) from None

    @router.post("/feedback", status_code=201)
    def rate(
        request: FeedbackRequest,
        http: Request,
        identity: Identity = reading,
    ) -> dict[str, Any]:
        """👍 (`good`) or 👎 (`bad`) on an answer of /api/ask, with an optional comment.

        Stored with the question, the answer, its cited passages, the base and the time.
        404 when the app no longer remembers the answer (it restarted, or thousands of
        answers came after); 403 when the token may not use the answer's knowledge base; 429
        past the limit per client; 507 when the log or the disk is full and 500 when writing
        failed otherwise, the rating then not stored. A 201 means it is on disk.
        """
        check_text(request.comment, "说明")
        try:
            entry = feedback.rate(
                request.answer_id,
                request.rating,
                request.comment,
                user=identity,  # whose bases Feedback.rate checks against the answer's
                client=client_address(http),
            )
        except FeedbackError as error:
            headers = None
            if error.retry_after:
                headers = {"Retry-After": str(math.ceil(error.retry_after))}
            raise HTTPException(error.status, str(error), headers=headers) from None
        return {"id": entry["id"], "answer_id": entry["answer_id"], "rated_at": entry["rated_at"]}

    @router.get("/feedback/export")
    def export_feedback(index: str | None = None, identity: Identity = editing) -> Response:
        """The ratings as an evaluation set in the layout of bench/datasets, without a corpus:
        a zip of queries.jsonl, qrels.tsv (cited passages, 1 for 👍 and 0 for 👎) and a
        README. `index` keeps only the answers of that knowledge base (its name); a token
        kept to some bases must name one of them."""
        if identity.bases is not None and (index is None or index not in identity.bases):
            raise HTTPException(403, f"令牌 {identity.name} 只能导出它能使用的知识库（index=…）")
        data = export_zip(feedback.log.entries(), index=index)
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="feedback.zip"'},
        )

    add_document_routes(router, service, reading=reading, editing=editing)
    add_base_routes(router, service, reading=reading, managing=managing)
    return router
