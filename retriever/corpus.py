"""Reading the corpus: files on disk → Documents, and the hashes that tell a build what changed.

Plain text is decoded by detection (retriever.text.decode). PDF, Word and HTML files are read
by libraries in a child process whose time and memory are bounded (retriever.readers);
Markdown is read into the text it renders to, in this process unless it is long
(retriever.readers.markdown_text).
A file that cannot be read, whatever the reason, is reported and skipped: one bad file never
stops a build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from retriever.readers import (
    READER_VERSION,
    Extracted,
    ExtractionError,
    MarkedHeading,
    MarkedUnit,
    extract,
    markdown_text,
)
from retriever.text import CorpusError, decode, reject_binary

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
RECORD_SUFFIXES = (".jsonl",)
# Formats whose text is extracted by a library; citations point into the extracted text.
DOCUMENT_SUFFIXES = (".pdf", ".docx", ".html", ".htm")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + RECORD_SUFFIXES + DOCUMENT_SUFFIXES
# Files whose text is read as structure (headings, tables, lists), not taken as it is.
STRUCTURED_SUFFIXES = (*DOCUMENT_SUFFIXES, ".md")

# Big enough for any book-length text file, small enough that a stray dump or binary
# does not stall a build for minutes. Decimal, as the messages and the docs say "50 MB".
MAX_FILE_BYTES = 50_000_000


@dataclass(frozen=True)
class Document:
    """One unit of source text, exactly as decoded from the file: citations point into it."""

    doc_id: str  # the relative path, or "path#record-id" for records of a .jsonl file
    source: str  # the relative path of the file it came from
    title: str
    text: str
    # The heading lines the file marks as such (Word's heading styles), which set the levels
    # of headings in chunking; plain text has none.
    headings: tuple[MarkedHeading, ...] = ()
    # The table rows and list items the file marks (retriever.readers), each a passage of
    # its own in chunking.
    units: tuple[MarkedUnit, ...] = ()


@dataclass(frozen=True)
class SourceFile:
    """What a build records about each corpus file, so that staleness is decided by content."""

    path: str
    sha256: str
    size: int
    documents: int
    encoding: str


@dataclass(frozen=True)
class Skipped:
    """A file left out of the build, and the reason in words a user can act on."""

    path: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    files: list[SourceFile]
    skipped: list[Skipped]


def read_file(path: Path, relative: str) -> tuple[list[Document], SourceFile]:
    """Read one corpus file into Documents. Raises CorpusError with a message naming the file."""
    size = path.stat().st_size
    if size == 0:
        raise CorpusError(f"{relative}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise CorpusError(
            f"{relative}: {size / 1e6:.1f} MB is over the {MAX_FILE_BYTES / 1e6:.0f} MB limit "
            "for one file; split it into smaller files"
        )
    data = path.read_bytes()
    extracted, encoding = extract_document(data, path.suffix.lower(), relative)
    if path.suffix.lower() in RECORD_SUFFIXES:
        documents = _records(extracted.text, relative)
    else:
        if not extracted.text.strip():
            raise CorpusError(f"{relative}: the file holds no text")
        documents = [
            Document(
                doc_id=relative,
                source=relative,
                title=path.stem,
                text=extracted.text,
                headings=extracted.headings,
                units=extracted.units,
            )
        ]
    digest = hashlib.sha256(data).hexdigest()
    return documents, SourceFile(relative, digest, size, len(documents), encoding)


def extract_text(data: bytes, suffix: str, name: str) -> tuple[str, str]:
    """The text of a file's bytes and how it was had (an encoding, or the format's name).

    This is the text that citations' offsets point into, for every format. Raises CorpusError,
    and nothing else, for a file that cannot be read. PDF, Word and HTML text is had in a child
    process and refused when it passes the limits of retriever.readers (time, memory, and
    MAX_TEXT_CHARS characters: refused rather than cut, so no document is indexed in part).
    """
    extracted, how = extract_document(data, suffix, name)
    return extracted.text, how


def extract_document(data: bytes, suffix: str, name: str) -> tuple[Extracted, str]:
    """As `extract_text`, with the headings and units the file marks (retriever.readers).

    A PDF, Word or HTML file's reading is kept a while (`_Kept`), so that an upload checked
    by reading it (web/uploads.py) is not read again by the build that follows."""
    if suffix not in DOCUMENT_SUFFIXES:
        return _extract_document(data, suffix, name)
    key = (hashlib.sha256(data).hexdigest(), suffix)
    kept = _KEPT.get(key)
    if kept is None:
        kept = _extract_document(data, suffix, name)
        _KEPT.put(key, kept)
    return kept


def _extract_document(data: bytes, suffix: str, name: str) -> tuple[Extracted, str]:
    try:
        if suffix in (".pdf", ".docx"):
            kind = suffix[1:]
            return extract(kind, data), kind
        text, encoding = decode(data, name)
        if suffix in (".html", ".htm"):
            return extract("html", text.encode("utf-8")), encoding
        reject_binary(text, name)
        if suffix == ".md":  # read as the structure it marks
            return markdown_text(text), encoding
        return Extracted(text), encoding
    except ExtractionError as error:
        if error.detail:
            logger.info("%s: %s", name, error.detail)
        raise CorpusError(f"{name}: {error}") from None
    except CorpusError:
        raise
    except Exception as error:  # a last resort: no file may fail in a way nobody foresaw
        logger.exception("reading %s failed", name)
        raise CorpusError(f"{name}: could not be read ({type(error).__name__})") from None


class _Kept:
    """The latest readings of documents by their bytes' sha256 and suffix, the least recent
    dropped past KEPT_CHARS characters of text. Only readings that succeeded are kept: an
    error names the file, and a reading is the same whatever the file's name."""

    def __init__(self) -> None:
        self._readings: OrderedDict[tuple[str, str], tuple[Extracted, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[Extracted, str] | None:
        with self._lock:
            if key in self._readings:
                self._readings.move_to_end(key)
            return self._readings.get(key)

    def put(self, key: tuple[str, str], reading: tuple[Extracted, str]) -> None:
        with self._lock:
            self._readings[key] = reading
            while sum(len(kept.text) for kept, _ in self._readings.values()) > KEPT_CHARS:
                self._readings.popitem(last=False)


# Characters of document text kept read (retriever.readers.MAX_TEXT_CHARS is one file's
# limit, so the latest file is always kept): a few tens of MB at most.
KEPT_CHARS = 10_000_000
_KEPT = _Kept()


def _records(text: str, relative: str) -> list[Document]:
    """Parse a .jsonl file of {"id", "title", "text"} records, the layout of the eval sets."""
    documents = []
    seen: set[str] = set()
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line separators.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record_id, record_text = str(record["id"]), record["text"]
        # Deeply nested JSON raises RecursionError rather than a decoding error.
        except (json.JSONDecodeError, RecursionError, KeyError, TypeError) as error:
            raise CorpusError(
                f'{relative}, line {number}: expected a JSON object with "id" and "text" ({error})'
            ) from None
        if record_id in seen:
            raise CorpusError(f"{relative}, line {number}: id {record_id!r} appears twice")
        seen.add(record_id)
        if isinstance(record_text, str) and record_text.strip():
            documents.append(
                Document(
                    doc_id=f"{relative}#{record_id}",
                    source=relative,
                    title=str(record.get("title") or ""),
                    text=record_text,
                )
            )
    if not documents:
        raise CorpusError(f"{relative}: no records with text")
    return documents


# What a symbolic link of the corpus folder counts as in an index's corpus hashes: not the
# hash of what it points to, which is never read, yet a change when a link comes or goes.
LINK = "symbolic link"


@dataclass(frozen=True)
class Listing:
    """The files under a corpus folder that a build reads, and the links it skips."""

    files: list[Path]
    links: list[Skipped]


def list_corpus(root: Path) -> Listing:
    """The files under `root` a build reads, in a stable order, and the symbolic links it
    skips, each with the reason. Hidden files and folders are passed over.

    A link, to a file or to a folder, is never followed: what it points to may lie outside
    the folder (the preview refuses such a file too), and a build indexes only what is in
    it. `root` may also be a single file, such as an evaluation set's corpus.jsonl.
    """
    if root.is_file():
        return Listing([root], [])
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist")
    files: list[Path] = []
    linked: list[Path] = []
    # os.walk never enters a linked folder (followlinks=False); it lists it among the folders.
    for current, folders, names in os.walk(root):
        here = Path(current)
        folders[:] = [name for name in folders if not name.startswith(".")]
        linked.extend(here / name for name in folders if (here / name).is_symlink())
        for name in names:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if path.is_symlink():
                linked.append(path)
            elif path.is_file():
                files.append(path)
    why = "a symbolic link, which builds do not follow: only files inside the corpus folder count"
    names = [relative_name(path, root) for path in sorted(linked)]
    return Listing(sorted(files), [Skipped(name, f"{name}: {why}") for name in names])


def corpus_files(root: Path) -> list[Path]:
    """The files under `root` a build reads, in a stable order (see list_corpus)."""
    return list_corpus(root).files


def read_corpus(root: Path) -> Corpus:
    """Read every supported file under `root`; unreadable files are reported, not fatal."""
    documents: list[Document] = []
    files: list[SourceFile] = []
    listing = list_corpus(root)
    skipped = list(listing.links)
    for path in listing.files:
        outcome = read_one(path, root)
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            continue
        file_documents, source = outcome
        documents.extend(file_documents)
        files.append(source)
    return Corpus(documents, files, skipped)


def read_one(path: Path, root: Path) -> tuple[list[Document], SourceFile] | Skipped:
    """Read one corpus file under `root`: its Documents, or why it is skipped (whatever the
    reason: one file never stops a build)."""
    relative = relative_name(path, root)
    try:
        return read_file(path, relative)
    except CorpusError as error:
        logger.warning("skipping %s", error)
        return Skipped(relative, str(error))
    except OSError as error:
        logger.warning("skipping %s: %s", relative, error)
        return Skipped(relative, f"{relative}: cannot be read ({error.strerror})")
    except Exception as error:  # a last resort
        logger.exception("skipping %s", relative)
        return Skipped(relative, f"{relative}: could not be read ({type(error).__name__})")


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of each supported file under `root`, to compare with an index's manifest; a
    symbolic link counts as LINK, so that one coming or going is a change a build reports.

    A file whose text a structure reader makes (PDF, Word, HTML, Markdown) also names that
    reader's version: when the readers change, such files count as changed, and are read again.
    """
    listing = list_corpus(root)
    hashes = {
        relative_name(path, root): hashlib.sha256(path.read_bytes()).hexdigest()
        + (f"+reader{READER_VERSION}" if path.suffix.lower() in STRUCTURED_SUFFIXES else "")
        for path in listing.files
    }
    return hashes | {link.path: LINK for link in listing.links}


def relative_name(path: Path, root: Path) -> str:
    """How a corpus file is named in an index: its path under `root` (or its name, when the
    corpus is a single file)."""
    return path.name if root.is_file() else path.relative_to(root).as_posix()
