"""Dense backend "milvus": vectors in a Milvus collection, through pymilvus's MilvusClient.

Two places the data can live, with the same code (MilvusClient takes either URI):

- **Milvus Lite** (the default): an embedded, in-process Milvus whose data is a folder,
  `dense/milvus.db` inside the index folder, so it moves with the index when a build swaps
  its staging folder in (retriever.staging) and is covered by the manifest's checksums.
  Milvus Lite writes to the folder it opens (its LOCK, WAL and manifest files), so the index
  folder is never opened: `load` copies `milvus.db` to a private temporary folder and opens
  the copy, and `save` closes the working copy and copies it into the staging folder. So a
  served index is never written to, a checksum still holds after a search, two processes
  (the page and a CLI build) can open the same index, and an update works on its own copy
  until the swap. The copy costs about a second per 200 MB (150 MB at 100k 384-dim vectors).
  A working copy is a `retriever-milvus-*` folder in the temp dir (tempfile.gettempdir(),
  so TMPDIR), deleted by `close`, when the backend is garbage-collected, or at exit. Its
  process holds a lock on the marker file OWNER inside for as long as it lives, so the
  copies of a process that died without closing them (killed) are told apart and deleted
  by the next process that opens or creates a Milvus index.
- **A Milvus server** (standalone or distributed): set RETRIEVER_MILVUS_URI, or pass
  `python -m retriever build --backend milvus --milvus-uri http://host:19530`. The data
  lives on the server and `dense/milvus.json` records how to reach it (URI and collection).
  Each build writes its own collection (named `zh_retriever_<random>`): an update copies
  the previous collection into a new one before changing anything, so the index being
  served is never changed under it and a crash mid-update leaves it whole. Limitation: the
  replaced collection is not dropped (the backend cannot know when the swap succeeded);
  its name is logged, and `drop_collection` removes it. Not tested here: no server.

The index kind follows the count as FAISS's does (faiss_dense.py): exact search (FLAT)
below HNSW_THRESHOLD vectors, HNSW (M=32) from there on; metric IP on unit vectors, which is
the cosine. Collections use consistency_level="Strong", so a search sees a write just made.
`scores` fetches the given ids' vectors and takes their inner products here: exact cosines,
whatever the index kind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
import uuid
import weakref
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from retriever.backends.base import DenseBackend, Scored

logger = logging.getLogger(__name__)

DATA = "milvus.db"  # Milvus Lite's data folder (its name must end in .db)
SETTINGS = "milvus.json"  # {"uri": server URI or null for Lite, "collection", "dim"}
URI_VARIABLE = "RETRIEVER_MILVUS_URI"  # a server URI for new indexes; unset: Milvus Lite
ID, VECTOR = "id", "vector"
HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40  # FAISS's default, so both engines build the same kind of graph
HNSW_EF_SEARCH = 128
INSERT_BATCH = 5_000  # rows per insert call: keeps each gRPC message well under its limit
MAX_LIMIT = 16_384  # the most hits Milvus returns for one search
STRONG = "Strong"
WORKING_PREFIX = "retriever-milvus-"  # a Lite working copy's folder name in the temp dir
OWNER = "owner.lock"  # in a working copy: locked by the process using it while it lives
OWNER_PENDING = "owner.lock.new"  # the marker's name until it is locked


class MilvusDense(DenseBackend):
    name = "milvus"

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        *,
        server: bool,
        owned: bool,
        marker: int | None = None,
    ) -> None:
        self._uri = uri  # the working copy's .db folder (Lite) or the server's URI
        self._collection = collection
        self._dim = dim
        self._server = server
        self._owned = owned  # False for a server collection that a saved index reads
        self._kind: str | None = None  # the index type, read when first needed
        # The client lives in a dict the finalizer shares, so that it can close it. The
        # finalizer also runs at exit; `marker` is the Lite working copy's locked OWNER file.
        self._state: dict[str, Any] = {"client": None}
        self._finalizer = weakref.finalize(
            self, _close, self._state, uri, server, marker, os.getpid()
        )

    # ------------------------------------------------------------------- create, load, save

    @classmethod
    def create(cls, dim: int) -> Self:
        _remove_dead_copies()
        server_uri = os.environ.get(URI_VARIABLE)
        if server_uri:
            index = cls(server_uri, _new_collection_name(), dim, server=True, owned=True)
        else:
            folder, marker = _new_working_copy()
            index = cls(str(folder / DATA), "chunks", dim, server=False, owned=True, marker=marker)
        index._create_collection()
        return index

    @classmethod
    def load(cls, folder: Path) -> Self:
        _remove_dead_copies()
        settings = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        collection, dim, server_uri = settings["collection"], int(settings["dim"]), settings["uri"]
        if server_uri:
            index = cls(server_uri, collection, dim, server=True, owned=False)
        else:
            if not (folder / DATA).is_dir():
                raise ValueError(f"{folder / DATA} is missing")
            working, marker = _new_working_copy()
            # Made before the copy, so that its finalizer deletes a copy cut short.
            index = cls(
                str(working / DATA), collection, dim, server=False, owned=True, marker=marker
            )
            shutil.copytree(folder / DATA, working / DATA)
        index._open_existing()
        return index

    def save(self, folder: Path) -> None:
        settings = {"uri": self._uri if self._server else None, "collection": self._collection}
        if not self._server:
            self._release()  # Milvus Lite writes everything out when its database closes
            shutil.copytree(self._uri, folder / DATA, ignore=shutil.ignore_patterns("LOCK"))
        settings["dim"] = self._dim
        (folder / SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def close(self) -> None:
        """Close the client (for Lite, the in-process database) and delete a Lite working
        copy now rather than when garbage-collected. The backend cannot be used after."""
        self._finalizer()

    # ---------------------------------------------------------------------------- reading

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def count(self) -> int:
        rows = self._open().query(
            self._collection, filter="", output_fields=["count(*)"], consistency_level=STRONG
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
            consistency_level=STRONG,
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits[0]]

    def scores(self, query: np.ndarray, ids: Collection[int]) -> dict[int, float]:
        if not ids:
            return {}
        rows = self._open().query(
            self._collection,
            ids=[int(i) for i in ids],
            output_fields=[ID, VECTOR],
            consistency_level=STRONG,
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
        client = self._open()
        for start in range(0, len(ids), INSERT_BATCH):
            rows = [
                {ID: int(chunk_id), VECTOR: vector}
                for chunk_id, vector in zip(
                    ids[start : start + INSERT_BATCH],
                    vectors[start : start + INSERT_BATCH],
                    strict=True,
                )
            ]
            client.insert(self._collection, rows)
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
            from pymilvus import MilvusClient

            client = MilvusClient(uri=self._uri)
            if client.has_collection(self._collection):  # Lite opens collections released
                client.load_collection(self._collection)
            self._state["client"] = client
        return self._state["client"]

    def _create_collection(self) -> None:
        from pymilvus import DataType

        client = self._open()
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=self._dim)
        client.create_collection(
            self._collection,
            schema=schema,
            index_params=self._index_params("FLAT"),
            consistency_level=STRONG,
        )
        self._kind = "FLAT"

    def _open_existing(self) -> None:
        """Check the collection is there with vectors of the recorded size, and load it.

        Milvus's own errors become ValueError, which the index turns into "rebuild"."""
        from pymilvus import MilvusException

        try:
            client = self._open()
            if not client.has_collection(self._collection):
                raise ValueError(f"Milvus holds no collection {self._collection!r} at {self._uri}")
            fields = client.describe_collection(self._collection)["fields"]
            dims = [f.get("params", {}).get("dim") for f in fields if f["name"] == VECTOR]
            if dims != [self._dim]:
                raise ValueError(
                    f"collection {self._collection!r} does not hold {self._dim}-dim vectors"
                )
        except MilvusException as error:
            raise ValueError(f"Milvus cannot open {self._collection!r}: {error.message}") from error

    def _index_kind(self) -> str:
        if self._kind is None:
            self._kind = self._open().describe_index(self._collection, VECTOR)["index_type"]
        return self._kind

    def _index_params(self, kind: str):
        params = self._open().prepare_index_params()
        extra = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if kind == "HNSW" else {}
        params.add_index(field_name=VECTOR, index_type=kind, metric_type="IP", params=extra)
        return params

    def _fit(self) -> None:
        """Make the index the kind a fresh build of this many vectors would have."""
        wanted = "HNSW" if self.count >= HNSW_THRESHOLD else "FLAT"
        if wanted == self._index_kind():
            return
        logger.info("Milvus collection %s: index %s → %s", self._collection, self._kind, wanted)
        client = self._open()
        client.release_collection(self._collection)
        client.drop_index(self._collection, VECTOR)
        client.create_index(self._collection, self._index_params(wanted))
        client.load_collection(self._collection)
        self._kind = wanted

    def _make_own(self) -> None:
        """On a server, copy a loaded collection into a new one before the first change, so
        the collection the served index reads is never changed. (A Lite index already works
        on its own copy.)"""
        if self._owned:
            return
        old, client = self._collection, self._open()
        self._collection = _new_collection_name()
        logger.info("copying Milvus collection %s to %s for an update", old, self._collection)
        kind = self._index_kind()
        self._create_collection()
        iterator = client.query_iterator(old, batch_size=INSERT_BATCH, output_fields=[ID, VECTOR])
        while batch := iterator.next():
            client.insert(self._collection, batch)
        iterator.close()
        self._owned = True
        if kind != "FLAT":
            self._fit()
        logger.warning(
            "Milvus collection %s is replaced by %s: drop it once the update is in",
            old,
            self._collection,
        )

    def _release(self) -> None:
        """Close the client and, for Lite, the in-process database, writing it all out."""
        _release(self._state, self._uri, self._server)


def _release(state: dict[str, Any], uri: str, server: bool) -> None:
    if state["client"] is not None:
        state["client"].close()
        state["client"] = None
    if not server:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def _close(state: dict[str, Any], uri: str, server: bool, marker: int | None, pid: int) -> None:
    """On `close`, when the backend is garbage-collected, or at exit: close it, and delete a
    Lite working copy, which nothing else reads."""
    if os.getpid() != pid:  # a forked child: the copy and the database are its parent's
        return
    try:
        _release(state, uri, server)
    except Exception:  # at exit, gRPC may be gone already; the copy is deleted anyway
        logger.debug("closing Milvus at %s failed", uri, exc_info=True)
    if not server:
        _remove_copy(Path(uri).parent)
    if marker is not None:
        os.close(marker)  # frees the lock, after the copy is gone


def _new_working_copy() -> tuple[Path, int]:
    """A new private folder for a Lite working copy, and its marker: the OWNER file in it,
    open and locked by this process until `_close`. The system frees the lock when the
    process dies, however that happens, which tells `_remove_dead_copies` the copy is dead.

    The marker is locked before it gets its name, so an OWNER file whose lock is free is
    never a live process's. (A process killed in the few system calls before that leaves a
    folder with no data and no OWNER, which is never deleted: it may be a live one's.)"""
    folder = Path(tempfile.mkdtemp(prefix=WORKING_PREFIX, dir=tempfile.gettempdir()))
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        marker = os.open(folder / OWNER_PENDING, flags, 0o600)
        fcntl.flock(marker, fcntl.LOCK_EX)
        os.write(marker, f"{os.getpid()}\n".encode())  # for a person looking, not for us
        os.rename(folder / OWNER_PENDING, folder / OWNER)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, marker


def _remove_dead_copies() -> None:
    """Delete the working copies that processes which died without closing them left.

    Only a folder this backend made is deleted: in the temp dir, its name starting with
    WORKING_PREFIX, a folder (not a symlink) of this user, holding an OWNER file (not a
    symlink) whose lock is free. A live process holds its copy's lock, so its copy is never
    touched."""
    temp = Path(tempfile.gettempdir())
    try:
        names = [name for name in os.listdir(temp) if name.startswith(WORKING_PREFIX)]
    except OSError:  # no temp dir to read: nothing of ours is there
        return
    for name in names:
        folder = temp / name
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            marker = os.open(folder / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # gone, or no marker: not a working copy, or one being made
            continue
        try:
            fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: its process is alive
            continue
        else:
            logger.warning("removing %s, a Milvus working copy left by a dead process", folder)
            _remove_copy(folder)
        finally:
            os.close(marker)


def _remove_copy(folder: Path) -> None:
    """Delete a working copy, the database before its marker, so that a deletion cut short
    (the process killed) leaves a marked folder, which the next start deletes."""
    shutil.rmtree(folder / DATA, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _new_collection_name() -> str:
    return f"zh_retriever_{uuid.uuid4().hex[:16]}"


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)
