"""Text from bytes, and the form of text used for matching.

Chinese files arrive as UTF-8, GB18030/GBK or UTF-16 about equally often, so bytes are decoded
by detection rather than assumed (`decode`), and text decoded from a binary file is refused
(`reject_binary`). `normalize` folds width, script and case for matching; shown text stays as
in the source.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


class CorpusError(ValueError):
    """A corpus file that cannot be turned into text; the message names the file and why."""


def normalize(text: str) -> str:
    """Fold the forms that should not stop a match: full/half width, traditional/simplified, case.

    Used only for matching (tokens, embeddings, duplicate detection); shown text stays as in
    the source.
    """
    return _to_simplified(unicodedata.normalize("NFKC", text)).lower()


@lru_cache(maxsize=1)
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


def _to_simplified(text: str) -> str:
    return _converter().convert(text)


def decode(data: bytes, name: str) -> tuple[str, str]:
    """Decode file bytes to text, returning (text, encoding). Raises CorpusError if not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as error:
                raise CorpusError(
                    f"{name}: starts with a {encoding} mark but is damaged: {error}"
                ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        utf8_error = error
    from charset_normalizer import from_bytes

    detected = from_bytes(data).best()
    candidates = {"gb18030", "big5"}
    if detected is not None and detected.encoding:
        candidates.add(detected.encoding)
    decoded = {}
    for encoding in candidates:
        try:
            decoded[encoding] = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    if not decoded:
        raise CorpusError(
            f"{name}: not readable as text: not UTF-8 (byte {utf8_error.start} is invalid) nor "
            "any other known encoding; is it damaged, or a binary file?"
        )
    # Short GBK and Big5 texts decode validly in each other's codec (and as Korean), so the
    # detector's pick alone is unreliable; the reading with the most common Chinese wins.
    encoding = max(sorted(decoded), key=lambda enc: _plausibility(decoded[enc]))
    text = decoded[encoding]
    reject_binary(text, name)
    return text, encoding


def _plausibility(text: str) -> float:
    """Share of characters that are common in real text: ASCII, punctuation, frequent hanzi."""
    sample = text[:5000]
    if not sample:
        return 0.0
    simplified = _to_simplified(sample)
    return sum(_is_common(ch) for ch in simplified) / len(simplified)


def _is_common(ch: str) -> bool:
    if ch.isascii():
        return ch.isprintable() or ch in "\n\r\t"
    if "\u4e00" <= ch <= "\u9fff":
        try:
            # GB2312 level 1 (lead bytes B0-D7) holds the 3,755 most frequent hanzi.
            return 0xB0 <= ch.encode("gb2312")[0] <= 0xD7
        except UnicodeEncodeError:
            return False
    category = unicodedata.category(ch)
    return category[0] in "PSZ" or (category[0] == "L" and ch < "\u3000")


def reject_binary(text: str, name: str) -> None:
    """Text decoded from a binary file is full of control characters; refuse it."""
    sample = text[:20000]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if sample and controls / len(sample) > 0.01:
        raise CorpusError(f"{name}: looks like a binary file, not text ({controls} control chars)")
