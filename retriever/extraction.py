"""Text out of PDF, Word and HTML files, each read in a child process with bounded time and memory.

These formats are parsed by libraries (pypdf, python-docx, BeautifulSoup) that a damaged or
crafted file can drive into any exception, minutes of work or gigabytes of memory: a 200 KB
PDF holding a deflate stream of 200 MB, a 340 KB .docx that unpacks to 100 MB of XML. So
`extract` reads one file in a fresh Python process that is killed after EXTRACT_SECONDS and
whose address space is capped at CHILD_MEMORY_BYTES, and every failure, whatever the library
raised, comes back as an ExtractionError whose message is the reason in words.

The child is a new interpreter (fork + exec), not a fork of the caller: the caller may hold
ONNX Runtime and FAISS thread pools, which a bare fork copies in an unknown state, and its
gigabytes of mapped libraries would leave no room under an address-space cap. The child runs
this file as a script, so it imports one parsing library and nothing of the retriever package;
that costs 0.2–0.3 s a file, for these formats only (plain text is read in-process).

The parent enforces EXTRACT_SECONDS and passes CHILD_MEMORY_BYTES on the child's command line;
the other limits are read by the child from this file, so changing them in a running parent
has no effect.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import subprocess
import sys
import zipfile

# The largest real files take up to 35 s to read here (a 20 MB web page; Word XML of 500,000
# short paragraphs), a 1,000-page text PDF 6 s. Three times that leaves room for a busy
# machine; a file that needs longer would stall every build and upload.
EXTRACT_SECONDS = 120
# Parsing needs many times the file's size: a 20 MB web page takes 750 MB in BeautifulSoup,
# 20 MB of Word XML 200–400 MB in python-docx. 1 GB reads such files and stops a bomb long
# before it takes the machine's memory.
CHILD_MEMORY_BYTES = 1_000_000_000
# The most text one file may yield: what a 30 MB UTF-8 file of Chinese holds, and about 17
# minutes of embedding at a build's 10,000 characters a second. A file with more is refused,
# not cut, so that an index never holds part of a document without saying so.
MAX_TEXT_CHARS = 10_000_000
# pypdf's own cap on what one stream may unpack to is 75 MB. A page's content is 10–50 KB of
# operators; 20 MB is hundreds of dense pages in one stream, and a 200 MB deflate bomb is
# stopped after 20 MB, in a fraction of a second.
PDF_MAX_STREAM_BYTES = 20_000_000
# Long real books have 2,000–3,000 pages; a PDF with more is refused before any text is read.
PDF_MAX_PAGES = 5_000
# A .docx is a zip, judged by its directory before python-docx inflates every part into memory.
# Word's XML is about 20 KB a page, so 30 MB of it is some 1,500 pages (about 600 MB and 40 s
# to parse here); all parts together, with pictures, may unpack to twice the largest file taken.
DOCX_MAX_XML_BYTES = 30_000_000
DOCX_MAX_UNPACKED_BYTES = 100_000_000
# Word writes a few dozen parts plus one per picture; tens of thousands is a zip bomb of entries.
DOCX_MAX_PARTS = 5_000
# Word's XML deflates about 10:1; zip bombs are 250:1 and more. Parts under 1 MB cannot do
# harm whatever their ratio, so they are not judged by it.
DOCX_MAX_RATIO = 100
DOCX_RATIO_MIN_BYTES = 1_000_000

# Why a file failed when the library's exception says nothing a user can act on.
_UNREADABLE = {
    "pdf": "not a readable PDF: the file is damaged or is not a PDF",
    "docx": "not a readable Word .docx file: the file is damaged or is not a .docx",
    "html": "the web page's text could not be extracted",
}


class ExtractionError(Exception):
    """Why a file's text could not be had, in words for the user; `detail` is the library's own."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


def extract(kind: str, data: bytes) -> str:
    """The text of a file: `kind` is "pdf", "docx" or "html" (`data` then being UTF-8 markup).

    Raises ExtractionError for a file that cannot be read, takes over EXTRACT_SECONDS, needs
    over CHILD_MEMORY_BYTES or yields over MAX_TEXT_CHARS characters. The child has ended, one
    way or the other, when this returns.
    """
    try:
        child = subprocess.run(
            command(kind),
            input=data,
            stdout=subprocess.PIPE,
            # Library warnings are silenced in the child; a crash is reported by its status.
            stderr=subprocess.DEVNULL,
            timeout=EXTRACT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed and reaped the child
        raise ExtractionError(
            f"reading it took over {EXTRACT_SECONDS} s, the limit for one file; "
            "split it into smaller files"
        ) from None
    try:
        reply = json.loads(child.stdout.decode("utf-8", "surrogatepass"))
    except ValueError:
        raise ExtractionError(
            f"{_UNREADABLE[kind]} (its reader crashed)", f"exit status {child.returncode}"
        ) from None
    if "error" in reply:
        raise ExtractionError(reply["error"], reply["detail"])
    return reply["text"]


def command(kind: str) -> list[str]:
    """The child's command line. -P keeps this file's folder, retriever/, off its sys.path."""
    return [sys.executable, "-P", __file__, kind, str(CHILD_MEMORY_BYTES)]


def _pdf_text(data: bytes) -> str:
    import pypdf
    from pypdf.errors import LimitReachedError

    limits = dict.fromkeys(
        (
            "array_based_stream_maximum_output_length",
            "brotli_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "zlib_maximum_output_length",
        ),
        PDF_MAX_STREAM_BYTES,
    )
    with pypdf.apply_configuration(**limits):
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            # pypdf has tried the empty password, which opens files that are only protected
            # against editing or printing; decrypt says whether it worked.
            if reader.is_encrypted and not reader.decrypt(""):
                raise ExtractionError("the PDF is password-protected; save a copy without it")
            if len(reader.pages) > PDF_MAX_PAGES:
                raise ExtractionError(
                    f"the PDF has {len(reader.pages)} pages, over the limit of {PDF_MAX_PAGES} "
                    "for one file; split it into smaller files"
                )
            pages, chars = [], 0
            for page in reader.pages:
                pages.append((page.extract_text() or "").strip())
                chars += len(pages[-1])
                _check_length(chars)  # stop as soon as the text is too long
        except LimitReachedError as error:
            raise ExtractionError(
                "the PDF goes past the reader's safety limits (a stream that unpacks to over "
                f"{PDF_MAX_STREAM_BYTES // 1_000_000} MB, or structures too large or deep); "
                "it looks built to exhaust memory",
                str(error),
            ) from None
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise ExtractionError("the PDF has no text layer (a scan?); run OCR on it first")
    return text


def _docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _check_parts(archive.infolist())
    import docx

    document = docx.Document(io.BytesIO(data))
    lines = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(line for line in lines if line.strip())


def _check_parts(parts: list[zipfile.ZipInfo]) -> None:
    """Refuse a .docx whose zip directory declares too much.

    Declared sizes may lie: zipfile never returns more than a part declares, but its read()
    inflates the whole part before cutting it, so a lying part is stopped by the memory cap.
    """
    if len(parts) > DOCX_MAX_PARTS:
        raise ExtractionError(
            f"the .docx holds {len(parts)} parts, over the {DOCX_MAX_PARTS} a Word file "
            "could need; it looks like a zip bomb"
        )
    xml = sum(part.file_size for part in parts if part.filename.endswith((".xml", ".rels")))
    if xml > DOCX_MAX_XML_BYTES:
        raise ExtractionError(
            f"the .docx unpacks to {xml / 1e6:.0f} MB of XML, over the limit of "
            f"{DOCX_MAX_XML_BYTES // 1_000_000} MB (about 1,500 pages); split the document"
        )
    total = sum(part.file_size for part in parts)
    if total > DOCX_MAX_UNPACKED_BYTES:
        raise ExtractionError(
            f"the .docx unpacks to {total / 1e6:.0f} MB, over the limit of "
            f"{DOCX_MAX_UNPACKED_BYTES // 1_000_000} MB; split the document"
        )
    for part in parts:
        if (
            part.file_size > DOCX_RATIO_MIN_BYTES
            and part.file_size > DOCX_MAX_RATIO * part.compress_size
        ):
            raise ExtractionError(
                f"the .docx part {part.filename} is compressed "
                f"{part.file_size / max(part.compress_size, 1):.0f}:1, as only zip bombs are"
            )


def _html_text(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data.decode("utf-8"), "html.parser")
    # Scripts and styles are code, not content; they must never reach an answer.
    for element in soup(["script", "style", "noscript", "template"]):
        element.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _check_length(chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise ExtractionError(
            f"it holds over {MAX_TEXT_CHARS:,} characters of text, the limit for one file; "
            "split it into smaller files"
        )


_READERS = {"pdf": _pdf_text, "docx": _docx_text, "html": _html_text}


def _main() -> None:
    """The child: limits first, then the file from stdin, then one JSON reply on stdout."""
    kind, memory = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # CPU seconds, as a backstop that ends a child whose parent died before it could kill it.
    resource.setrlimit(resource.RLIMIT_CPU, (EXTRACT_SECONDS + 5, EXTRACT_SECONDS + 10))
    # pypdf logs every damaged object it skips; the reply's reason says what matters.
    logging.disable(logging.CRITICAL)
    data = sys.stdin.buffer.read()
    try:
        text = _READERS[kind](data)
        _check_length(len(text))
        reply = {"text": text}
    except ExtractionError as error:
        reply = {"error": str(error), "detail": error.detail}
    except MemoryError:
        reply = {
            "error": f"reading it needs over {memory / 1e9:g} GB of memory, the limit for one "
            "file; split it into smaller files",
            "detail": "MemoryError",
        }
    except Exception as error:  # any failure of a library on any input is the file's fault
        reply = {"error": _UNREADABLE[kind], "detail": f"{type(error).__name__}: {error}"[:500]}
    sys.stdout.buffer.write(json.dumps(reply, ensure_ascii=False).encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    _main()
