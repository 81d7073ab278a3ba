"""A Milvus collection's life: made (its schema and index kind), checked when an index is
loaded, copied for an update; and on a server, which index owns it and when it is dropped.

Each build writes its own collection (`zh_retriever_<random>`): an update copies the previous
collection into a new one before changing anything, so the index being served is never
changed under it and a crash mid-update leaves it whole. A collection being built carries its
builder (host, pid, start time) as a property, and the index folder it is saved for.
`dense/milvus.json` (SETTINGS) in the index folder names the collection the index reads.

The replaced index's collection is kept for one more build (it is "retired"), so that a
process still serving the replaced index (the page until it has loaded the new one, or while
a CLI build swaps the folder under it) goes on answering; once the new index is swapped in,
the replaced index's collections that the new one does not own are dropped, if they belong
to this folder (never another index's, nor a copied folder's original). So an index owns at
most two collections. A collection whose builder died before its index was swapped in (a
killed build) is dropped by the next build on that host.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from retriever.backends.milvus_settings import STRONG, connect, token_for

logger = logging.getLogger(__name__)

ID, VECTOR = "id", "vector"  # the fields: the chunk id (primary key) and its vector
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40  # FAISS's default, so both engines build the same kind of graph
INSERT_BATCH = 5_000  # rows per insert call: keeps each gRPC message well under its limit
SETTINGS = "milvus.json"  # {"uri": server URI or null for Lite, "collection", "dim", ...}
COLLECTION_PREFIX = "zh_retriever_"  # every server collection this backend makes
# Collection properties on a server: who is building it (until its index is swapped in),
# and the index folder it was saved for.
BUILDER = "zh_retriever.builder"  # "host pid start-time"
INDEX_FOLDER = "zh_retriever.index"  # the index folder's absolute path
# The Lite client's channel sends no keepalive pings (gRPC's "never"). pymilvus's default, a
# ping every 10 s, made Milvus Lite's in-process server answer GOAWAY ("too_many_pings") when
# the pings piled up during a create_index of minutes (issue 23); a connection to a server
# in this same process has nothing to keep alive.
LITE_CHANNEL = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}
INDEX_EXISTS = 35  # Milvus Lite's code for "index already exists" (IndexAlreadyExists)


def create(client: Any, name: str, dim: int, *, server: bool) -> None:
    """Make collection `name` for `dim`-dim vectors, with a FLAT index."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    # Marked as this process's build from the start, so a crash at any point leaves a
    # collection the next build can tell is dead.
    properties = {BUILDER: this_builder()} if server else {}
    client.create_collection(
        name,
        schema=schema,
        index_params=index_params(client, "FLAT"),
        consistency_level=STRONG,
        properties=properties,
    )


def index_params(client: Any, kind: str) -> Any:
    """The vector field's index: `kind` FLAT or HNSW, on inner products."""
    params = client.prepare_index_params()
    extra = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if kind == "HNSW" else {}
    params.add_index(field_name=VECTOR, index_type=kind, metric_type="IP", params=extra)
    return params


def make_index(client: Any, name: str, kind: str) -> None:
    """Give collection `name`'s vector field a `kind` index (it has none) and load it with
    the index built. pymilvus sends a call again when its connection drops; the second call
    of a create_index finds the first one's index, which is the one asked for: success, once
    `describe_index` shows it is. The load waits for the build: Milvus Lite builds under the
    collection's lock, which a load takes too, and a server's is waited for here."""
    from pymilvus import MilvusException

    try:
        client.create_index(name, index_params(client, kind))
    except MilvusException as error:
        if not _already_exists(error) or not _is_index(client.describe_index(name, VECTOR), kind):
            raise
        logger.warning(
            "Milvus collection %s: create_index was retried; its %s index is there", name, kind
        )
        _wait_built(client, name)
    client.load_collection(name)


def _already_exists(error: Exception) -> bool:
    message = str(getattr(error, "message", error)).lower()
    return getattr(error, "code", None) == INDEX_EXISTS or "already exist" in message


def _is_index(described: dict[str, Any] | None, kind: str) -> bool:
    """Whether `describe_index`'s answer is the index `index_params` makes for `kind` (the
    build parameters where it reports them: Milvus Lite 3.2 does not)."""
    if not described or (described.get("index_type"), described.get("metric_type")) != (kind, "IP"):
        return False
    wanted = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if kind == "HNSW" else {}
    reported = {**(described.get("params") or {}), **described}
    return all(str(reported[key]) == str(value) for key, value in wanted.items() if key in reported)


def _wait_built(client: Any, name: str, poll_s: float = 1.0) -> None:
    """Until `describe_index` says the vector index of collection `name` is built."""
    while (state := str(client.describe_index(name, VECTOR).get("state", ""))) != "Finished":
        if state == "Failed":
            raise RuntimeError(f"Milvus could not build the index of {name!r}")
        time.sleep(poll_s)


def check(open_client: Callable[[], Any], uri: str, name: str, dim: int) -> None:
    """Check that collection `name` is there with `dim`-dim vectors; `open_client` connects
    (and loads it). Milvus's own errors become ValueError, which the index turns into
    "rebuild"."""
    from pymilvus import MilvusException

    try:
        client = open_client()
        if not client.has_collection(name):
            raise ValueError(f"Milvus holds no collection {name!r} at {uri}")
        fields = client.describe_collection(name)["fields"]
        dims = [f.get("params", {}).get("dim") for f in fields if f["name"] == VECTOR]
        if dims != [dim]:
            raise ValueError(f"collection {name!r} does not hold {dim}-dim vectors")
    except MilvusException as error:
        raise ValueError(f"Milvus at {uri} cannot open {name!r}: {error.message}") from error


def open_client(uri: str, collection: str, server: tuple[str, str] | None = None) -> Any:
    """A client of `uri` with `collection` loaded if it is there: a server's, connected with
    `server`'s (token, database), or Lite's in-process one when `server` is None."""
    if server is not None:
        client = connect(uri, *server)
    else:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, grpc_options=LITE_CHANNEL)
    if client.has_collection(collection):  # Lite opens collections released
        client.load_collection(collection)
    return client


def insert_rows(
    client: Any, collection: str, ids: Sequence[int], field: str, values: Sequence[Any]
) -> None:
    """Insert the rows {ID: id, field: value}, INSERT_BATCH to a call."""
    for start in range(0, len(ids), INSERT_BATCH):
        end = start + INSERT_BATCH
        rows = [
            {ID: int(i), field: value}
            for i, value in zip(ids[start:end], values[start:end], strict=True)
        ]
        client.insert(collection, rows)


def all_rows(client: Any, collection: str, fields: Sequence[str]) -> Iterator[list[dict]]:
    """Every row of `collection` with `fields` only, INSERT_BATCH rows at a time."""
    iterator = client.query_iterator(
        collection, batch_size=INSERT_BATCH, output_fields=list(fields), consistency_level=STRONG
    )
    try:
        while batch := iterator.next():
            yield [{name: row[name] for name in fields} for row in batch]
    finally:
        iterator.close()


def copy_rows(client: Any, source: str, target: str, fields: Sequence[str] = (ID, VECTOR)) -> None:
    """Insert every row of collection `source` (its `fields`) into `target`."""
    for batch in all_rows(client, source, fields):
        client.insert(target, batch)


def new_collection_name() -> str:
    return f"{COLLECTION_PREFIX}{uuid.uuid4().hex[:16]}"


def this_builder() -> str:
    """This process, as a collection's BUILDER property names it."""
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid())}"


def server_record(dense_folder: Path) -> dict[str, Any] | None:
    """What the index saved in `dense_folder` keeps on a server (its SETTINGS), or None."""
    try:
        settings = json.loads((dense_folder / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(settings, dict) or not settings.get("uri"):
        return None
    return settings


def retired_by(replaced: dict[str, Any], collection: str) -> str | None:
    """The collection that a new index reading `collection` retires, when it replaces the
    index `replaced` describes on the same server: the replaced index's collection, or the
    one that index retired if it is saved again unchanged."""
    if replaced.get("collection") == collection:
        return replaced.get("retired")
    return replaced.get("collection")


def mark_index_folder(client: Any, name: str, index_folder: Path) -> None:
    """Mark collection `name` as the index folder's, so that the folder's later builds may
    drop it once replaced."""
    client.alter_collection_properties(name, properties={INDEX_FOLDER: str(index_folder.resolve())})


def unmark_builder(open_client: Callable[[], Any], name: str) -> None:
    """Its index is swapped in: collection `name` is no longer a build's."""
    try:  # emptied, not dropped: Milvus 2.3 cannot drop a collection property
        open_client().alter_collection_properties(name, properties={BUILDER: ""})
    except Exception:  # it stays marked; a sweep still keeps it (its folder names it)
        logger.warning("cannot unmark Milvus collection %s", name)


def release(record: dict[str, Any], index_folder: Path, keep: Collection[str]) -> None:
    """After the index in `index_folder` was replaced: drop the replaced index's collections
    (`record`, from `server_record`) unless the new index uses them (`keep`) or they are not
    this folder's (a copied index folder names its original's collection)."""
    names = [record.get("collection"), record.get("retired")]
    gone = [name for name in names if isinstance(name, str) and name not in keep]
    if not gone:
        return
    client = connect(record["uri"], token_for(record["uri"]), record.get("database", ""))
    try:
        for collection in gone:
            _drop_if_owned(client, collection, index_folder)
    finally:
        client.close()


def drop_dead_builds(client: Any) -> None:
    """Drop the collections that builds on this host left when they died before their index
    was swapped in: marked with a builder that is not running, and not named by the index
    folder they were saved for."""
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


def _drop_if_owned(client: Any, collection: str, index_folder: Path) -> None:
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


def _properties(client: Any, collection: str) -> dict[str, str]:
    properties = client.describe_collection(collection).get("properties") or {}
    return {str(key): str(value) for key, value in dict(properties).items()}


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
    record = server_record(index_folder / "dense")
    return record is not None and record.get("collection") == collection
