"""What the engine needs of a search engine: one small interface per side of the index.

A dense backend holds unit vectors and scores by inner product (cosine); a lexical backend
holds passage texts and scores by keywords (BM25). Each implementation is one module in this
package, registered by name in retriever.backends; the manifest records the names, so an
index is always loaded by the engines that wrote it. tests/retriever/test_backends.py runs the same
contract over every registered backend, as txtai tests each of its ANN engines.

Ids are the index's chunk ids: whole numbers, not necessarily contiguous, each naming one
passage for as long as it is in the index. Fusion asks a backend for its top k and for the
exact scores of a few given ids (the other side's candidates), never for a score per chunk,
so a backend that cannot enumerate every score (a vector database) fits.

Changes come as `add` and `delete` of ids, so an update touches only the passages that
changed. An engine that cannot change in place (an HNSW graph cannot remove a vector, bm25s
cannot add a document) rebuilds what it must from what it keeps, and says so in its module.
A backend whose data lives outside the index folder (a server) saves into the folder how to
reach it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from retriever.config import LexicalSettings

Scored = tuple[int, float]  # (chunk id, score)


class KeptOutside:
    """What a backend keeps outside the index folder (a server's collections), for both
    sides. The defaults are for a backend whose data is all in the folder;
    retriever.index.Index.save calls them around the swap."""

    def collections(self) -> tuple[str, ...]:
        """The collections outside the folder that the index owns, for the manifest."""
        return ()

    def claim(self, index_folder: Path, replaced: Any | None) -> None:
        """Called before the index is saved for `index_folder`, with what `outside` read of
        the index it replaces (None: nothing, or another backend's)."""
        return None

    def installed(self) -> None:
        """Called once the saved index is swapped in."""
        return None

    @classmethod
    def outside(cls, folder: Path) -> Any | None:
        """What the index saved in side folder `folder` keeps outside it (read before a swap
        replaces it), or None."""
        return None

    @classmethod
    def release(cls, record: Any, index_folder: Path, keep: Collection[str]) -> None:
        """Once the index in `index_folder` is replaced: free what `outside` returned for
        the replaced one, except the collections in `keep` (the new index's `collections`)."""
        return None


class DenseBackend(KeptOutside, ABC):
    """Unit vectors by chunk id, searched by inner product, which is their cosine."""

    name: ClassVar[str]  # the name it is registered and recorded under

    @classmethod
    @abstractmethod
    def create(cls, dim: int) -> Self:
        """An empty index of `dim`-dimensional vectors."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> Self:
        """The index `save` wrote into `folder`."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the index into the empty folder `folder`."""

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @property
    @abstractmethod
    def count(self) -> int:
        """How many vectors it holds."""

    @abstractmethod
    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Add one float32 row of `vectors` per id; the ids are not in the index yet."""

    @abstractmethod
    def delete(self, ids: Collection[int]) -> None:
        """Remove these ids (ids it does not hold are ignored)."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int) -> list[Scored]:
        """The (at most) k ids nearest to the unit vector `query`, best first, with cosines."""

    @abstractmethod
    def scores(self, query: np.ndarray, ids: Collection[int]) -> dict[int, float]:
        """The exact cosine of `query` with each of `ids` the index holds."""


class LexicalBackend(KeptOutside, ABC):
    """Passage texts by chunk id, searched by BM25 over jieba's words (or the engine's own
    analysis of Chinese, as long as it agrees with it well enough to fuse)."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def create(cls, settings: LexicalSettings) -> Self:
        """An empty index scoring with `settings`."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, settings: LexicalSettings) -> Self:
        """The index `save` wrote into `folder`."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the index into the empty folder `folder`."""

    @property
    @abstractmethod
    def count(self) -> int:
        """How many passages it holds."""

    @abstractmethod
    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Add one text per id; the ids are not in the index yet."""

    @abstractmethod
    def delete(self, ids: Collection[int]) -> None:
        """Remove these ids (ids it does not hold are ignored)."""

    @abstractmethod
    def search(self, question: str, k: int) -> list[Scored]:
        """The (at most) k ids that match `question` best, best first; only scores above 0."""

    @abstractmethod
    def scores(self, question: str, ids: Collection[int]) -> dict[int, float]:
        """The score of `question` for each of `ids` the index holds (0.0 where no word
        matches)."""

    @abstractmethod
    def coverage(self, words: Collection[str], ids: Collection[int]) -> dict[int, float]:
        """For each of `ids` the index holds, the share of `words` (a question's telling
        words, retriever.words.telling_words) that its text holds; 0.0 without words."""
