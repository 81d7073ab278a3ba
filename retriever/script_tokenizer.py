"""The default model's tokenizer, loaded lighter: only the pieces of the scripts a text is
written in, the whole tokenizer only when a text needs it.

XLM-R's tokenizer holds 250,002 pieces of a hundred languages, and reading them was a second
of every cold start (0.9-1.1 s on a 2-core AMD EPYC Zen 3); the cost is in the pieces (a
thousand load in 2 ms). Its model (Unigram) cuts a text into pieces that occur in it, so a
text written only in some scripts can only be cut into pieces made of their characters: a
tokenizer keeping just those pieces cuts it into the same pieces, its numbers mapped back to
the model's. Two are kept, smallest first:

- "han": CJK, digits, punctuation and symbols, without Latin or Greek letters (most Chinese
  questions and passages; 24,538 pieces, loaded with the model);
- "common": with Latin (pinyin's tone marks too) and Greek letters (136,833 pieces, loaded
  the first time a text holds such a letter: about half a second).

Any other text (Cyrillic, Hangul, emoji…) goes to the whole tokenizer, read the first time
one comes. The kept tokenizers are made from tokenizer.json the first time, beside it
(`prepare-model` opens the model, so they are made then); a folder that cannot be written
keeps the whole tokenizer's load.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

METASPACE = "\u2581"  # how the tokenizer writes a space inside a piece
# XLM-R's <s>, <pad>, </s>, <unk> come first and keep their numbers.
SPECIAL_PIECES = 4


@dataclass(frozen=True)
class Script:
    """A set of scripts as code point ranges, and the files of the tokenizer keeping them."""

    name: str
    ranges: tuple[tuple[int, int], ...]

    @property
    def tokenizer_file(self) -> str:
        return f"tokenizer-{self.name}.json"

    @property
    def ids_file(self) -> str:
        return f"tokenizer-{self.name}.npz"

    @property
    def outside(self) -> re.Pattern[str]:
        """Matches a character no piece of this tokenizer may hold."""
        inside = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in self.ranges)
        return re.compile(f"[^{inside}{METASPACE}]")


# Punctuation and symbols (℃, ①, →), CJK punctuation, kana and compatibility forms, CJK
# ideographs and their compatibility forms, full- and half-width forms.
_HAN_AND_SYMBOLS = (
    (0x2000, 0x2BFF),
    (0x3000, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0xFF00, 0xFFEF),
)
HAN = Script(
    "han",
    (
        (0x0000, 0x0040),  # ASCII without its letters
        (0x005B, 0x0060),
        (0x007B, 0x00BF),  # and Latin-1's symbols
        (0x00D7, 0x00D7),  # ×
        (0x00F7, 0x00F7),  # ÷
        *_HAN_AND_SYMBOLS,
    ),
)
COMMON = Script("common", ((0x0000, 0x024F), (0x0370, 0x03FF), *_HAN_AND_SYMBOLS))
SCRIPTS = (HAN, COMMON)  # smallest first: a text goes to the first that holds it


class ScriptTokenizer:
    """Token ids of texts, as the model's tokenizer.json gives them, truncated to `max_tokens`.

    `prefixes` are what the model puts before every text ("query: ", "passage: "): their
    letters do not send a Chinese text to the larger tokenizer, as the smallest one keeps
    their pieces too.
    """

    def __init__(self, folder: Path, max_tokens: int, prefixes: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.max_tokens = max_tokens
        self.prefixes = tuple(sorted(prefixes, key=len, reverse=True))
        self._whole = None
        self._lock = threading.Lock()
        self._outside = [script.outside for script in SCRIPTS]
        self._stamp = _stamp(folder)
        # Per script: (tokenizer, piece numbers), None where it cannot be had, absent until
        # a text needs it. The smallest is read now: most texts need it.
        self._kept: dict[Script, tuple | None] = {}
        first = next((kept for s in SCRIPTS if (kept := self._kept_for(s)) is not None), None)
        self._normalize = first[0].normalizer.normalize_str if first is not None else None

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        if self._normalize is None:
            return [np.asarray(encoding.ids) for encoding in self.whole().encode_batch(texts)]
        groups: dict[Script | None, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(self._script_of(text), []).append(i)
        ids: list[np.ndarray] = [np.empty(0, np.int64)] * len(texts)
        for script, members in groups.items():
            if script is None:
                encodings = self.whole().encode_batch([texts[i] for i in members])
                for i, encoding in zip(members, encodings, strict=True):
                    ids[i] = np.asarray(encoding.ids)
            else:
                tokenizer, numbers = self._kept[script]
                encodings = tokenizer.encode_batch([texts[i] for i in members])
                for i, encoding in zip(members, encodings, strict=True):
                    ids[i] = numbers[encoding.ids]
        return ids

    def _script_of(self, text: str) -> Script | None:
        """The first script that holds every character of the text (its prefix aside) and
        whose tokenizer could be had; None: the whole tokenizer cuts it."""
        prefix = next((p for p in self.prefixes if text.startswith(p)), "")
        normalized = self._normalize(text[len(prefix) :])
        for script, outside in zip(SCRIPTS, self._outside, strict=True):
            if not outside.search(normalized) and self._kept_for(script) is not None:
                return script
        return None

    def whole(self):
        """The whole tokenizer, read on first use."""
        with self._lock:
            if self._whole is None:
                self._whole = _open(self.folder / "tokenizer.json", self.max_tokens)
            return self._whole

    def _kept_for(self, script: Script) -> tuple | None:
        with self._lock:
            if script not in self._kept:
                self._kept[script] = self._load(script)
            return self._kept[script]

    def _load(self, script: Script) -> tuple | None:
        """The kept tokenizer of `script` and its map to the model's piece numbers, every
        kept one made when missing or made from another tokenizer.json or other prefixes;
        None when it cannot be made (a folder that cannot be written, another kind of
        model)."""
        kept = _read(self.folder, script, self.max_tokens, self._stamp, self.prefixes)
        if kept is not None:
            return kept
        if not os.access(self.folder, os.W_OK):
            # Made in memory each time, it would cost more than the whole one's load.
            logger.info("%s cannot be written: the whole tokenizer is used", self.folder)
            return None
        source = (self.folder / "tokenizer.json").read_text(encoding="utf-8")
        words = _prefix_words(source, self.prefixes)
        whole = json.loads(source)
        # Without the prefixes' words standing apart, the smallest one cannot be had.
        made = {
            s: None if s is HAN and words is None else _make_kept(whole, s, words or ())
            for s in SCRIPTS
        }
        for each, pieces in made.items():
            if pieces is not None:
                _keep(self.folder, each, *pieces, self._stamp, self.prefixes)
        if made[script] is None:
            return None
        text, numbers = made[script]
        return _open(text, self.max_tokens), numbers


def _stamp(folder: Path) -> np.ndarray:
    """tokenizer.json's size and time: kept files made from another one are not used."""
    status = (folder / "tokenizer.json").stat()
    return np.array([status.st_size, status.st_mtime_ns], np.int64)


def _read(
    folder: Path, script: Script, max_tokens: int, stamp: np.ndarray, prefixes: tuple[str, ...]
) -> tuple | None:
    try:
        with np.load(folder / script.ids_file, allow_pickle=False) as saved:
            source_stamp, ids, made_for = saved["source"], saved["ids"], saved["prefixes"]
        if np.array_equal(source_stamp, stamp) and made_for.tolist() == list(prefixes):
            tokenizer = _open(folder / script.tokenizer_file, max_tokens)
            # One number per kept piece, in the model's order: anything else is not ours.
            if len(ids) == tokenizer.get_vocab_size() and bool(np.all(np.diff(ids) > 0)):
                return tokenizer, ids
    except Exception as error:  # missing, damaged or half-written: made again
        logger.debug("no %s tokenizer in %s yet: %s", script.name, folder, error)
    return None


def _prefix_words(source: str, prefixes: tuple[str, ...]) -> tuple[str, ...] | None:
    """The words the tokenizer splits the prefixes into (▁query:), or None when a prefix's
    last word would not stand apart from the text after it: then a piece could span both,
    and keeping the prefixes' pieces would not be enough."""
    tokenizer = _open(source, 1)
    if tokenizer.normalizer is None or tokenizer.pre_tokenizer is None:
        return None

    def split(text: str) -> list[str]:
        normalized = tokenizer.normalizer.normalize_str(text)
        return [word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]

    alone = split("字")
    words: list[str] = []
    for prefix in prefixes:
        joined = split(prefix + "字")
        if joined[-len(alone) :] != alone:
            return None
        words += joined[: -len(alone)]
    return tuple(words)


def _open(source: Path | str, max_tokens: int):
    """A tokenizer from a tokenizer.json file (a path) or its text (a string), truncating."""
    from tokenizers import Tokenizer

    if isinstance(source, Path):
        tokenizer = Tokenizer.from_file(str(source))
    else:
        tokenizer = Tokenizer.from_str(source)
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def _make_kept(
    whole: dict, script: Script, words: tuple[str, ...]
) -> tuple[str, np.ndarray] | None:
    """tokenizer.json keeping the pieces of `script` and those inside `words`, and the
    model's number of each."""
    model = whole.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        return None
    pieces = model["vocab"]
    # Unigram scores an unknown character below the lowest piece: the lowest one stays so
    # that texts with one score as before.
    lowest = min(range(len(pieces)), key=lambda i: pieces[i][1])
    added = whole.get("added_tokens") or []
    # Added tokens (<mask>) are matched whole before the model cuts a text, so they stay
    # whatever they are written in.
    added_ids = {t["id"] for t in added}
    outside = script.outside
    ids = [
        i
        for i, (piece, _) in enumerate(pieces)
        if i < SPECIAL_PIECES
        or i == lowest
        or i in added_ids
        or not outside.search(piece)
        or any(piece in word for word in words)
    ]
    new_id = {old: new for new, old in enumerate(ids)}
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


def _keep(
    folder: Path,
    script: Script,
    kept: str,
    ids: np.ndarray,
    stamp: np.ndarray,
    prefixes: tuple[str, ...],
) -> None:
    """Written whole, then renamed, the map last: a reader never sees half of either."""
    try:
        partial = folder / f"{script.tokenizer_file}.{os.getpid()}.partial"
        partial.write_text(kept, encoding="utf-8")
        partial.replace(folder / script.tokenizer_file)
        partial_ids = folder / f"tokenizer-{script.name}.{os.getpid()}.partial.npz"
        np.savez(partial_ids, ids=ids, source=stamp, prefixes=np.array(prefixes, dtype=str))
        partial_ids.replace(folder / script.ids_file)
    except OSError as error:
        logger.warning("cannot keep the lighter tokenizer in %s: %s", folder, error)
