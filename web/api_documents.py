"""The API's routes about one base's documents: its index, its files, adding and removing
them, and its trash. Each change answers once the rebuild it asks for is served."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from retriever.bases import DEFAULT
from web.access import Identity
from web.api_models import BaseParameter, refusing
from web.library import Library
from web.outcomes import Outcome
from web.service import Service

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


def add_document_routes(
    router: APIRouter, service: Service, *, reading: Depends, editing: Depends
) -> None:
    """Add the routes of a base's documents to `router`; `reading` and `editing` check the
    caller (web/api.py)."""

    @router.get("/info")
    def info(base: BaseParameter = DEFAULT, identity: Identity = reading) -> dict[str, Any]:
        """The base's served index (documents, chunks, model, when built) and the rebuild
        state. A base without an index yet has 0 documents and `created_at` null."""
        library = refusing(service.library, identity, base)
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
        return [asdict(row) for row in refusing(service.library, identity, base).documents()]

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
        return [entry.to_dict() for entry in refusing(service.library, identity, base).trash()]

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
