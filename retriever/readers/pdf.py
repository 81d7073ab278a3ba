"""A PDF's text: pypdf opens the file and counts its pages under its stream limits, pdfplumber
lays its pages out (pdf_layout), and the laid-out lines and tables are joined into paragraphs,
list items and table rows (pdf_paragraphs). Past PDF_LAYOUT_MAX_PAGES pages pypdf's plain text
is read instead."""

from __future__ import annotations

import io
import re

from .pdf_layout import FOLDED, MAX_FILE_RULES, PdfLine, PdfPage, is_cjk, layout_page
from .pdf_paragraphs import assemble
from .units import Extracted, ExtractionError, check_length

# pypdf's own cap on what one stream may unpack to is 75 MB. A page's content is 10–50 KB of
# operators; 20 MB is hundreds of dense pages in one stream, and a 200 MB deflate bomb is
# stopped after 20 MB, in a fraction of a second.
PDF_MAX_STREAM_BYTES = 20_000_000
# Long real books have 2,000–3,000 pages; a PDF with more is refused before any text is read.
PDF_MAX_PAGES = 5_000
# Past this many pages a PDF is read by pypdf as plain text, as before pdfplumber: its lines
# joined by their punctuation and length alone, page headers and numbers dropped by their
# repeats, no table found. pdfminer (under pdfplumber) parses pages in pure Python: 0.09 s of
# CPU a dense page of Chinese here, against pypdf's 0.06 s, and twice that in wall time on a
# busy machine. So 1,000 pages would take 90–180 s, past process.EXTRACT_SECONDS; 300 pages
# take 27–55 s.
PDF_LAYOUT_MAX_PAGES = 300


def pdf_text(data: bytes) -> Extracted:
    """A PDF's text as its pages lay it out (pdfplumber): lines that a wrap or a page break cut
    are one paragraph again, page headers, footers and numbers are dropped, and each table row
    is a line "列：值；列：值" with its table's header, marked as a unit
    (see pdf_paragraphs.assemble).

    pypdf still opens the file first, under its stream limits: it says whether a password is
    needed and counts the pages of the flattened page tree (pdfminer's walk skips a page listed
    twice, so a tree that lists one page 10,000 times would pass its count).
    """
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
            if len(reader.pages) > PDF_LAYOUT_MAX_PAGES:
                pages = _pdf_plain_pages(reader)
            else:
                pages = _pdf_layout_pages(data)
        except (LimitReachedError, _StreamTooLarge) as error:
            raise ExtractionError(
                "the PDF goes past the reader's safety limits (a stream that unpacks to over "
                f"{PDF_MAX_STREAM_BYTES // 1_000_000} MB, or structures too large or deep); "
                "it looks built to exhaust memory",
                str(error),
            ) from None
    extracted = assemble(pages)
    if not extracted.text:
        raise ExtractionError("the PDF has no text layer (a scan?); run OCR on it first")
    return extracted


class _StreamTooLarge(Exception):
    """A PDF stream that unpacks to over PDF_MAX_STREAM_BYTES, stopped as it unpacks."""


def _bound_pdfminer_streams() -> None:
    """Make pdfminer unpack streams under PDF_MAX_STREAM_BYTES, as pypdf does under its limits.

    pdfminer has no cap of its own: the 200 KB deflate bomb of
    tests/retriever/test_reader_safety.py took 200 MB and seconds. Its decoders are replaced in
    this process (the child) by ones that stop past the limit; a damaged deflate stream still
    gives what unpacked before the damage, as pdfminer's own decompress_corrupted does.
    """
    import types
    import zlib

    from pdfminer import pdftypes
    from pdfminer.lzw import LZWDecoder

    def checked(out: bytearray) -> None:
        if len(out) > PDF_MAX_STREAM_BYTES:
            raise _StreamTooLarge(f"a stream unpacks to over {PDF_MAX_STREAM_BYTES} bytes")

    def inflate(data: bytes) -> bytes:
        inflater, out, step = zlib.decompressobj(), bytearray(), 1 << 16
        for start in range(0, len(data), step):
            chunk, saved = data[start : start + step], inflater.copy()
            try:
                out += inflater.decompress(chunk, PDF_MAX_STREAM_BYTES + 1 - len(out))
            except zlib.error:  # damaged: keep what the bytes before the damage give
                for byte in chunk:
                    try:
                        out += saved.decompress(bytes((byte,)))
                    except zlib.error:
                        break
                    checked(out)
                break
            checked(out)
            if inflater.eof:
                break
        return bytes(out)

    def unpack_lzw(data: bytes) -> bytes:
        out = bytearray()
        for piece in LZWDecoder(io.BytesIO(data)).run():
            out += piece
            checked(out)
        return bytes(out)

    def unpack_run_length(data: bytes) -> bytes:
        out, at = bytearray(), 0
        while at < len(data) and data[at] != 128:
            length = data[at]
            if length < 128:
                out += data[at + 1 : at + 2 + length]
                at += length + 2
            else:
                out += data[at + 1 : at + 2] * (257 - length)
                at += 2
            checked(out)
        return bytes(out)

    pdftypes.zlib = types.SimpleNamespace(
        decompress=inflate, decompressobj=zlib.decompressobj, error=zlib.error
    )
    pdftypes.decompress_corrupted = inflate
    pdftypes.lzwdecode = unpack_lzw
    pdftypes.rldecode = unpack_run_length


def _pdf_plain_pages(reader) -> list[PdfPage]:
    """Each page's lines as pypdf reads them, for PDFs past PDF_LAYOUT_MAX_PAGES: their widths
    counted in characters, so that a line that ends short of the others still ends its
    paragraph (a heading, a list item, a paragraph's last line)."""
    pages, chars = [], 0
    for page in reader.pages:
        text = (page.extract_text() or "").translate(FOLDED)
        lines = []
        for order, line in enumerate(filter(None, map(str.strip, text.splitlines()))):
            widths = [2 if is_cjk(char) else 1 for char in line]
            word = re.match(r"\S+?(?=\s|$)", line) if widths[0] == 1 else None
            lead = len(word[0]) if word else widths[0]
            lines.append(PdfLine(line, order, 0.0, sum(widths), size=2.0, lead=lead))
        pages.append(PdfPage(lines, []))
        chars += len(text)
        check_length(chars)  # stop as soon as the text is too long
    return pages


def _pdf_layout_pages(data: bytes) -> list[PdfPage]:
    import pdfplumber
    from pdfplumber.utils.exceptions import PdfminerException

    _bound_pdfminer_streams()
    pages, chars, rules = [], 0, MAX_FILE_RULES
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                pages.append(layout_page(page, rules))
                rules -= pages[-1].rules
                page.close()  # its characters and layout are no longer needed
                chars += pages[-1].chars
                check_length(chars)
    except PdfminerException as error:  # pdfplumber wraps what pdfminer raises
        cause = error.args[0] if error.args else None
        if isinstance(cause, (MemoryError, _StreamTooLarge)):
            raise cause from None
        raise
    return pages
