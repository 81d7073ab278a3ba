"""The HTTP API for other applications: JSON in and out, no Gradio client needed.

    POST   /api/search               {"question": "...", "k": 5, "base": "default"}  → [hit, ...]
    POST   /api/ask                  {"question": "...", "history": [...], "base": "default"}
                                     → {"question", "answer", "found", "confidence", "citations"}
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
malformed body FastAPI's usual 422 listing each bad field, its `msg` in Chinese
(`validation_error`, which app.py installs). A change to the
documents that the full disk failed is undone and answered with a 507 {"detail": "why"}, and
so is any request that meets a full disk elsewhere (`disk_full`, which app.py installs too).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from retriever.bases import (
    DEFAULT,
    Base,
)
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import MAX_HISTORY
from retriever.trash import DISK_FULL_ERRNOS, document_names
from web.access import Access, Identity, Role
from web.feedback import MAX_COMMENT_CHARS, Feedback, FeedbackError, export_zip
from web.library import DISK_FULL, Library, Outcome
from web.preview import MAX_MARKS, BasePreviews, PreviewError, parse_marks
from web.questions import is_text
from web.service import Refused, Service

T = TypeVar("T")
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


# The knowledge base a request works on: a query parameter, or a field of a JSON body.
BaseParameter = Annotated[str, Query(description="the knowledge base (default: the default one)")]


class SearchRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    base: str = DEFAULT


class AskRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    base: str = DEFAULT
    # Earlier questions of the same conversation, oldest first, to complete a follow-up
    # such as "那行政助理呢?"; the answer's "question" field shows what was searched.
    history: list[EarlierQuestion] = Field(default_factory=list, max_length=MAX_HISTORY)


class FeedbackRequest(BaseModel):
    # The id /api/ask gave the answer; the answer itself is taken from the app's memory,
    # never from the client.
    answer_id: str = Field(max_length=64)
    rating: Literal["good", "bad"]
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


class BaseName(BaseModel):
    name: str


class RestoreBase(BaseModel):
    name: str | None = None  # None: the name it had


def refusing(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """What the service's `action` gives, or the HTTP error its refusal names."""
    try:
        return action(*args, **kwargs)
    except Refused as refusal:
        headers = None
        if refusal.retry_after:
            headers = {"Retry-After": str(math.ceil(refusal.retry_after))}
        raise HTTPException(refusal.status, refusal.message, headers=headers) from None


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
    libraries = service.libraries

    def library_of(name: str, identity: Identity) -> Library:
        """The Library of base `name`, or the HTTP error that says why there is none, or
        why `identity` may not use it."""
        return refusing(service.library, identity, name)

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
        asked = refusing(
            service.ask,
            identity,
            request.base,
            request.question,
            client=client_address(http),
            earlier=request.history,
            k=request.k,
        )
        return {**asked.answer.to_dict(), "answer_id": asked.answer_id}

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
        _check_text(doc_id, "doc_id")
        library = library_of(base, identity)
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
        _check_text(request.comment, "说明")
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

    @router.get("/info")
    def info(base: BaseParameter = DEFAULT, identity: Identity = reading) -> dict[str, Any]:
        """The base's served index (documents, chunks, model, when built) and the rebuild
        state. A base without an index yet has 0 documents and `created_at` null."""
        library = library_of(base, identity)
        state = library.state
        return {
            "base": library.name,
            **_index_info(library),
            "rebuilding": state.running,
            "last_build_error": state.error,
        }

    @router.get("/documents")
    def documents(
        base: BaseParameter = DEFAULT, identity: Identity = reading
    ) -> list[dict[str, Any]]:
        """The corpus folder's files: name, size, and whether the served index holds them."""
        return [asdict(row) for row in library_of(base, identity).documents()]

    @router.post("/documents", openapi_extra=_FILES_FORM)
    async def add_documents(
        request: Request, base: BaseParameter = DEFAULT, identity: Identity = editing
    ) -> JSONResponse:
        """Add files (multipart field "files") to the base's corpus and rebuild; answers once
        the new index is served.

        A file with the name of a document replaces it; the old one goes to the trash.
        422 when every file was refused, 507 when the disk is full (nothing is changed);
        otherwise 200, with each file's outcome.
        """
        # Opening a base reads its index: on the thread pool, not the event loop. Nothing
        # is added here: the editor and the base are checked before the form is read.
        await run_in_threadpool(refusing, service.editing, identity, base)
        # The form is read here, once the token and the base have been checked; as a
        # parameter it would be read (and spooled to disk) first, for anyone.
        async with request.form() as form:
            files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
            if not files:
                raise HTTPException(422, '没有收到文件：请用 multipart 字段 "files" 发送')
            return await run_in_threadpool(_add, identity, base, files)

    def _add(identity: Identity, base: str, files: list[UploadFile]) -> JSONResponse:
        with tempfile.TemporaryDirectory(prefix="upload-") as folder:
            uploads: list[tuple[Path | None, str]] = []
            for number, upload in enumerate(files):
                # Saved under a made-up name: the client's name is checked, never used as a
                # path, until it has passed check_name.
                path = Path(folder, str(number))
                with path.open("wb") as target:
                    shutil.copyfileobj(upload.file, target)
                uploads.append((path, upload.filename or ""))
            library, outcomes = refusing(service.add_documents, identity, base, uploads)
        return _rebuilt(library, outcomes)

    @router.delete("/documents/{name:path}")
    def remove_document(
        name: str, base: BaseParameter = DEFAULT, identity: Identity = editing
    ) -> JSONResponse:
        """Move one file of the base's corpus to the trash and rebuild; answers once the new
        index is served. 409 when it is the last readable document, 507 when the disk is full
        (the document stays where it was)."""
        library, outcome = refusing(service.remove_document, identity, base, name)
        return _rebuilt(library, [outcome], refused=409)

    @router.get("/trash")
    def trash(base: BaseParameter = DEFAULT, identity: Identity = editing) -> list[dict[str, Any]]:
        """The base's removed and replaced files, newest first: id, name, removed_at, reason,
        size."""
        return [entry.to_dict() for entry in library_of(base, identity).trash()]

    @router.post("/trash/{entry_id}/restore")
    def restore(
        entry_id: str, base: BaseParameter = DEFAULT, identity: Identity = editing
    ) -> JSONResponse:
        """Put a file of the base's trash back (a current file of that name goes to the
        trash) and rebuild; answers once the new index is served."""
        library, outcome = refusing(service.restore_document, identity, base, entry_id)
        return _rebuilt(library, [outcome], refused=409)

    def _rebuilt(library: Library, outcomes: list[Outcome], refused: int = 422) -> JSONResponse:
        """Rebuild if any file changed, wait for it, and report each file and the index.
        507 when nothing changed and the disk being full is why."""
        state = refusing(service.rebuilt, library, outcomes)
        error = state.error if state else None
        body = {
            "files": [outcome.to_dict() for outcome in outcomes],
            "index": _index_info(library),
            "build_error": error,
        }
        status = 200 if any(outcome.ok for outcome in outcomes) else refused
        return JSONResponse(body, status_code=500 if error else status)

    # ------------------------------------------------------------------ knowledge bases

    @router.get("/bases")
    def bases(identity: Identity = reading) -> list[dict[str, Any]]:
        """The knowledge bases the token may use, the default first: name, whether it is the
        default, when it was created (null for the default), and how many documents its
        corpus holds."""
        return [_base(base) for base in libraries.list() if identity.role_in(base.name)]

    @router.post("/bases", status_code=201)
    def create_base(request: BaseName, identity: Identity = managing) -> dict[str, Any]:
        """A new, empty knowledge base: upload into it with `POST /api/documents?base=…`.
        422 for a name no base may have, 409 when it is taken."""
        return _base(refusing(service.create_base, identity, request.name))

    @router.patch("/bases/{name}")
    def rename_base(name: str, request: BaseName, identity: Identity = managing) -> dict[str, Any]:
        """Rename a base; its documents, index and trash move with it. Waits for a running
        rebuild of it first. 409 for the default base, or when the new name is taken."""
        return _base(refusing(service.rename_base, identity, name, request.name))

    @router.delete("/bases/{name}")
    def delete_base(name: str, identity: Identity = managing) -> dict[str, Any]:
        """Move a base (documents, index and all) to the bases trash; the answer's `id` is
        what `POST /api/bases/trash/{id}/restore` takes. 409 for the default base."""
        return refusing(service.delete_base, identity, name).to_dict()

    @router.get("/bases/trash", dependencies=[managing])
    def bases_trash() -> list[dict[str, Any]]:
        """The deleted bases, newest first: id, name, removed_at."""
        return [entry.to_dict() for entry in libraries.trash()]

    @router.post("/bases/trash/{entry_id}/restore")
    def restore_base(
        entry_id: str, request: RestoreBase | None = None, identity: Identity = managing
    ) -> dict[str, Any]:
        """Put a deleted base back, under its old name or the body's `name`. 409 when that
        name is taken."""
        name = request.name if request else None
        return _base(refusing(service.restore_base, identity, entry_id, name))

    return router


def _index_info(library: Library) -> dict[str, Any]:
    """The base's served index, as IndexInfo gives it; zeros for a base without one."""
    if library.indexed:
        return library.retriever.info.to_dict()
    return {
        "folder": str(library.index_dir),
        "documents": 0,
        "files": 0,
        "chunks": 0,
        "model": None,
        "created_at": None,
        "skipped": [],
    }


def _base(base: Base) -> dict[str, Any]:
    """A base as the API lists it (its folders are the server's business)."""
    documents = len(document_names(base.corpus)) if base.corpus.is_dir() else 0
    return {
        "name": base.name,
        "default": base.is_default,
        "created_at": base.created_at,
        "documents": documents,
    }


async def disk_full(request: Request, error: OSError) -> Response:
    """507 for a full disk (or quota) that no route caught, such as while an upload is saved
    before it reaches the corpus, instead of a bare 500; app.py installs it for OSError.
    Every other OSError stays the server error it is. The changes to a corpus report a full
    disk themselves, once they have undone what they did (retriever.trash)."""
    if error.errno not in DISK_FULL_ERRNOS:
        raise error
    return JSONResponse({"detail": DISK_FULL}, status_code=507)


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's 422 for a malformed body, safe for any input, each error's `msg` in Chinese
    (its `loc` and `type` as FastAPI gives them).

    Its errors echo the input, and a lone surrogate there (JSON can carry one) would fail
    the UTF-8 encoding of the response, making it a 500; escaped as ASCII it cannot.
    """
    errors = [{**item, "msg": _field_message(item)} for item in error.errors()]
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def _check_text(text: str, what: str) -> None:
    """400 for text that is not valid Unicode (a lone surrogate, which JSON can carry)."""
    if not is_text(text):
        raise HTTPException(
            400, f"{what}不是有效的 Unicode 文本（含有单独的代理字符）：请用 UTF-8 发送"
        )


# What pydantic's error types mean, in Chinese; {name} is filled from the error's ctx.
_FIELD_MESSAGES = {
    "missing": "缺少这个字段",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为数组（列表）",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "string_too_short": "至少要有 {min_length} 个字",
    "string_too_long": "最多 {max_length} 个字",
    "too_short": "至少要有 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "literal_error": "只能是 {expected}",
    "enum": "只能是 {expected}",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    "extra_forbidden": "不认识这个字段",
    "string_unicode": "不是有效的 Unicode 文本",
}


def _field_message(error: dict[str, Any]) -> str:
    """A pydantic error's message, in Chinese."""
    template = _FIELD_MESSAGES.get(str(error.get("type", "")))
    if template is None:
        return "这个值无效"
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError, ValueError):
        return template.split("{")[0].rstrip() or "这个值无效"
