"""A cited passage in its document: a window of the document's text around it, for the page's
source preview and `GET /api/preview`.

The text is the document's *extracted* text (PDF, Word and HTML as the engine reads them),
the text every hit's and quote's offsets point into. Offsets here are the engine's: 0-based,
end-exclusive, so `window.text == document[window.start:window.end]` (a Python slice). The
page shows them counted from 1 (第 a–b 字).

Only documents of the served index are read, looked up by the `doc_id` its passages carry:
a name the index does not hold is refused before any path is made of it, so no client can
name a file outside the corpus, a hidden one, or one added since the build. The file must
also still be the one indexed (same SHA-256), or the offsets would point at other text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retriever import Retriever
from retriever.bases import DEFAULT
from retriever.chunking import Span  # 0-based, end-exclusive offsets into the text
from retriever.corpus import Document, read_file
from retriever.text import CorpusError
from web.libraries import Libraries
from web.library import Library, NotIndexed

# Characters shown on each side of the cited passage.
CONTEXT_CHARS = 2000
# A window edge moves to a line break at most this many characters inward, so that the
# window starts and ends with whole lines where it can.
SNAP_CHARS = 200
# Longer than any passage a build makes (300 characters by default): a request for more is a
# request for the whole document, which the preview does not serve in one piece.
MAX_PASSAGE_CHARS = 10_000
MAX_MARKS = 50
# Extracted documents kept for the next preview of the same file: a PDF takes a child
# process and up to seconds to read. Bounded by count and by characters.
CACHED_DOCUMENTS = 8
CACHED_CHARS = 20_000_000


class PreviewError(ValueError):
    """A preview that cannot be given; `status` is the HTTP status, the message is Chinese."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Preview:
    """A window of a document's text with the cited passage and its quoted sentences."""

    doc_id: str
    source: str
    title: str
    heading: str  # the cited passage's heading, if the index knows it
    length: int  # characters in the document's extracted text
    start: int  # the window: text == document[start:end]
    end: int
    text: str
    passage: Span  # the cited passage, within the window
    marks: tuple[Span, ...]  # the quoted sentences, cut to the window, in order

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "heading": self.heading,
            "length": self.length,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "passage": {"start": self.passage.start, "end": self.passage.end},
            "highlights": [{"start": mark.start, "end": mark.end} for mark in self.marks],
        }


@dataclass(frozen=True)
class _Known:
    """What the served index says of one document."""

    source: str
    title: str
    sha256: str
    headings: dict[tuple[int, int], str]  # (start, end) of each passage → its heading


class BasePreviews:
    """One Previews per knowledge base, made on its first preview: the default base's is
    given, each other base's follows its Library (a renamed or reopened base gets a new one)."""

    def __init__(self, libraries: Libraries, default: Previews) -> None:
        self.libraries = libraries
        self._known: dict[str, Previews] = {default.library.name: default}
        self._lock = threading.Lock()

    def of(self, library: Library) -> Previews:
        with self._lock:
            known = self._known.get(library.name)
            if known is None or known.library is not library:
                known = self._known[library.name] = Previews(library)
            return known

    def named(self, base: str) -> Previews:
        """The Previews of base `base`; raises a BaseError for a name that is not a base,
        PreviewError 409 for a base without an index."""
        library = self.libraries.get(base)
        try:
            library.retriever  # noqa: B018 (a base without an index has nothing to preview)
        except NotIndexed:
            raise PreviewError(409, f"知识库「{base}」还没有索引") from None
        return self.of(library)


class Previews:
    """Windows of the served index's documents, read from the corpus folder."""

    def __init__(self, library: Library, *, context: int = CONTEXT_CHARS) -> None:
        self.library = library
        self.context = context
        self._known: tuple[Retriever | None, dict[str, _Known]] = (None, {})
        self._cache: OrderedDict[tuple[str, str], list[Document]] = OrderedDict()
        # One extraction at a time: previews must not take more than one core between them.
        self._lock = threading.Lock()

    def preview(
        self, doc_id: str, start: int, end: int, marks: Sequence[tuple[int, int]] = ()
    ) -> Preview:
        """The window around document[start:end], with `marks` (quoted sentences) in it.

        Raises PreviewError: 404 for a document the served index does not hold, 422 for
        offsets outside it, 409 for a file changed or gone since the index was built.
        """
        known = self._documents().get(doc_id)
        if known is None:
            raise PreviewError(404, f"索引里没有这篇文档：{doc_id[:200]}")
        if len(marks) > MAX_MARKS:
            raise PreviewError(422, f"一次最多标出 {MAX_MARKS} 处引文")
        if not 0 <= start <= end or end - start > MAX_PASSAGE_CHARS:
            raise PreviewError(
                422,
                f"位置不对：要 0 ≤ start ≤ end，且一次最多预览 {MAX_PASSAGE_CHARS} 个字的段落",
            )
        text = self._text(doc_id, known)
        if end > len(text) or any(not 0 <= a <= b <= len(text) for a, b in marks):
            raise PreviewError(422, f"位置超出了文档：{known.source} 只有 {len(text)} 个字")
        low, high = _window(text, start, end, self.context)
        shown = [Span(max(a, low), min(b, high)) for a, b in sorted(marks)]
        return Preview(
            doc_id=doc_id,
            source=known.source,
            title=known.title,
            heading=known.headings.get((start, end), ""),
            length=len(text),
            start=low,
            end=high,
            text=text[low:high],
            passage=Span(start, end),
            marks=tuple(span for span in shown if span.start < span.end),
        )

    def _documents(self) -> dict[str, _Known]:
        """doc_id → what the served index says of it; worked out once per served index."""
        retriever = self.library.retriever
        served, known = self._known
        if served is retriever:
            return known
        digests = {source.path: source.sha256 for source in retriever.manifest.sources}
        known = {}
        for chunk in retriever.chunks:
            if chunk.source not in digests:  # cannot happen in a sound index; never guess
                continue
            entry = known.get(chunk.doc_id)
            if entry is None:
                entry = known[chunk.doc_id] = _Known(
                    chunk.source, chunk.title, digests[chunk.source], {}
                )
            entry.headings[chunk.start, chunk.end] = chunk.heading
        self._known = (retriever, known)
        return known

    def _text(self, doc_id: str, known: _Known) -> str:
        """The document's extracted text, as the index was built from it."""
        with self._lock:
            documents = self._cache.get((known.source, known.sha256))
            if documents is None:
                documents = self._read(known)
                self._remember((known.source, known.sha256), documents)
            else:
                self._cache.move_to_end((known.source, known.sha256))
        for document in documents:
            if document.doc_id == doc_id:
                return document.text
        raise PreviewError(409, _changed(known.source))

    def _read(self, known: _Known) -> list[Document]:
        folder = self.library.corpus_dir
        path = folder / known.source
        try:
            resolved = path.resolve(strict=True)
            # Equal only when no part of the name is a symlink or "..": the file is the one
            # in the corpus folder that the build read, not something it points to.
            plain = resolved == folder.resolve() / known.source and resolved.is_file()
        except (OSError, RuntimeError):
            plain = False
        if not plain:
            raise PreviewError(409, f"{known.source} 已经不在文档库里了：等索引重建完再打开")
        try:
            documents, file = read_file(resolved, known.source)
        except (CorpusError, OSError):
            raise PreviewError(409, f"{known.source} 现在读不出来了：等索引重建完再打开") from None
        if file.sha256 != known.sha256:
            raise PreviewError(409, _changed(known.source))
        return documents

    def _remember(self, key: tuple[str, str], documents: list[Document]) -> None:
        self._cache[key] = documents
        while len(self._cache) > CACHED_DOCUMENTS or (
            len(self._cache) > 1 and _chars(self._cache.values()) > CACHED_CHARS
        ):
            self._cache.popitem(last=False)


def _changed(source: str) -> str:
    return f"{source} 在建索引之后改过了，引用的位置对不上：等索引重建完再打开"


def _chars(cached) -> int:
    return sum(len(document.text) for documents in cached for document in documents)


def _window(text: str, start: int, end: int, context: int) -> tuple[int, int]:
    """The window around text[start:end]: `context` characters each side, moved inward to a
    line break when one is near, so that the window holds whole lines."""
    low, high = max(0, start - context), min(len(text), end + context)
    if low > 0:
        line = text.find("\n", low, min(start, low + SNAP_CHARS))
        if line != -1:
            low = line + 1
    if high < len(text):
        line = text.rfind("\n", max(end, high - SNAP_CHARS), high)
        if line != -1:
            high = line
    return low, high


def parse_marks(values: Sequence[str]) -> list[tuple[int, int]]:
    """Spans written as Python slices, "2300:2350", as `GET /api/preview` takes them."""
    marks = []
    for value in values:
        first, _, second = value.partition(":")
        if not (_is_digits(first) and _is_digits(second)):
            raise PreviewError(422, f"mark 要写成 start:end，如 2300:2350，而不是 {value[:40]!r}")
        marks.append((int(first), int(second)))
    return marks


def _is_digits(text: str) -> bool:
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit()


def parse_spec(spec: object) -> tuple[str, str, int, int, list[tuple[int, int]]]:
    """The page's request for a preview, {"base", "doc_id", "start", "end", "marks": [[a,
    b], ...]}, as (base, doc_id, start, end, marks), checked field by field: it comes from
    the browser, so it may be anything. Without "base", the default base."""
    if not isinstance(spec, dict):
        raise PreviewError(422, "预览请求不完整")
    base = spec.get("base", DEFAULT)
    if not isinstance(base, str) or len(base) > 200:
        raise PreviewError(422, "预览请求不完整")
    doc_id, start, end, marks = (spec.get(key) for key in ("doc_id", "start", "end", "marks"))
    if not isinstance(doc_id, str) or not _is_offset(start) or not _is_offset(end):
        raise PreviewError(422, "预览请求不完整")
    if not isinstance(marks, list) or len(marks) > MAX_MARKS:
        raise PreviewError(422, "预览请求不完整")
    spans = []
    for mark in marks:
        if not (isinstance(mark, list) and len(mark) == 2 and all(map(_is_offset, mark))):
            raise PreviewError(422, "预览请求不完整")
        spans.append((mark[0], mark[1]))
    return base, doc_id, start, end, spans


def _is_offset(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9
