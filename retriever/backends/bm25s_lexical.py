"""Lexical backend "bm25s": BM25 (bm25s) over jieba's words of each passage (retriever.words).

bm25s computes every passage's score for every word once, from the whole corpus (the
collection's size and mean passage length enter every score), and cannot add or remove a
passage in place. So this backend keeps each passage's words as token ids: adding a passage
tokenises that passage only, removing one drops its row, and the score matrix is then
rebuilt from the kept ids without tokenising anything again.

Files, plain arrays and JSON (no pickle): bm25s's own (data, indices and indptr .npy,
vocab.index.json, params.index.json), and chunk_ids.npy (the chunk id of each row),
tokens.npy (the token ids of every row, one after another) and token_offsets.npy (row i's
tokens are tokens[offsets[i]:offsets[i + 1]]). The vocabulary is bm25s's: token ids are
never reused, so ids a removed passage held stay in it unused, which changes no score.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Self

import numpy as np

from retriever.backends.base import LexicalBackend, Scored
from retriever.config import LexicalSettings
from retriever.words import tokenize

logger = logging.getLogger(__name__)

CHUNK_IDS = "chunk_ids.npy"
TOKENS = "tokens.npy"
OFFSETS = "token_offsets.npy"


class Bm25sLexical(LexicalBackend):
    name = "bm25s"

    def __init__(
        self,
        settings: LexicalSettings,
        vocab: dict[str, int],
        ids: np.ndarray,
        tokens: np.ndarray,
        offsets: np.ndarray,
        bm25=None,
    ) -> None:
        self.settings = settings
        self._vocab = vocab
        self._ids = ids  # int64, the chunk id of each row
        self._tokens = tokens  # int32, every row's token ids
        self._offsets = offsets  # int64, len(ids) + 1
        self._bm25 = bm25  # None until needed after a change
        self._row_of: dict[int, int] | None = None

    @classmethod
    def create(cls, settings: LexicalSettings) -> Self:
        empty = np.zeros(0, dtype=np.int64)
        return cls(settings, {}, empty, np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64))

    @classmethod
    def load(cls, folder: Path, settings: LexicalSettings) -> Self:
        ids, tokens, offsets = (
            np.load(folder / name, allow_pickle=False) for name in (CHUNK_IDS, TOKENS, OFFSETS)
        )
        if len(offsets) != len(ids) + 1 or offsets[-1] != len(tokens):
            raise ValueError(f"{CHUNK_IDS}, {TOKENS} and {OFFSETS} do not agree")
        if not len(ids):
            return cls(settings, {}, ids, tokens, offsets)
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), load_corpus=False)
        if bm25.scores["num_docs"] != len(ids):
            raise ValueError(f"bm25s holds {bm25.scores['num_docs']} rows, {CHUNK_IDS} {len(ids)}")
        return cls(settings, bm25.vocab_dict, ids, tokens, offsets, bm25)

    def save(self, folder: Path) -> None:
        bm25 = self._index()
        if bm25 is not None:
            bm25.save(str(folder), show_progress=False)
        for name, array in zip(
            (CHUNK_IDS, TOKENS, OFFSETS), (self._ids, self._tokens, self._offsets), strict=True
        ):
            np.save(folder / name, array, allow_pickle=False)

    @property
    def count(self) -> int:
        return len(self._ids)

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if not len(ids):
            return
        rows = [self._token_ids(text) for text in texts]
        lengths = np.array([len(row) for row in rows], dtype=np.int64)
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])
        self._tokens = np.concatenate([self._tokens, *rows])
        self._offsets = np.concatenate([self._offsets, self._offsets[-1] + np.cumsum(lengths)])
        self._changed()

    def delete(self, ids: Collection[int]) -> None:
        keep = ~np.isin(self._ids, np.fromiter(ids, dtype=np.int64))
        if keep.all():
            return
        lengths = np.diff(self._offsets)
        self._ids = self._ids[keep]
        self._tokens = self._tokens[np.repeat(keep, lengths)]
        self._offsets = np.concatenate([[0], np.cumsum(lengths[keep])])
        self._changed()

    def search(self, question: str, k: int) -> list[Scored]:
        scores = self._scores(question)
        k = min(k, len(scores))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else range(len(scores))
        found = [(int(self._ids[row]), float(scores[row])) for row in top if scores[row] > 0]
        return sorted(found, key=lambda item: -item[1])

    def scores(self, question: str, ids: Collection[int]) -> dict[int, float]:
        if not ids:
            return {}
        scores = self._scores(question)
        rows = self._rows()
        return {i: float(scores[rows[i]]) for i in ids if i in rows}

    def coverage(self, words: Collection[str], ids: Collection[int]) -> dict[int, float]:
        rows = self._rows()
        held = [i for i in ids if i in rows]
        bm25 = self._index()
        if not held or not words or bm25 is None:
            return dict.fromkeys(held, 0.0)
        # Each word weighs its BM25 inverse document frequency in this corpus: a word most
        # passages hold (办公室 in a document about 办公室主任) says little about which one
        # answers, and jieba's search mode cuts one term into several words (办公, 公室,
        # 办公室), which would otherwise count it several times. A word no passage holds
        # weighs the most and is held by none.
        indptr = bm25.scores["indptr"]  # a word's passages: indptr[id] to indptr[id + 1]
        word_ids = np.array([self._vocab.get(w, -1) for w in words], dtype=np.int64)
        known = np.unique(word_ids[word_ids >= 0])
        if not len(known):
            return dict.fromkeys(held, 0.0)
        holding = (indptr[known + 1] - indptr[known]).astype(np.float64)
        passages = bm25.scores["num_docs"]
        weights = _idf(passages, holding)
        unknown = int((word_ids < 0).sum())
        total = float(weights.sum() + _idf(passages, np.zeros(1))[0] * unknown)
        # Every candidate's tokens at once; each (passage, word) pair counts once.
        segments = [self._tokens[self._offsets[rows[i]] : self._offsets[rows[i] + 1]] for i in held]
        tokens = np.concatenate(segments)
        owner = np.repeat(np.arange(len(held)), [len(segment) for segment in segments])
        at = np.minimum(np.searchsorted(known, tokens), len(known) - 1)
        match = known[at] == tokens
        pairs = np.unique(owner[match] * len(known) + at[match])
        shares = np.bincount(
            pairs // len(known), weights=weights[pairs % len(known)], minlength=len(held)
        )
        return {i: float(share) / total for i, share in zip(held, shares, strict=True)}

    # ------------------------------------------------------------------------ inside

    def _rows(self) -> dict[int, int]:
        """Row of each chunk id."""
        if self._row_of is None:
            self._row_of = {int(chunk_id): row for row, chunk_id in enumerate(self._ids)}
        return self._row_of

    def _token_ids(self, text: str) -> np.ndarray:
        """The text's words as token ids, new words added to the vocabulary."""
        words = tokenize(text, search_mode=self.settings.search_mode)
        return np.array([self._vocab.setdefault(w, len(self._vocab)) for w in words], np.int32)

    def _changed(self) -> None:
        self._bm25 = None
        self._row_of = None

    def _index(self):
        """bm25s's score matrix over the current rows, rebuilt from the token ids if a change
        made it stale; None while there are no rows."""
        if self._bm25 is None and self.count:
            import bm25s
            from bm25s.tokenization import Tokenized

            logging.getLogger("bm25s").setLevel(logging.WARNING)
            tokens = self._tokens.tolist()
            rows = [tokens[start:end] for start, end in pairwise(self._offsets.tolist())]
            bm25 = bm25s.BM25(k1=self.settings.k1, b=self.settings.b)
            corpus = Tokenized(ids=rows, vocab=self._vocab)
            bm25.index(corpus, create_empty_token=False, show_progress=False)
            self._bm25 = bm25
        return self._bm25

    def _scores(self, question: str) -> np.ndarray:
        """The BM25 score of every row (zeros when no word of the question is known)."""
        bm25 = self._index()
        if bm25 is None:
            return np.zeros(0, dtype=np.float32)
        words = tokenize(question, search_mode=self.settings.search_mode)
        token_ids = bm25.get_tokens_ids(words)
        if not token_ids:
            return np.zeros(self.count, dtype=np.float32)
        return np.asarray(bm25.get_scores(token_ids), dtype=np.float32)


def _idf(passages: int, holding: np.ndarray) -> np.ndarray:
    """BM25's inverse document frequency of words that `holding` of `passages` hold."""
    return np.log1p((passages - holding + 0.5) / (holding + 0.5))
