"""A Milvus collection's life: made (its schema and index kind), checked when an index is
loaded, copied for an update. Each build writes its own collection (`zh_retriever_<random>`
on a server): an update copies the previous collection into a new one before changing
anything, so the index being served is never changed under it. Which index owns a server's
collection, and when it is dropped: retriever.backends.milvus_owners.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from retriever.backends.milvus_settings import STRONG, connect

logger = logging.getLogger(__name__)

ID, VECTOR = "id", "vector"  # the fields: the chunk id (primary key) and its vector
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40  # FAISS's default, so both engines build the same kind of graph
INSERT_BATCH = 5_000  # rows per insert call: keeps each gRPC message well under its limit
SETTINGS = "milvus.json"  # {"uri": server URI or null for Lite, "collection", "dim", ...}
COLLECTION_PREFIX = "zh_retriever_"  # every server collection this backend makes
# The Lite client's channel sends no keepalive pings (gRPC's "never"). pymilvus's default, a
# ping every 10 s, made Milvus Lite's in-process server answer GOAWAY ("too_many_pings") when
# the pings piled up during a create_index of minutes (issue 23); a connection to a server
# in this same process has nothing to keep alive.
LITE_CHANNEL = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}
INDEX_EXISTS = 35  # Milvus Lite's code for "index already exists" (IndexAlreadyExists)


def create(client: Any, name: str, dim: int, properties: dict[str, str]) -> None:
    """Make collection `name` for `dim`-dim vectors, with a FLAT index and `properties`
    (a server collection's builder: milvus_owners)."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
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
