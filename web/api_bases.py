"""The API's routes that list, create, rename, delete and restore knowledge bases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.params import Depends

from retriever.bases import Base
from retriever.trash import document_names
from web.access import Identity
from web.api_models import BaseName, RestoreBase, refusing
from web.service import Service


def add_base_routes(
    router: APIRouter, service: Service, *, reading: Depends, managing: Depends
) -> None:
    """Add the routes of the knowledge bases to `router`; `reading` and `managing` check the
    caller (web/api.py)."""
    libraries = service.libraries

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


def _base(base: Base) -> dict[str, Any]:
    """A base as the API lists it (its folders are the server's business)."""
    documents = len(document_names(base.corpus)) if base.corpus.is_dir() else 0
    return {
        "name": base.name,
        "default": base.is_default,
        "created_at": base.created_at,
        "documents": documents,
    }
