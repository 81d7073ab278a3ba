"""A Markdown file's text as it reads rendered (markdown-it-py), in this process unless it is
long."""

from __future__ import annotations

import re

from .process import extract
from .units import Extracted, Lines, is_caption_label, one_line

# markdown-it-py holds a few hundred bytes of tokens for each character of dense Markdown (500
# for a table of one-letter rows) and takes about 1 s for 100,000 such characters; a 2,000-line
# handbook is 25,000. Longer files are parsed in the child, so that a 50 MB file cannot take
# minutes and gigabytes of the server's process; prose costs a tenth of that.
MARKDOWN_IN_PROCESS_CHARS = 100_000


def markdown_text(source: str) -> Extracted:
    """The text of a Markdown file as it reads rendered, a line to each block: headings marked
    with their level (their words, without the #), list items with their numbers and table
    rows with their header (table_lines) as units. A table's caption is a short label right
    before it (is_caption_label).

    Up to MARKDOWN_IN_PROCESS_CHARS it is parsed in this process, which costs no child; a
    longer file is read in the child, under its limits of time and memory.
    """
    data = source.encode("utf-8")
    return read_markdown(data) if len(source) <= MARKDOWN_IN_PROCESS_CHARS else extract("md", data)


def read_markdown(data: bytes) -> Extracted:
    """markdown_text's reading of UTF-8 Markdown, in either process."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(data.decode("utf-8"))
    out = Lines()
    numbers: list[int | None] = []  # each open list's next number (None: bullets), inner last
    item: list[str] = []  # the number and paragraphs of the list item not yet written
    caption = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        # An item is its number and its paragraphs up to the first other block (a list inside it).
        if item and token.type not in ("paragraph_open", "inline", "paragraph_close"):
            if len(item) > 1:  # not an empty item
                out.add(" ".join(item), kind="item")
            item.clear()
        if token.type == "heading_open":
            out.add(one_line(_markdown_inline(tokens[index + 1])), level=int(token.tag[1]))
        elif token.type == "paragraph_open":
            text = _markdown_inline(tokens[index + 1])  # its line breaks kept, if hard
            line = one_line(text)
            table_next = index + 3 < len(tokens) and tokens[index + 3].type == "table_open"
            if item:
                item.append(line)
            elif table_next and is_caption_label(line):
                caption = line.rstrip("：:")
                out.add(line, kind="caption")
            else:
                out.add(text)
        elif token.type == "bullet_list_open":
            numbers.append(None)
        elif token.type == "ordered_list_open":
            start = token.attrGet("start")  # set where it is not 1
            numbers.append(1 if start is None else int(start))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            numbers.pop()
        elif token.type == "list_item_open":
            number = numbers[-1]
            item.append("•" if number is None else f"{number}{token.markup}")
            numbers[-1] = None if number is None else number + 1
        elif token.type == "table_open":
            rows: list[list[str]] = []
            while tokens[index].type != "table_close":
                if tokens[index].type == "tr_open":
                    rows.append([])
                elif tokens[index].type == "inline":
                    rows[-1].append(one_line(_markdown_inline(tokens[index])))
                index += 1
            out.table(rows, 1, caption)  # a Markdown table's first row is always its header
            caption = ""
        elif token.type in ("fence", "code_block"):
            for line in token.content.splitlines():
                out.add(line)
        elif token.type == "html_block":  # the text of HTML written into the Markdown
            for line in re.sub(r"<[^>]*>", " ", token.content).splitlines():
                out.add(line)
        index += 1
    return out.extracted()


def _markdown_inline(token) -> str:
    """An inline token's text as it reads: its words, code and images' alt text without the
    markup; a soft line break a space, a hard one a newline."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "text_special", "code_inline", "image"):
            parts.append(child.content)  # an image's content is its alt text
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" " if child.type == "softbreak" else "\n")
    return "".join(parts)
