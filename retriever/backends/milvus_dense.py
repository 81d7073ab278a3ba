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
- **A Milvus server** (standalone or distributed): `MilvusSettings(uri=...)`, passed in with
  `configured(settings)` around the build (the CLI does it for `build --backend milvus
  --milvus-uri http://host:19530`). The data lives on the server and `dense/milvus.json`
  records how to reach it (URI, database, collection, consistency; never the token), and
  the manifest lists the collection (`Index.save`). Each build writes its own collection
  (`zh_retriever_<random>`): an update copies the previous collection into a new one
  before changing anything, so the index being served is never changed under it and a
  crash mid-update leaves it whole. The index owns its collections: a collection being
  built carries its builder (host, pid, start time) as a property, and the index folder it
  is saved for. The replaced index's collection is kept for one more build (it is
  "retired"), so that a process still serving the replaced index (the page until it has
  loaded the new one, or while a CLI build swaps the folder under it) goes on answering;
  once the new index is swapped in, the replaced index's collections that the new one does
  not own are dropped, if they belong to this folder (never another index's, nor a copied
  folder's original). So an index owns at most two collections. A collection whose
  builder died before its index was swapped in (a killed build) is dropped by the next
  build on that host.
  Reads use `consistency` (Bounded by default): they do not wait for the server's time
  tick (about 200 ms a read under Strong on Milvus 2.3); `save` flushes the build's writes
  and reads the count back Strong once, so the index is not declared ready before a read
  sees all of it. docs/milvus.md has the figures and what was tested on a real server.

The index kind follows the count as FAISS's does (faiss_dense.py): exact search (FLAT)
below HNSW_THRESHOLD vectors, HNSW (M=32) from there on; metric IP on unit vectors, which is
the cosine. `scores` fetches the given ids' vectors and takes their inner products here:
exact cosines, whatever the index kind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import uuid
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from retriever.backends.base import DenseBackend, Scored

logger = logging.getLogger(__name__)

DATA = "milvus.db"  # Milvus Lite's data folder (its name must end in .db)
SETTINGS = "milvus.json"  # {"uri": server URI or null for Lite, "collection", "dim", ...}
ID, VECTOR = "id", "vector"
HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40  # FAISS's default, so both engines build the same kind of graph
HNSW_EF_SEARCH = 128
INSERT_BATCH = 5_000  # rows per insert call: keeps each gRPC message well under its limit
MAX_LIMIT = 16_384  # the most hits Milvus returns for one search
STRONG = "Strong"
CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")
WORKING_PREFIX = "retriever-milvus-"  # a Lite working copy's folder name in the temp dir
OWNER = "owner.lock"  # in a working copy: locked by the process using it while it lives
OWNER_PENDING = "owner.lock.new"  # the marker's name until it is locked
COLLECTION_PREFIX = "zh_retriever_"  # every server collection this backend makes
# Collection properties on a server: who is building it (until its index is swapped in),
# and the index folder it was saved for.
BUILDER = "zh_retriever.builder"  # "host pid start-time"
INDEX_FOLDER = "zh_retriever.index"  # the index folder's absolute path


@dataclass(frozen=True)
class MilvusSettings:
    """Where a new Milvus index goes. `uri` None: Milvus Lite in the index folder; else a
    server's URI (http://host:19530). `token` ("user:password" or an API key) is never
    saved; `database` "" is the server's default one; `consistency` is the level reads use
    (Bounded or Session do not wait for the server's time tick; Strong does)."""

    uri: str | None = None
    token: str = field(default="", repr=False)
    database: str = ""
    consistency: str = "Bounded"

    def __post_init__(self) -> None:
        if self.consistency not in CONSISTENCY_LEVELS:
            raise ValueError(
                f"Milvus consistency must be one of {', '.join(CONSISTENCY_LEVELS)}, "
                f"got {self.consistency!r}"
            )
        if self.uri is not None and not self.uri.startswith(("http://", "https://", "tcp://")):
            raise ValueError(
                f"a Milvus server's URI starts with http://, https:// or tcp://, got {self.uri!r}"
            )


_CONFIGURED: ContextVar[MilvusSettings | None] = ContextVar("milvus_settings", default=None)


def current_settings() -> MilvusSettings:
    """The settings `configured` gave this context; the defaults (Milvus Lite) outside it."""
    return _CONFIGURED.get() or MilvusSettings()


@contextmanager
def configured(settings: MilvusSettings) -> Iterator[MilvusSettings]:
    """Within the block, new Milvus indexes go where `settings` say, and loads of an index on
    `settings.uri` use its token. (The engine's build calls `create(dim)` with no room for
    options, so they come in this way: a context variable, not the process environment.)"""
    token = _CONFIGURED.set(settings)
    try:
        yield settings
    finally:
        _CONFIGURED.reset(token)


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
            self, _close, self._state, uri, server, marker, os.getpid()
        )

    # ------------------------------------------------------------------- create, load, save

    @classmethod
    def create(cls, dim: int) -> Self:
        _remove_dead_copies()
        settings = current_settings()
        if settings.uri:
            index = cls(
                settings.uri,
                _new_collection_name(),
                dim,
                server=True,
                owned=True,
                settings=settings,
            )
            index._drop_dead_builds()
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
            configured_now = current_settings()
            server = MilvusSettings(
                uri=server_uri,
                token=configured_now.token if configured_now.uri == server_uri else "",
                database=settings.get("database", ""),
                consistency=settings.get("consistency", STRONG),
            )
            index = cls(server_uri, collection, dim, server=True, owned=False, settings=server)
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
            self._release()  # Milvus Lite writes everything out when its database closes
            shutil.copytree(self._uri, folder / DATA, ignore=shutil.ignore_patterns("LOCK"))
        settings["dim"] = self._dim
        (folder / SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def close(self) -> None:
        """Close the client (for Lite, the in-process database) and delete a Lite working
        copy now rather than when garbage-collected. The backend cannot be used after."""
        self._finalizer()

    # ------------------------------------------------- the collections a server index owns

    def collections(self) -> tuple[str, ...]:
        """The collection it reads and the one it retired (the replaced index's), which is
        kept until the next build, for the processes still serving the replaced index."""
        if not self._server:
            return ()
        return tuple(name for name in (self._collection, self._retired) if name)

    def claim(self, index_folder: Path, replaced: dict[str, Any] | None) -> None:
        """Mark the collection as the index folder's before it is saved there, so that the
        folder's later builds may drop it once replaced; and note the replaced index's
        collection (on this server) as retired."""
        if not self._server:
            return
        if self._owned:
            self._open().alter_collection_properties(
                self._collection, properties={INDEX_FOLDER: str(index_folder.resolve())}
            )
        same_server = replaced is not None and (
            replaced.get("uri"),
            replaced.get("database", ""),
        ) == (self._uri, self._settings.database)
        if not same_server or replaced is None:
            return
        if replaced.get("collection") == self._collection:  # saved again, unchanged
            self._retired = replaced.get("retired")
        else:
            self._retired = replaced.get("collection")

    def installed(self) -> None:
        """The index is swapped in: the collection is no longer a build's."""
        if self._server and self._owned:
            try:  # emptied, not dropped: Milvus 2.3 cannot drop a collection property
                self._open().alter_collection_properties(self._collection, properties={BUILDER: ""})
            except Exception:  # it stays marked; a sweep still keeps it (its folder names it)
                logger.warning("cannot unmark Milvus collection %s", self._collection)

    @classmethod
    def outside(cls, folder: Path) -> dict[str, Any] | None:
        """What the index saved in dense folder `folder` keeps on a server, or None."""
        try:
            settings = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(settings, dict) or not settings.get("uri"):
            return None
        return settings

    @classmethod
    def release(cls, record: dict[str, Any], index_folder: Path, keep: Collection[str]) -> None:
        """After the index in `index_folder` was replaced: drop the replaced index's
        collection (`record`, from `outside`) unless the new index uses it or it is not
        this folder's (a copied index folder names its original's collection)."""
        names = [record.get("collection"), record.get("retired")]
        gone = [name for name in names if isinstance(name, str) and name not in keep]
        if not gone:
            return
        configured_now = current_settings()
        client = _client(
            record["uri"],
            configured_now.token if configured_now.uri == record["uri"] else "",
            record.get("database", ""),
        )
        try:
            for collection in gone:
                _drop_if_owned(client, collection, index_folder)
        finally:
            client.close()

    def _drop_dead_builds(self) -> None:
        """Drop the collections that builds on this host left when they died before their
        index was swapped in: marked with a builder that is not running, and not named by
        the index folder they were saved for."""
        client = self._open()
        host = socket.gethostname()
        for name in client.list_collections():
            if not name.startswith(COLLECTION_PREFIX):
                continue
            try:
                properties = _properties(client, name)
            except Exception:  # dropped meanwhile
                continue
            builder = properties.get(BUILDER, "").split()
            if len(builder) != 3 or builder[0] != host or _process_alive(builder[1], builder[2]):
                continue
            folder = properties.get(INDEX_FOLDER)
            if folder and _names_collection(Path(folder), name):
                continue  # swapped in, then the builder died before unmarking it
            logger.warning("dropping Milvus collection %s, left by a build that died", name)
            client.drop_collection(name)

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
            if self._server:
                client = _client(self._uri, self._settings.token, self._settings.database)
            else:
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
        # Marked as this process's build from the start, so a crash at any point leaves a
        # collection the next build can tell is dead.
        properties = {BUILDER: _this_process()} if self._server else {}
        client.create_collection(
            self._collection,
            schema=schema,
            index_params=self._index_params("FLAT"),
            consistency_level=STRONG,
            properties=properties,
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
            raise ValueError(
                f"Milvus at {self._uri} cannot open {self._collection!r}: {error.message}"
            ) from error

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

    def _index_params(self, kind: str):
        params = self._open().prepare_index_params()
        extra = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if kind == "HNSW" else {}
        params.add_index(field_name=VECTOR, index_type=kind, metric_type="IP", params=extra)
        return params

    def _fit(self) -> None:
        """Make the index the kind a fresh build of this many vectors would have."""
        wanted = "HNSW" if self._count(STRONG) >= HNSW_THRESHOLD else "FLAT"
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
        on its own copy.) The copy gets the index kind a fresh build of its size would have."""
        if self._owned:
            return
        self._index_kind()  # the loaded collection's kind, read before the name changes
        old, client = self._collection, self._open()
        self._drop_dead_builds()
        self._collection = _new_collection_name()
        logger.info("copying Milvus collection %s to %s for an update", old, self._collection)
        self._create_collection()  # FLAT; _fit below makes it HNSW if its size asks
        self._owned = True
        iterator = client.query_iterator(
            old, batch_size=INSERT_BATCH, output_fields=[ID, VECTOR], consistency_level=STRONG
        )
        try:
            while batch := iterator.next():
                client.insert(self._collection, batch)
        finally:
            iterator.close()
        self._fit()

    def _release(self) -> None:
        """Close the client and, for Lite, the in-process database, writing it all out."""
        _release(self._state, self._uri, self._server)


def _drop_if_owned(client, collection: str, index_folder: Path) -> None:
    try:
        if not client.has_collection(collection):
            return
        owner = _properties(client, collection).get(INDEX_FOLDER)
        if owner != str(index_folder.resolve()):
            logger.info("keeping Milvus collection %s: it is %s's", collection, owner)
            return
        logger.info("dropping Milvus collection %s, no longer used by %s", collection, owner)
        client.drop_collection(collection)
    except Exception as error:  # the new index is in; a leftover is only a leftover
        logger.warning("cannot drop replaced Milvus collection %s: %s", collection, error)


def _client(uri: str, token: str, database: str):
    from pymilvus import MilvusClient

    options: dict[str, Any] = {"uri": uri}
    if token:
        options["token"] = token
    if database:
        options["db_name"] = database
    return MilvusClient(**options)


def _properties(client, collection: str) -> dict[str, str]:
    properties = client.describe_collection(collection).get("properties") or {}
    return {str(key): str(value) for key, value in dict(properties).items()}


def _this_process() -> str:
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid())}"


def _start_time(pid: int | str) -> str:
    """The process's start time in clock ticks after boot ("-" where /proc cannot say), so
    that a pid reused by another process is not taken for the builder."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat_line.rsplit(")", 1)[1].split()[19]


def _process_alive(pid: str, started: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except ValueError:
        return True  # not a pid we wrote: keep the collection
    return started == "-" or _start_time(pid) in (started, "-")


def _names_collection(index_folder: Path, collection: str) -> bool:
    record = MilvusDense.outside(index_folder / "dense")
    return record is not None and record.get("collection") == collection


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
