"""Passages: the chunks of each document, which of them an index holds, and under which ids.

Identical passages are indexed once: a scraped page that repeats another, or one file saved
twice, would otherwise fill the results with copies. Every passage is kept in the index's
list, though, in corpus order, and only the first of a kind gets an id and goes into the
backends; so when that first one goes, the next becomes the indexed one without reading its
file again. Whatever order files were added in, an update makes the same choice as a build
from nothing.

Ids stay with a passage while it is indexed, so an update touches the backends only for
passages that came or went. A passage that comes back with the same title, heading and text
(a document edited elsewhere, moved in corpus order, or promoted from repeat) takes the id a
gone one had: its vector and its words are the same, so nothing is embedded again.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, replace

from retriever.chunking import chunk_text
from retriever.config import ChunkSettings
from retriever.corpus import Document
from retriever.store import StoredChunk
from retriever.text import normalize


def duplicate_key(text: str) -> str:
    """The text as repeats are compared: normalised, without punctuation or spaces."""
    return re.sub(r"[\W_]+", "", normalize(text))


def passages_of(document: Document, settings: ChunkSettings) -> list[StoredChunk]:
    """The document's chunks, not yet indexed (id None)."""
    return [
        StoredChunk(
            id=None,
            key=hashlib.blake2b(
                duplicate_key(chunk.heading + chunk.text).encode(), digest_size=8
            ).hexdigest(),
            doc_id=document.doc_id,
            source=document.source,
            title=document.title,
            heading=chunk.heading,
            start=chunk.start,
            end=chunk.end,
            text=chunk.text,
        )
        for chunk in chunk_text(
            document.text,
            settings,
            marked_headings=document.headings,
            marked_units=document.units,
        )
    ]


def dense_text(chunk: StoredChunk) -> str:
    """What is embedded for a chunk: its document title and heading give it context."""
    return "\n".join(part for part in (chunk.title, chunk.heading, chunk.text) if part)


def lexical_text(chunk: StoredChunk) -> str:
    """What BM25 indexes for a chunk: its heading and text, without the document title.

    A title is shared by every paragraph of a document, so in BM25 it makes them all match
    its words equally and buries the paragraph that answers: with the title in BM25, hybrid
    Hit@10 on dureader_demo was 0.796, without it 0.852 (cmrc2018_dev: 0.998 either way).
    The dense side keeps the title, where it adds context without that effect.
    """
    return "\n".join(part for part in (chunk.heading, chunk.text) if part)


@dataclass(frozen=True)
class Changes:
    """What an update does to the backends, and the passages it leaves."""

    passages: list[StoredChunk]  # every passage, in corpus order, with its id or None
    added: list[StoredChunk]  # newly indexed: to embed, tokenise and add
    deleted: list[int]  # ids no passage holds any longer: to delete


def assign_ids(passages: list[StoredChunk], previous: list[StoredChunk]) -> Changes:
    """Index the first passage of each key in `passages` (corpus order), keeping the ids of
    `previous` (the index being replaced) wherever the passage is still indexed."""
    indexed: list[bool] = []
    seen: set[str] = set()
    for passage in passages:
        indexed.append(passage.key not in seen)
        seen.add(passage.key)
    kept = {p.id for p, first in zip(passages, indexed, strict=True) if first and p.id is not None}
    free: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for passage in previous:
        if passage.id is not None and passage.id not in kept:
            free[(passage.title, passage.heading, passage.text)].append(passage.id)
    next_id = max((p.id for p in previous if p.id is not None), default=-1) + 1
    result, added = [], []
    for passage, first in zip(passages, indexed, strict=True):
        if not first:
            passage = replace(passage, id=None)
        elif passage.id is None:
            same = free.get((passage.title, passage.heading, passage.text))
            if same:
                passage = replace(passage, id=same.pop())
            else:
                passage = replace(passage, id=next_id)
                next_id += 1
                added.append(passage)
        result.append(passage)
    deleted = sorted(chunk_id for ids in free.values() for chunk_id in ids)
    return Changes(result, added, deleted)
