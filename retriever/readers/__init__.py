"""Text out of PDF, Word, HTML and Markdown files, as structure: headings, table rows with
their header, list items with their numbers (MarkedHeading, MarkedUnit).

One module a format (pdf, word, html, markdown); units.py holds what they write, and
process.py the child process they run in, bounded in time and memory (started as child.py).
`extract` reads a PDF, Word or HTML file in the child; `markdown_text` reads Markdown, in this
process unless the file is long.
"""

from .markdown import markdown_text
from .process import extract
from .units import Extracted, ExtractionError, MarkedHeading, MarkedUnit

# Which readers made a file's text: raised whenever a reader gives other text (or units) for
# the same bytes, so that a build reads such files again instead of keeping passages whose
# offsets point into the old text (retriever.corpus.file_hashes). 2: tables as rows with
# their header, list numbers, marked units.
READER_VERSION = 2

__all__ = [
    "READER_VERSION",
    "Extracted",
    "ExtractionError",
    "MarkedHeading",
    "MarkedUnit",
    "extract",
    "markdown_text",
]
