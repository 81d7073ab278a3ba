"""Lexical backend "milvus": BM25 by Milvus's own BM25 function, in Milvus Lite in the index
folder (`lexical/milvus.db`), or on a Milvus server (2.5 or later, or milvus-lite's server)
when `configured(MilvusSettings(uri=...))` says so, as for the dense Milvus backend: so that
both sides of an index can live in Milvus.

The collection: the chunk id (primary key), a VARCHAR field with an analyzer, a BM25
Function from it into a SPARSE_FLOAT_VECTOR field, and a SPARSE_INVERTED_INDEX on that with
metric BM25 and the index's k1 and b. Milvus cuts the text, keeps the collection's statistics
(passages, mean length, each word's passages) and scores.

What the text field holds, and so what Milvus counts as words, is retriever.backends.
milvus_text's: by default the project's own jieba words (as bm25s's), spelled so that
Milvus's standard tokenizer keeps each whole; Milvus's own jieba analyzer is the other
choice, measured below it (docs/milvus.md).

Scores: fusion (retriever.fusion) uses a candidate's BM25 score only over the best
candidate's (and the best's lead over the runner-up, also over the best), so any positive
scale that keeps BM25's proportions fuses alike, and "bm25" mode sorts by it. Milvus's BM25
is bm25s's formula (Lucene's idf, k1, b) times (k1 + 1), the classic numerator that bm25s's
Lucene variant drops: a constant that fusion's ratios cancel, divided out all the same so
that a hit's `bm25_score` reads as bm25s's (over the "words" analysis, equal to 1e-4). And
milvus-lite 3.2.2 returns it as a negative distance (best first, most negative) where Milvus
2.5 servers return it positive, so the score is its absolute value (BM25 is never negative).

`coverage` needs each word's number of passages, which Milvus does not expose (a TEXT_MATCH
count took 0.5 s a word at 10k passages): they are counted once per load from the stored
texts, when first asked, and kept up to date by `add` and `delete`.

Updates: a loaded Lite index works on a private copy of `milvus.db` (retriever.backends.
milvus_copies, as the dense Milvus backend). Milvus Lite scores each segment with its own
BM25 statistics (passages, mean length, each word's passages), and every passage of a loaded
index is in a sealed segment: passages an update adds go to a new segment, scored by the
statistics of those few alone, and a passage deleted from a sealed one still counts in its
segment's (compacting the collection changed neither). So `save` rebuilds the collection, one
segment of the passages it holds, once the passages added to or deleted from a saved one pass
REBUILD_SHARE of them (0: after every update), and the saved index scores as a fresh build
of the same passages would. docs/milvus.md measures the drift without it, and its cost.

On a server, as with the dense backend (retriever.backends.milvus_collections), each build
writes its own collection, which the index owns (milvus_owners.ServerCollections), and
`lexical/milvus.json` names the server (never the token). A loaded index's first change
copies its collection into a new one, one segment being written, so that the saved index
again scores as a fresh build. `create` refuses a server older than 2.5 (no BM25 function).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
import weakref
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from pymilvus import MilvusException

from retriever.backends import milvus_collections, milvus_copies, milvus_owners, milvus_text
from retriever.backends.base import LexicalBackend, Scored
from retriever.backends.milvus_collections import ID, SETTINGS
from retriever.backends.milvus_copies import DATA
from retriever.backends.milvus_settings import (
    STRONG,
    MilvusSettings,
    current_settings,
    saved_server,
)
from retriever.backends.milvus_text import TEXT
from retriever.config import LexicalSettings
from retriever.store import LEXICAL_FOLDER

logger = logging.getLogger(__name__)

COLLECTION = "passages"  # a new index's collection; a rebuilt one is "passages_<random>"
ANALYSIS = "words"  # what new indexes store: "words" or "jieba" (retriever.backends.milvus_text)
MAX_LIMIT = milvus_text.MAX_LIMIT
# `save` rebuilds the collection once the passages added or deleted since it was first saved
# pass this share of those it holds (0: after every update; docs/milvus.md measures it).
REBUILD_SHARE = 0.0


class MilvusLexical(milvus_owners.ServerCollections, LexicalBackend):
    name = "milvus"
    _mark = milvus_text.BUILDER

    def __init__(
        self,
        settings: LexicalSettings,
        uri: str,
        analysis: str,
        marker: int | None,
        collection: str = COLLECTION,
        changed: int | None = None,
        server: MilvusSettings | None = None,
    ) -> None:
        if analysis not in milvus_text.ANALYZERS:
            raise ValueError(f"unknown Milvus text analysis {analysis!r}")
        self.settings = settings
        self._uri = uri  # the working copy's .db folder, or the server's URI
        self._server = server  # None: Milvus Lite
        self._owned = True  # False for a server collection that a saved index reads
        self._retired: str | None = None  # on a server: the replaced index's collection
        self._analysis = analysis
        self._collection = collection
        # Passages added or deleted since the collection was first saved; None before then
        # (while all are in the one segment being written, whose statistics are kept whole).
        self._changed = changed
        self._frequencies: Counter[str] | None = None  # passages holding each word, once read
        self._last: tuple[str, dict[int, float]] | None = None  # scores of the last question
        self._state: dict[str, Any] = {"client": None}
        self._finalizer = weakref.finalize(
            self, milvus_copies.close, self._state, uri, bool(server), marker, os.getpid()
        )

    # ------------------------------------------------------------------- create, load, save

    @classmethod
    def create(cls, settings: LexicalSettings, analysis: str = "") -> Self:
        analysis, server = analysis or ANALYSIS, current_settings()
        milvus_copies.remove_dead_copies()
        if server.uri:
            name = milvus_collections.new_collection_name()
            index = cls(settings, server.uri, analysis, None, name, server=server)
            client = index._open()
            milvus_text.check_bm25(client.get_server_version(), server.uri)
            milvus_owners.drop_dead_builds(client, milvus_text.BUILDER, LEXICAL_FOLDER)
        else:
            folder, marker = milvus_copies.new_working_copy()
            index = cls(settings, str(folder / DATA), analysis, marker)
        index._create_collection()
        return index

    @classmethod
    def load(cls, folder: Path, settings: LexicalSettings) -> Self:
        milvus_copies.remove_dead_copies()
        record = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        collection, changed = record["collection"], int(record.get("changed", 0))
        if uri := record.get("uri"):
            server = saved_server(record)
            index = cls(settings, uri, record["analysis"], None, collection, changed, server)
            index._owned = False
            where = f"Milvus at {uri}"
        else:
            if not (folder / DATA).is_dir():
                raise ValueError(f"{folder / DATA} is missing")
            working, marker = milvus_copies.new_working_copy()
            index = cls(
                settings, str(working / DATA), record["analysis"], marker, collection, changed
            )
            shutil.copytree(folder / DATA, working / DATA)
            where = str(folder / DATA)
        try:
            if not index._open().has_collection(collection):
                raise ValueError(f"{where} holds no collection {collection!r}")
        except MilvusException as error:  # as ValueError, which the index says to rebuild
            raise ValueError(f"{where} cannot open {collection!r}: {error.message}") from error
        return index

    def save(self, folder: Path) -> None:
        if self._changed and self._changed > REBUILD_SHARE * self.count:
            self.rebuild()
        self._changed = self._changed or 0  # sealed from here on
        record: dict[str, Any] = {"uri": self._server.uri if self._server else None}
        if self._server:  # seal the writes and read them back Strong once (as milvus_dense)
            self._open().flush(self._collection)
            self._count(STRONG)
            record.update(database=self._server.database, consistency=self._server.consistency)
            record["retired"] = self._retired
        else:
            milvus_copies.release(self._state, self._uri, server=False)  # written out on close
            shutil.copytree(self._uri, folder / DATA, ignore=shutil.ignore_patterns("LOCK"))
        record.update(collection=self._collection, analysis=self._analysis, changed=self._changed)
        (folder / SETTINGS).write_text(json.dumps(record, indent=2), encoding="utf-8")

    def close(self) -> None:
        """Close the in-process database and delete the working copy now."""
        self._finalizer()

    def rebuild(self) -> None:
        """Copy the passages into a new collection, one segment, and drop the old one (on a
        server, only if it is this build's), so that BM25's statistics are those of all the
        passages held (module docstring)."""
        client, old = self._open(), self._collection
        if self._server:
            milvus_owners.drop_dead_builds(client, milvus_text.BUILDER, LEXICAL_FOLDER)
            new = milvus_collections.new_collection_name()
        else:
            new = f"{COLLECTION}_{uuid.uuid4().hex[:12]}"
        self._collection = new
        self._create_collection()
        milvus_collections.copy_rows(client, old, new, (ID, TEXT))
        if self._owned:
            client.drop_collection(old)
        self._owned, self._changed, self._last = True, None, None

    # ---------------------------------------------------------------------------- reading

    @property
    def count(self) -> int:
        return self._count(self._level())

    def _count(self, level: str) -> int:
        rows = self._open().query(
            self._collection, filter="", output_fields=["count(*)"], consistency_level=level
        )
        return int(rows[0]["count(*)"])

    def scores(self, question: str, ids: Collection[int]) -> dict[int, float]:
        held = self._held(ids)
        if not held:
            return {}
        found = self._all_scores(question)
        return {i: found.get(i, 0.0) for i in held}

    def coverage(self, words: Collection[str], ids: Collection[int]) -> dict[int, float]:
        texts = self._texts(ids)
        if not texts or not words:
            return dict.fromkeys(texts, 0.0)
        # As bm25s_lexical's: each word weighs its BM25 inverse document frequency.
        # Words are compared as the field holds them (milvus_text.key), nothing decoded.
        frequencies, passages = self._document_frequencies(), self.count
        keys = {milvus_text.key(word, self._analysis) for word in words}
        weights = {key: milvus_text.idf(passages, frequencies.get(key, 0)) for key in keys}
        total = sum(weights.values())
        shares = {}
        for i, text in texts.items():
            held = self._keys_of(text)
            shares[i] = sum(w for key, w in weights.items() if key in held) / total
        return shares

    # ---------------------------------------------------------------------------- changes

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if not len(ids):
            return
        stored = [self._stored(text) for text in texts]
        self._make_own()
        milvus_collections.insert_rows(self._open(), self._collection, ids, TEXT, stored)
        if self._frequencies is not None:
            self._count_words(stored, +1)
        if self._changed is not None:
            self._changed += len(ids)
        self._last = None

    def delete(self, ids: Collection[int]) -> None:
        if not ids:
            return
        if self._frequencies is not None:
            self._count_words(self._texts(ids).values(), -1)
        held = self._held(ids)
        if held:
            self._make_own()
            self._open().delete(self._collection, ids=held)
        if self._changed is not None:
            self._changed += len(held)
        self._last = None

    # ----------------------------------------------------------------------------- inside

    def _on_server(self) -> tuple[str, str] | None:
        return (self._server.uri, self._server.database) if self._server else None

    def _open(self):
        """The client of the working copy (its in-process server started when first used)."""
        if not self._finalizer.alive:  # Lite would make a new, empty database in its place
            raise ValueError("this Milvus index is closed")
        if self._state["client"] is None:
            server = (self._server.token, self._server.database) if self._server else None
            self._state["client"] = milvus_collections.open_client(
                self._uri, self._collection, server
            )
        return self._state["client"]

    def _create_collection(self) -> None:
        milvus_text.create_collection(
            self._open(), self._collection, self._analysis, self.settings, server=bool(self._server)
        )

    def _level(self) -> str:
        """Reads of a loaded server collection use the index's consistency; a build's, and
        Lite's, Strong (so that a build reads what it wrote)."""
        return STRONG if self._owned or self._server is None else self._server.consistency

    def _make_own(self) -> None:
        """On a server, copy a loaded collection into a new one before the first change, so
        the collection the served index reads is never changed (Lite works on a copy)."""
        if not self._owned:
            logger.info("copying Milvus collection %s for an update", self._collection)
            self.rebuild()

    def _all_scores(self, question: str) -> dict[int, float]:
        """Every matching passage's score (the best MAX_LIMIT), the last question's kept.

        Not a search filtered to the given ids: milvus-lite 3.2.2 then takes the statistics
        (passages, each word's passages) of the filtered ones only, and scores differ."""
        if self._last is None or self._last[0] != question:
            self._last = (question, dict(self.search(question, MAX_LIMIT)))
        return self._last[1]

    def search(self, question: str, k: int) -> list[Scored]:
        query = self._query(question)
        if not query or k <= 0:
            return []
        hits = milvus_text.search(self._open(), self._collection, query, k, self._level())
        scale = 1.0 + self.settings.k1  # Milvus's factor that bm25s's Lucene variant drops
        found = [(i, distance / scale) for i, distance in hits]
        return sorted((hit for hit in found if hit[1] > 0), key=lambda hit: -hit[1])

    def _held(self, ids: Collection[int]) -> list[int]:
        return list(self._texts(ids, with_text=False))

    def _texts(self, ids: Collection[int], with_text: bool = True) -> dict[int, str]:
        if not ids:
            return {}
        fields = [ID, TEXT] if with_text else [ID]
        rows = self._open().query(
            self._collection, ids=[int(i) for i in ids], output_fields=fields,
            consistency_level=self._level(),
        )  # fmt: skip
        return {int(row[ID]): row.get(TEXT, "") for row in rows}

    def _stored(self, text: str) -> str:
        return milvus_text.stored(text, self._analysis, self.settings.search_mode)

    def _query(self, question: str) -> str:
        return milvus_text.query(question, self._analysis, self.settings.search_mode)

    def _keys_of(self, stored: str) -> set[str]:
        return milvus_text.keys_of(stored, self._analysis, self.settings.search_mode)

    def _document_frequencies(self) -> Counter[str]:
        """How many passages hold each word (by its key): counted from every stored text once."""
        if self._frequencies is None:
            self._frequencies = Counter()
            for batch in milvus_collections.all_rows(self._open(), self._collection, [TEXT]):
                self._count_words((row[TEXT] for row in batch), +1)
        return self._frequencies

    def _count_words(self, stored: Iterable[str], sign: int) -> None:
        assert self._frequencies is not None
        for text in stored:
            for key in self._keys_of(text):
                self._frequencies[key] += sign
