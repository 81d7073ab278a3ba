"""Lexical backend "milvus": BM25 by Milvus's own BM25 function, in Milvus Lite in the index
folder (`lexical/milvus.db`), so that both sides of an index can live in Milvus.

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

Updates: a loaded index works on a private copy of `milvus.db` (retriever.backends.
milvus_copies, as the dense Milvus backend). Milvus Lite scores each segment with its own
BM25 statistics (passages, mean length, each word's passages), and every passage of a loaded
index is in a sealed segment: passages an update adds go to a new segment, scored by the
statistics of those few alone, and a passage deleted from a sealed one still counts in its
segment's (compacting the collection changed neither). So `save` rebuilds the collection, one
segment of the passages it holds, once the passages added to or deleted from a saved one pass
REBUILD_SHARE of them (0: after every update), and the saved index scores as a fresh build
of the same passages would. docs/milvus.md measures the drift without it, and its cost.

Milvus servers are not supported yet: the index's ownership of server collections
(retriever.index) covers the dense side only.
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

from retriever.backends import milvus_collections, milvus_copies, milvus_text
from retriever.backends.base import LexicalBackend, Scored
from retriever.backends.milvus_collections import ID, SETTINGS
from retriever.backends.milvus_copies import DATA
from retriever.backends.milvus_settings import STRONG, current_settings
from retriever.backends.milvus_text import SPARSE, TEXT
from retriever.config import LexicalSettings

logger = logging.getLogger(__name__)

COLLECTION = "passages"  # a new index's collection; a rebuilt one is "passages_<random>"
ANALYSIS = "words"  # what new indexes store: "words" or "jieba" (retriever.backends.milvus_text)
MAX_LIMIT = 16_384  # the most hits Milvus returns for one search
# `save` rebuilds the collection once the passages added or deleted since it was first saved
# pass this share of those it holds (0: after every update; docs/milvus.md measures it).
REBUILD_SHARE = 0.0


class MilvusLexical(LexicalBackend):
    name = "milvus"

    def __init__(
        self,
        settings: LexicalSettings,
        uri: str,
        analysis: str,
        marker: int | None,
        collection: str = COLLECTION,
        changed: int | None = None,
    ) -> None:
        if analysis not in milvus_text.ANALYZERS:
            raise ValueError(f"unknown Milvus text analysis {analysis!r}")
        self.settings = settings
        self._uri = uri  # the working copy's .db folder
        self._analysis = analysis
        self._collection = collection
        # Passages added or deleted since the collection was first saved; None before then
        # (while all are in the one segment being written, whose statistics are kept whole).
        self._changed = changed
        self._frequencies: Counter[str] | None = None  # passages holding each word, once read
        self._last: tuple[str, dict[int, float]] | None = None  # scores of the last question
        self._state: dict[str, Any] = {"client": None}
        self._finalizer = weakref.finalize(
            self, milvus_copies.close, self._state, uri, False, marker, os.getpid()
        )

    # ------------------------------------------------------------------- create, load, save

    @classmethod
    def create(cls, settings: LexicalSettings, analysis: str = "") -> Self:
        if current_settings().uri:
            raise ValueError(
                "the Milvus lexical backend runs on Milvus Lite in the index folder only; "
                "keep bm25s for words with a Milvus server"
            )
        milvus_copies.remove_dead_copies()
        folder, marker = milvus_copies.new_working_copy()
        index = cls(settings, str(folder / DATA), analysis or ANALYSIS, marker)
        milvus_text.create_collection(index._open(), COLLECTION, analysis or ANALYSIS, settings)
        return index

    @classmethod
    def load(cls, folder: Path, settings: LexicalSettings) -> Self:
        milvus_copies.remove_dead_copies()
        record = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        if not (folder / DATA).is_dir():
            raise ValueError(f"{folder / DATA} is missing")
        working, marker = milvus_copies.new_working_copy()
        collection, changed = record["collection"], int(record.get("changed", 0))
        index = cls(settings, str(working / DATA), record["analysis"], marker, collection, changed)
        shutil.copytree(folder / DATA, working / DATA)
        if not index._open().has_collection(collection):
            raise ValueError(f"{folder / DATA} holds no collection {collection!r}")
        return index

    def save(self, folder: Path) -> None:
        if self._changed and self._changed > REBUILD_SHARE * self.count:
            self.rebuild()
        self._changed = self._changed or 0  # sealed from here on
        milvus_copies.release(self._state, self._uri, server=False)  # Lite writes out on close
        shutil.copytree(self._uri, folder / DATA, ignore=shutil.ignore_patterns("LOCK"))
        record = {
            "uri": None,
            "collection": self._collection,
            "analysis": self._analysis,
            "changed": self._changed,
        }
        (folder / SETTINGS).write_text(json.dumps(record, indent=2), encoding="utf-8")

    def close(self) -> None:
        """Close the in-process database and delete the working copy now."""
        self._finalizer()

    def rebuild(self) -> None:
        """Copy the passages into a new collection, one segment, and drop the old one, so
        that BM25's statistics are those of all the passages held (module docstring)."""
        client, old = self._open(), self._collection
        new = f"{COLLECTION}_{uuid.uuid4().hex[:12]}"
        milvus_text.create_collection(client, new, self._analysis, self.settings)
        milvus_collections.copy_rows(client, old, new, (ID, TEXT))
        client.drop_collection(old)
        self._collection, self._changed, self._last = new, None, None

    # ---------------------------------------------------------------------------- reading

    @property
    def count(self) -> int:
        rows = self._open().query(
            self._collection, filter="", output_fields=["count(*)"], consistency_level=STRONG
        )
        return int(rows[0]["count(*)"])

    def search(self, question: str, k: int) -> list[Scored]:
        return self._search(question, k)

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
        weights = {key: _idf(passages, frequencies.get(key, 0)) for key in keys}
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
            self._open().delete(self._collection, ids=held)
        if self._changed is not None:
            self._changed += len(held)
        self._last = None

    # ----------------------------------------------------------------------------- inside

    def _open(self):
        """The client of the working copy (its in-process server started when first used)."""
        if not self._finalizer.alive:  # Lite would make a new, empty database in its place
            raise ValueError("this Milvus index is closed")
        if self._state["client"] is None:
            self._state["client"] = milvus_collections.open_client(self._uri, self._collection)
        return self._state["client"]

    def _all_scores(self, question: str) -> dict[int, float]:
        """Every matching passage's score (the best MAX_LIMIT), the last question's kept.

        Not a search filtered to the given ids: milvus-lite 3.2.2 then takes the statistics
        (passages, each word's passages) of the filtered ones only, and scores differ."""
        if self._last is None or self._last[0] != question:
            self._last = (question, dict(self._search(question, MAX_LIMIT)))
        return self._last[1]

    def _search(self, question: str, k: int) -> list[Scored]:
        query = self._query(question)
        if not query or k <= 0:
            return []
        hits = self._open().search(
            self._collection,
            data=[query],
            anns_field=SPARSE,
            limit=min(k, MAX_LIMIT),
            output_fields=[ID],
            search_params={"metric_type": "BM25"},
            consistency_level=STRONG,
        )
        scale = 1.0 + self.settings.k1  # Milvus's factor that bm25s's Lucene variant drops
        found = [(int(hit["id"]), abs(float(hit["distance"])) / scale) for hit in hits[0]]
        return sorted((hit for hit in found if hit[1] > 0), key=lambda hit: -hit[1])

    def _held(self, ids: Collection[int]) -> list[int]:
        if not ids:
            return []
        rows = self._open().query(
            self._collection,
            ids=[int(i) for i in ids],
            output_fields=[ID],
            consistency_level=STRONG,
        )
        return [int(row[ID]) for row in rows]

    def _texts(self, ids: Collection[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self._open().query(
            self._collection,
            ids=[int(i) for i in ids],
            output_fields=[ID, TEXT],
            consistency_level=STRONG,
        )
        return {int(row[ID]): row[TEXT] for row in rows}

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


def _idf(passages: int, holding: int) -> float:
    """BM25's inverse document frequency of a word that `holding` of `passages` hold."""
    import math

    return math.log1p((passages - holding + 0.5) / (holding + 0.5))
