"""Reading a file in a child process with bounded time and memory.

PDF, Word and HTML (and long Markdown) are parsed by libraries (pdfplumber and pypdf,
python-docx, BeautifulSoup, markdown-it-py) that a damaged or crafted file can drive into any
exception, minutes of work or gigabytes of memory: a 200 KB PDF holding a deflate stream of
200 MB, a 340 KB .docx that unpacks to 100 MB of XML. So `extract` reads one file in a fresh
Python process that is killed after EXTRACT_SECONDS and whose address space is capped at
CHILD_MEMORY_BYTES, and every failure, whatever the library raised, comes back as an
ExtractionError whose message is the reason in words.

The child is a new interpreter (fork + exec), not a fork of the caller: the caller may hold
ONNX Runtime and FAISS thread pools, which a bare fork copies in an unknown state, and its
gigabytes of mapped libraries would leave no room under an address-space cap. The child runs
child.py as a script, so it imports one parsing library and the readers of this folder, and
nothing else of the retriever package; that costs 0.2–0.3 s a file, for these formats only
(plain text is read in-process, and so is Markdown but for long files: markdown_text).

The parent enforces EXTRACT_SECONDS and passes CHILD_MEMORY_BYTES on the child's command line;
the other limits are read by the child from the readers' modules, so changing them in a running
parent has no effect.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys

from .units import Extracted, ExtractionError, MarkedHeading, MarkedUnit, check_length

# The largest real files take up to 35 s to read here (a 20 MB web page; Word XML of 500,000
# short paragraphs), a 1,000-page text PDF 6 s. Three times that leaves room for a busy
# machine; a file that needs longer would stall every build and upload.
EXTRACT_SECONDS = 120
# Parsing needs many times the file's size: a 20 MB web page takes 750 MB in BeautifulSoup,
# 20 MB of Word XML 200–400 MB in python-docx. 1 GB reads such files and stops a bomb long
# before it takes the machine's memory.
CHILD_MEMORY_BYTES = 1_000_000_000

# Why a file failed when the library's exception says nothing a user can act on.
_UNREADABLE = {
    "pdf": "not a readable PDF: the file is damaged or is not a PDF",
    "docx": "not a readable Word .docx file: the file is damaged or is not a .docx",
    "html": "the web page's text could not be extracted",
    "md": "the Markdown file's text could not be extracted",
}


def extract(kind: str, data: bytes) -> Extracted:
    """The text of a file: `kind` is "pdf", "docx", "html" or "md" (the last two as UTF-8).

    Raises ExtractionError for a file that cannot be read, takes over EXTRACT_SECONDS, needs
    over CHILD_MEMORY_BYTES or yields over units.MAX_TEXT_CHARS characters. The child has ended, one
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
    return Extracted(
        reply["text"],
        tuple(MarkedHeading(*pair) for pair in reply["headings"]),
        tuple(MarkedUnit(*unit) for unit in reply["units"]),
    )


def command(kind: str) -> list[str]:
    """The child's command line. -P keeps child.py's folder off its sys.path (see child.py)."""
    return [sys.executable, "-P", _CHILD, kind, str(CHILD_MEMORY_BYTES)]


_CHILD = os.path.join(os.path.dirname(__file__), "child.py")


def main() -> None:
    """The child: limits first, then the file from stdin, then one JSON reply on stdout."""
    kind, memory = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # CPU seconds, as a backstop that ends a child whose parent died before it could kill it.
    resource.setrlimit(resource.RLIMIT_CPU, (EXTRACT_SECONDS + 5, EXTRACT_SECONDS + 10))
    # pypdf logs every damaged object it skips; the reply's reason says what matters.
    logging.disable(logging.CRITICAL)
    # The readers are imported here, in the child: the parent reads no format but Markdown
    # itself (markdown.py, which imports this module).
    from . import html, markdown, pdf, word

    readers = {
        "pdf": pdf.pdf_text,
        "docx": word.docx_text,
        "html": html.html_text,
        "md": markdown.read_markdown,
    }
    data = sys.stdin.buffer.read()
    try:
        extracted = readers[kind](data)
        check_length(len(extracted.text))
        reply = {"text": extracted.text, "headings": extracted.headings, "units": extracted.units}
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
