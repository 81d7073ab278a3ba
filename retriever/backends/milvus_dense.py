"""Dense backend "milvus": vectors in a Milvus collection, through pymilvus's MilvusClient.

Two places the data can live, with the same code (MilvusClient takes either URI):

- **Milvus Lite** (the default): an embedded, in-process Milvus whose data is a folder,
  `dense/milvus.db` inside the index folder, so it moves with the index when a build swaps
  its staging folder in (retriever.staging) and is covered by the manifest's checksums.
  `load` copies `milvus.db` to a private working copy (retriever.backends.milvus_copies) and
  opens the copy, and `save` closes the working copy and copies it into the staging folder.
  So a served index is never written to, a checksum still holds after a search, two
  processes (the page and a CLI build) can open the same index, and an update works on its
  own copy until the swap. The copy costs about a second per 200 MB (150 MB at 100k 384-dim
  vectors).
- **A Milvus server** (standalone or distributed): `MilvusSettings(uri=...)`, passed in with
  `configured(settings)` around the build (retriever.backends.milvus_settings). The data
  lives on the server and `dense/milvus.json` records how to reach it (URI, database,
  collection, consistency; never the token), and the manifest lists the collection
  (`Index.save`). Each build writes its own collection, which the index owns, and retires
  the replaced index's (retriever.backends.milvus_collections).
  Reads use `consistency` (Bounded by default): they do not wait for the server's time
  tick (about 200 ms a read under Strong on Milvus 2.3); `save` flushes the build's writes
  and reads the count back Strong once, so the index is not declared ready before a read
  sees all of it. docs/milvus.md has the figures and what was tested on a real server.

The index kind follows the count as FAISS's does (faiss_dense.py): exact search (FLAT)
below HNSW_THRESHOLD vectors, HNSW (M=32; Milvus Lite 3.2 keeps its own M=16) from there on;
metric IP on unit vectors, which is the cosine. `scores` fetches the given ids' vectors and
takes their inner products here: exact cosines, whatever the index kind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import weakref
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from retriever.backends import milvus_collections, milvus_copies, milvus_owners
from retriever.backends.base import DenseBackend, Scored
from retriever.backends.milvus_collections import ID, SETTINGS, VECTOR
from retriever.backends.milvus_copies import DATA
from retriever.backends.milvus_settings import (
    STRONG,
    MilvusSettings,
    current_settings,
    saved_server,
)

logger = logging.getLogger(__name__)

HNSW_THRESHOLD = 100_000
HNSW_EF_SEARCH = 128
MAX_LIMIT = 16_384  # the most hits Milvus returns for one search


class MilvusDense(milvus_owners.ServerCollections, DenseBackend):
    name = "milvus"
    _mark = milvus_owners.BUILDER

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        *,
        server: bool,
        owned: bool,
        marker: int | None = None,
        settings: MilvusSettings | None = None,
    ) -> None:
        self._uri = uri  # the working copy's .db folder (Lite) or the server's URI
        self._collection = collection
        self._dim = dim
        self._server = server
        self._owned = owned  # False for a server collection that a saved index reads
        self._settings = settings or MilvusSettings()
        self._read_level = self._settings.consistency if server else STRONG
        self._kind: str | None = None  # the index type, read when first needed
        self._retired: str | None = None  # the replaced index's collection, kept one build
        # The client lives in a dict the finalizer shares, so that it can close it. The
        # finalizer also runs at exit; `marker` is the Lite working copy's locked OWNER file.
        self._state: dict[str, Any] = {"client": None}
        self._finalizer = weakref.finalize(
            self, milvus_copies.close, self._state, uri, server, marker, os.getpid()
        )

    # ------------------------------------------------------------------- create, load, save

    @classmethod
    def create(cls, dim: int) -> Self:
        milvus_copies.remove_dead_copies()
        settings = current_settings()
        if settings.uri:
            index = cls(
                settings.uri,
                milvus_collections.new_collection_name(),
                dim,
                server=True,
                owned=True,
                settings=settings,
            )
            milvus_owners.drop_dead_builds(index._open())
        else:
            folder, marker = milvus_copies.new_working_copy()
            index = cls(str(folder / DATA), "chunks", dim, server=False, owned=True, marker=marker)
        index._create_collection()
        return index

    @classmethod
    def load(cls, folder: Path) -> Self:
        milvus_copies.remove_dead_copies()
        settings = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        collection, dim, server_uri = settings["collection"], int(settings["dim"]), settings["uri"]
        if server_uri:
            server = saved_server(settings)
            index = cls(server_uri, collection, dim, server=True, owned=False, settings=server)
        else:
            if not (folder / DATA).is_dir():
                raise ValueError(f"{folder / DATA} is missing")
            working, marker = milvus_copies.new_working_copy()
            # Made before the copy, so that its finalizer deletes a copy cut short.
            index = cls(
                str(working / DATA), collection, dim, server=False, owned=True, marker=marker
            )
            shutil.copytree(folder / DATA, working / DATA)
        index._open_existing()
        return index

    def save(self, folder: Path) -> None:
        settings: dict[str, Any] = {
            "uri": self._uri if self._server else None,
            "collection": self._collection,
        }
        if self._server:
            self._make_visible()
            settings["database"] = self._settings.database
            settings["consistency"] = self._settings.consistency
            settings["retired"] = self._retired
        else:
            # Milvus Lite writes everything out when its database closes.
            milvus_copies.release(self._state, self._uri, server=False)
            shutil.copytree(self._uri, folder / DATA, ignore=shutil.ignore_patterns("LOCK"))
        settings["dim"] = self._dim
        (folder / SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def close(self) -> None:
        """Close the client (for Lite, the in-process database) and delete a Lite working
        copy now rather than when garbage-collected. The backend cannot be used after."""
        self._finalizer()

    def _on_server(self) -> tuple[str, str] | None:
        return (self._uri, self._settings.database) if self._server else None

    # ---------------------------------------------------------------------------- reading

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def count(self) -> int:
        return self._count(self._read_level)

    def _count(self, level: str) -> int:
        rows = self._open().query(
            self._collection, filter="", output_fields=["count(*)"], consistency_level=level
        )
        return int(rows[0]["count(*)"])

    def search(self, query: np.ndarray, k: int) -> list[Scored]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self._index_kind() == "HNSW":
            params["params"] = {"ef": max(HNSW_EF_SEARCH, k)}
        hits = self._open().search(
            self._collection,
            data=[_float32(query).tolist()],
            limit=min(k, MAX_LIMIT),
            output_fields=[ID],
            search_params=params,
            consistency_level=self._read_level,
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits[0]]

    def scores(self, query: np.ndarray, ids: Collection[int]) -> dict[int, float]:
        if not ids:
            return {}
        rows = self._open().query(
            self._collection,
            ids=[int(i) for i in ids],
            output_fields=[ID, VECTOR],
            consistency_level=self._read_level,
        )
        if not rows:
            return {}
        vectors = np.array([row[VECTOR] for row in rows], dtype=np.float32)
        cosines = (vectors @ _float32(query)).tolist()
        return {int(row[ID]): cosine for row, cosine in zip(rows, cosines, strict=True)}

    # ---------------------------------------------------------------------------- changes

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        self._make_own()
        vectors = _float32(vectors)
        milvus_collections.insert_rows(self._open(), self._collection, ids, VECTOR, vectors)
        self._fit()

    def delete(self, ids: Collection[int]) -> None:
        if not ids:
            return
        self._make_own()
        self._open().delete(self._collection, ids=[int(i) for i in ids])
        self._fit()

    # ----------------------------------------------------------------------------- inside

    def _open(self):
        """The client, connected (for Lite: the in-process server started) when first used."""
        if not self._finalizer.alive:  # Lite would make a new, empty database in its place
            raise ValueError("this Milvus index is closed")
        if self._state["client"] is None:
            server = (self._settings.token, self._settings.database) if self._server else None
            self._state["client"] = milvus_collections.open_client(
                self._uri, self._collection, server
            )
        return self._state["client"]

    def _create_collection(self) -> None:
        properties = milvus_owners.building() if self._server else {}
        milvus_collections.create(self._open(), self._collection, self._dim, properties)
        self._kind = "FLAT"

    def _open_existing(self) -> None:
        """Check the collection is there with vectors of the recorded size, and load it."""
        milvus_collections.check(self._open, self._uri, self._collection, self._dim)

    def _make_visible(self) -> None:
        """Before the index is declared ready: seal the build's writes and read them back
        with Strong consistency once, so every later read, at any level, sees them."""
        client = self._open()
        client.flush(self._collection)
        self._count(STRONG)

    def _index_kind(self) -> str:
        if self._kind is None:
            self._kind = self._open().describe_index(self._collection, VECTOR)["index_type"]
        return self._kind

    def _fit(self) -> None:
        """Make the index the kind a fresh build of this many vectors would have."""
        wanted = "HNSW" if self._count(STRONG) >= HNSW_THRESHOLD else "FLAT"
        if wanted == self._index_kind():
            return
        logger.info("Milvus collection %s: index %s → %s", self._collection, self._kind, wanted)
        client = self._open()
        client.release_collection(self._collection)
        client.drop_index(self._collection, VECTOR)
        milvus_collections.make_index(client, self._collection, wanted)  # and loads it
        self._kind = wanted

    def _make_own(self) -> None:
        """On a server, copy a loaded collection into a new one before the first change, so
        the collection the served index reads is never changed. (A Lite index already works
        on its own copy.) The copy gets the index kind a fresh build of its size would have."""
        if self._owned:
            return
        self._index_kind()  # the loaded collection's kind, read before the name changes
        old, client = self._collection, self._open()
        milvus_owners.drop_dead_builds(client)
        self._collection = milvus_collections.new_collection_name()
        logger.info("copying Milvus collection %s to %s for an update", old, self._collection)
        self._create_collection()  # FLAT; _fit below makes it HNSW if its size asks
        self._owned = True
        milvus_collections.copy_rows(client, old, self._collection)
        self._fit()


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)
