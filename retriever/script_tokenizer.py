"""The default model's tokenizer, loaded lighter: only the pieces of the scripts Chinese
documents are written in, the whole tokenizer only when a text needs it.

XLM-R's tokenizer holds 250,002 pieces of a hundred languages, and reading them was a second
of every cold start (0.9-1.1 s on a 2-core AMD EPYC Zen 3). Its model (Unigram) cuts a text
into pieces that occur in it, so a text written only in the common scripts (Latin, Greek,
CJK, their punctuation, symbols and full-width forms) can only be cut into pieces made of
those characters: a tokenizer that keeps just those pieces (136,833) cuts it into the same
pieces, and loads in about half a second. Its piece numbers are mapped back to the model's.
Any other text (Cyrillic, Hangul, emoji…) goes to the whole tokenizer, read the first time
one comes.

The kept tokenizer is made from tokenizer.json the first time, beside it (`prepare-model`
opens the model, so it is made then); a folder that cannot be written keeps the whole
tokenizer's load.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

COMMON_TOKENIZER_FILE = "tokenizer-common.json"
COMMON_IDS_FILE = "tokenizer-common.npz"
# The scripts kept, as code point ranges: Latin with pinyin's tone marks, Greek, general
# punctuation and symbols (℃, ①, →), CJK punctuation, kana and compatibility forms, CJK
# ideographs and their compatibility forms, full- and half-width forms.
COMMON_RANGES = (
    (0x0000, 0x024F),
    (0x0370, 0x03FF),
    (0x2000, 0x2BFF),
    (0x3000, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0xFF00, 0xFFEF),
)
METASPACE = "\u2581"  # how the tokenizer writes a space inside a piece
_UNCOMMON = re.compile(
    "[^" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in COMMON_RANGES) + METASPACE + "]"
)
# XLM-R's <s>, <pad>, </s>, <unk> come first and keep their numbers.
SPECIAL_PIECES = 4


class ScriptTokenizer:
    """Token ids of texts, as the model's tokenizer.json gives them, truncated to `max_tokens`."""

    def __init__(self, folder: Path, max_tokens: int) -> None:
        self.folder = folder
        self.max_tokens = max_tokens
        self._whole = None
        self._lock = threading.Lock()
        self._common, self._ids = _load_common(folder, max_tokens)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        if self._common is None:
            return [np.asarray(encoding.ids) for encoding in self.whole().encode_batch(texts)]
        normalize = self._common.normalizer.normalize_str
        common = [i for i, text in enumerate(texts) if not _UNCOMMON.search(normalize(text))]
        others = sorted(set(range(len(texts))) - set(common))
        ids: list[np.ndarray] = [np.empty(0, np.int64)] * len(texts)
        encodings = self._common.encode_batch([texts[i] for i in common])
        for i, encoding in zip(common, encodings, strict=True):
            ids[i] = self._ids[encoding.ids]
        if others:
            encodings = self.whole().encode_batch([texts[i] for i in others])
            for i, encoding in zip(others, encodings, strict=True):
                ids[i] = np.asarray(encoding.ids)
        return ids

    def whole(self):
        """The whole tokenizer, read on first use."""
        with self._lock:
            if self._whole is None:
                self._whole = _open(self.folder / "tokenizer.json", self.max_tokens)
            return self._whole


def _open(source: Path | str, max_tokens: int):
    """A tokenizer from a tokenizer.json file (a path) or its text (a string), truncating."""
    from tokenizers import Tokenizer

    if isinstance(source, Path):
        tokenizer = Tokenizer.from_file(str(source))
    else:
        tokenizer = Tokenizer.from_str(source)
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def _load_common(folder: Path, max_tokens: int):
    """The kept tokenizer and its map to the model's piece numbers, made when missing or
    older than tokenizer.json; (None, None) when it cannot be made (another kind of model)."""
    source = folder / "tokenizer.json"
    status = source.stat()
    stamp = np.array([status.st_size, status.st_mtime_ns], np.int64)
    try:
        with np.load(folder / COMMON_IDS_FILE, allow_pickle=False) as saved:
            source_stamp, ids = saved["source"], saved["ids"]
        if np.array_equal(source_stamp, stamp):
            tokenizer = _open(folder / COMMON_TOKENIZER_FILE, max_tokens)
            # One number per kept piece, in the model's order: anything else is not ours.
            if len(ids) == tokenizer.get_vocab_size() and bool(np.all(np.diff(ids) > 0)):
                return tokenizer, ids
    except Exception as error:  # missing, damaged or half-written: made again below
        logger.debug("no lighter tokenizer in %s yet: %s", folder, error)
    if not os.access(folder, os.W_OK):
        # Made in memory each time, it would cost more than the whole one's load.
        logger.info("%s cannot be written: the whole tokenizer is used", folder)
        return None, None
    made = _make_common(json.loads(source.read_text(encoding="utf-8")))
    if made is None:
        return None, None
    kept, ids = made
    _keep(folder, kept, ids, stamp)
    return _open(kept, max_tokens), ids


def _make_common(whole: dict) -> tuple[str, np.ndarray] | None:
    """tokenizer.json keeping the common scripts' pieces, and the model's number of each."""
    model = whole.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        return None
    pieces = model["vocab"]
    # Unigram scores an unknown character below the lowest piece: the lowest one stays so
    # that texts with one score as before.
    lowest = min(range(len(pieces)), key=lambda i: pieces[i][1])
    ids = [
        i
        for i, (piece, _) in enumerate(pieces)
        if i < SPECIAL_PIECES or i == lowest or not _UNCOMMON.search(piece)
    ]
    new_id = {old: new for new, old in enumerate(ids)}
    added = whole.get("added_tokens") or []
    # The special tokens the post-processor puts around a text keep their numbers.
    specials = (whole.get("post_processor") or {}).get("special_tokens", {}).values()
    if (
        model.get("unk_id") not in new_id
        or any(t["id"] not in new_id for t in added)
        or any(i >= SPECIAL_PIECES for special in specials for i in special["ids"])
    ):
        return None
    kept = {
        **whole,
        "model": {**model, "vocab": [pieces[i] for i in ids], "unk_id": new_id[model["unk_id"]]},
        "added_tokens": [{**t, "id": new_id[t["id"]]} for t in added],
    }
    return json.dumps(kept, ensure_ascii=False), np.array(ids, np.int64)


def _keep(folder: Path, kept: str, ids: np.ndarray, stamp: np.ndarray) -> None:
    """Written whole, then renamed, the map last: a reader never sees half of either."""
    try:
        partial = folder / f"{COMMON_TOKENIZER_FILE}.{os.getpid()}.partial"
        partial.write_text(kept, encoding="utf-8")
        partial.replace(folder / COMMON_TOKENIZER_FILE)
        partial_ids = folder / f"tokenizer-common.{os.getpid()}.partial.npz"
        np.savez(partial_ids, ids=ids, source=stamp)
        partial_ids.replace(folder / COMMON_IDS_FILE)
    except OSError as error:
        logger.warning("cannot keep the lighter tokenizer in %s: %s", folder, error)
