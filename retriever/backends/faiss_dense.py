"""Dense backend "faiss": an exact flat index, or an HNSW graph from 100,000 vectors on.

Both sit inside an IndexIDMap2, which keeps the chunk ids beside the vectors, so vectors are
added and removed by id (add_with_ids, remove_ids) and an update touches only the passages
that changed. An HNSW graph cannot remove a vector: deleting from it rebuilds the graph from
the vectors that stay (a minute or more at 100k on 2 cores), while adding to it is cheap. The
kind follows the count, as a fresh build would choose it.

Why the threshold (docs/BENCHMARKS.md, "How cost grows"; 2 cores, one thread per question):
exact search takes 7.9 ms median at 100k vectors and 76 ms at 1M, growing linearly; HNSW
(M=32) answers in 0.2-0.5 ms at any size, with recall@10 against exact search of 1.000 at
100k (efSearch 128), and 0.992 / 0.995 at 1M (efSearch 128 / 256).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Self

import numpy as np

from retriever.backends.base import DenseBackend, Scored
from retriever.threads import thread_limit

logger = logging.getLogger(__name__)

VECTORS = "vectors.faiss"
HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_SEARCH_LARGE = 256  # above HNSW_LARGE vectors, to keep recall@10 at 0.995
HNSW_LARGE = 500_000


class FaissDense(DenseBackend):
    name = "faiss"

    def __init__(self, index) -> None:
        self._index = index  # a faiss.IndexIDMap2

    @classmethod
    def create(cls, dim: int) -> Self:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, folder: Path) -> Self:
        import faiss

        index = faiss.read_index(str(folder / VECTORS))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{VECTORS} holds a {type(index).__name__}, not an IndexIDMap2")
        return cls(index)

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(folder / VECTORS))

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def is_hnsw(self) -> bool:
        import faiss

        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat)

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        self._index.add_with_ids(_float32(vectors), np.asarray(ids, dtype=np.int64))
        self._fit()

    def delete(self, ids: Collection[int]) -> None:
        import faiss

        if not ids:
            return
        if self.is_hnsw:
            held, vectors = self._contents()
            keep = ~np.isin(held, np.fromiter(ids, dtype=np.int64))
            logger.info("HNSW cannot remove vectors: rebuilding its graph of %d", keep.sum())
            self._index = self._new_index(held[keep], vectors[keep])
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(np.fromiter(ids, dtype=np.int64)))
        self._fit()

    def search(self, query: np.ndarray, k: int) -> list[Scored]:
        import faiss

        # One question on one thread: see retriever.threads.
        with thread_limit(faiss.omp_get_max_threads, faiss.omp_set_num_threads, 1):
            scores, ids = self._index.search(_float32(query).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def scores(self, query: np.ndarray, ids: Collection[int]) -> dict[int, float]:
        held = list(ids)
        try:
            vectors = self._reconstruct(held)
        except RuntimeError:  # an id it does not hold: FAISS stops there, so sort them out
            held = [i for i in held if self._holds(i)]
            vectors = self._reconstruct(held)
        return dict(zip(held, (vectors @ _float32(query)).tolist(), strict=True))

    def _reconstruct(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(np.array(ids, dtype=np.int64))

    def _holds(self, chunk_id: int) -> bool:
        try:
            self._index.reconstruct(chunk_id)
        except RuntimeError:
            return False
        return True

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id it holds and its vector, in the order the index stores them."""
        import faiss

        inner = faiss.downcast_index(self._index.index)
        return faiss.vector_to_array(self._index.id_map), inner.reconstruct_n(0, inner.ntotal)

    def _fit(self) -> None:
        """Make the index the kind a fresh build of this many vectors would be."""
        if (self.count >= HNSW_THRESHOLD) != self.is_hnsw:
            self._index = self._new_index(*self._contents())
        if self.is_hnsw:
            import faiss

            large = self.count > HNSW_LARGE
            hnsw = faiss.downcast_index(self._index.index).hnsw
            hnsw.efSearch = HNSW_EF_SEARCH_LARGE if large else HNSW_EF_SEARCH

    def _new_index(self, ids: np.ndarray, vectors: np.ndarray):
        import faiss

        if len(ids) >= HNSW_THRESHOLD:
            inner = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        else:
            inner = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap2(inner)
        index.add_with_ids(vectors, ids)
        return index


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)
