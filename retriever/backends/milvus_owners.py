"""Which index owns a collection on a Milvus server, and when it is dropped.

Each build writes its own collection (`zh_retriever_<random>`): an update copies the previous
collection into a new one before changing anything, so the index being served is never
changed under it and a crash mid-update leaves it whole. A collection being built carries its
builder (host, pid, start time) as a property, and the index folder it is saved for.
`dense/milvus.json` (SETTINGS; `lexical/milvus.json` for the words) in the index folder
names the collection the index reads.

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
from collections.abc import Collection
from pathlib import Path
from typing import Any

from retriever.backends.milvus_collections import COLLECTION_PREFIX, SETTINGS
from retriever.backends.milvus_settings import connect, token_for

logger = logging.getLogger(__name__)

# Collection properties on a server: who is building it (until its index is swapped in),
# and the index folder it was saved for. The lexical side marks its builder under its own
# property (milvus_text.BUILDER).
BUILDER = "zh_retriever.builder"  # "host pid start-time"
INDEX_FOLDER = "zh_retriever.index"  # the index folder's absolute path


def building(mark: str = BUILDER) -> dict[str, str]:
    """A new server collection's properties: marked under `mark` as this process's build
    from the start, so a crash at any point leaves a collection the next build can tell is
    dead."""
    return {mark: this_builder()}


def this_builder() -> str:
    """This process, as a collection's BUILDER property names it."""
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid())}"


def server_record(side_folder: Path) -> dict[str, Any] | None:
    """What the index saved in `side_folder` (its dense or lexical folder) keeps on a server
    (its SETTINGS), or None."""
    try:
        settings = json.loads((side_folder / SETTINGS).read_text(encoding="utf-8"))
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


def unmark_builder(client: Any, name: str, mark: str = BUILDER) -> None:
    """Its index is swapped in: collection `name` is no longer a build's (its `mark`, the
    side's builder property, emptied)."""
    try:  # emptied, not dropped: Milvus 2.3 cannot drop a collection property
        client.alter_collection_properties(name, properties={mark: ""})
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


def drop_dead_builds(client: Any, mark: str = BUILDER, side: str = "dense") -> None:
    """Drop the collections that builds on this host left when they died before their index
    was swapped in: marked (under `mark`, the side's builder property) with a builder that
    is not running, and not named by the `side` folder of the index folder they were saved
    for."""
    host = socket.gethostname()
    for name in client.list_collections():
        if not name.startswith(COLLECTION_PREFIX):
            continue
        try:
            properties = _properties(client, name)
        except Exception:  # dropped meanwhile
            continue
        builder = properties.get(mark, "").split()
        if len(builder) != 3 or builder[0] != host or _process_alive(builder[1], builder[2]):
            continue
        folder = properties.get(INDEX_FOLDER)
        if folder and _names_collection(Path(folder) / side, name):
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


def _names_collection(side_folder: Path, collection: str) -> bool:
    record = server_record(side_folder)
    return record is not None and record.get("collection") == collection


class ServerCollections:
    """The collections an index side keeps on a server, which the index owns:
    retriever.index.Index.save calls these around the swap (retriever.backends.base
    KeptOutside). Mixed into MilvusDense and MilvusLexical, which give `_open()`, `_owned`
    (it made `_collection`), `_collection`, `_retired`, `_on_server()` (the server's
    (uri, database), or None for Milvus Lite in the folder) and `_mark` (their builder property)."""

    _owned: bool
    _collection: str
    _retired: str | None
    _mark: str

    def _open(self) -> Any: ...

    def _on_server(self) -> tuple[str, str] | None: ...

    def collections(self) -> tuple[str, ...]:
        """The collection it reads and the one it retired (the replaced index's), which is
        kept until the next build, for the processes still serving the replaced index."""
        if not self._on_server():
            return ()
        return tuple(name for name in (self._collection, self._retired) if name)

    def claim(self, index_folder: Path, replaced: dict[str, Any] | None) -> None:
        """Mark the collection as the index folder's before it is saved there, so that the
        folder's later builds may drop it once replaced; and note the replaced index's
        collection (on this server) as retired."""
        here = self._on_server()
        if not here:
            return
        if self._owned:
            mark_index_folder(self._open(), self._collection, index_folder)
        if replaced is not None and (replaced.get("uri"), replaced.get("database", "")) == here:
            self._retired = retired_by(replaced, self._collection)

    def installed(self) -> None:
        """The index is swapped in: the collection is no longer a build's."""
        if self._on_server() and self._owned:
            unmark_builder(self._open(), self._collection, self._mark)

    @classmethod
    def outside(cls, folder: Path) -> dict[str, Any] | None:
        """What the index saved in side folder `folder` keeps on a server, or None."""
        return server_record(folder)

    @classmethod
    def release(cls, record: dict[str, Any], index_folder: Path, keep: Collection[str]) -> None:
        """After the index in `index_folder` was replaced: drop the replaced index's
        collections that the new index does not use and that are this folder's."""
        release(record, index_folder, keep)
