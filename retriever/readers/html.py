"""A web page's text, a line to each block (BeautifulSoup): headings with their level, list
items with their numbers, and the rows of data tables with their header."""

from __future__ import annotations

from .units import Extracted, Lines, one_line


def html_text(data: bytes) -> Extracted:
    """A page's text, a line to each block: headings marked with their level, list items
    with their numbers and table rows with their header (table_lines) as units."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data.decode("utf-8"), "html.parser")
    # Scripts and styles are code, not content; they must never reach an answer.
    for element in soup(["script", "style", "noscript", "template"]):
        element.decompose()
    out = Lines()
    _html_blocks(soup, out)
    return out.extracted()


# Elements inside a line of text; any other element begins and ends a line.
_HTML_INLINE = frozenset(
    {"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn"}
    | {"em", "font", "i", "img", "ins", "kbd", "label", "mark", "q", "rp", "rt", "ruby", "s"}
    | {"samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr"}
)
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# The HTML standard's limits on a cell's spans: no crafted span makes more cells than these.
_HTML_MAX_COLSPAN, _HTML_MAX_ROWSPAN = 1000, 65534


def _html_blocks(root, out: Lines) -> None:
    """Write what is inside `root` into `out`, a line to each block.

    The tree is walked with a stack, not by recursion: pages nest elements tens of thousands
    deep. (Lists, data tables and headings recurse, through _html_line, as deep as they nest.)
    """
    from bs4.element import NavigableString, PreformattedString

    words: list[str] = []  # the text of the line being read

    def end_line() -> None:
        out.add(one_line("".join(words)))
        words.clear()

    stack = [(iter(root.children), False)]  # each element's children, and if it is a block
    while stack:
        children, block = stack[-1]
        node = next(children, None)
        if node is None:
            stack.pop()
            if block:
                end_line()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctypes, CDATA
                words.append(node)
        elif node.name in _HTML_INLINE:
            stack.append((iter(node.children), False))
        else:
            end_line()
            if node.name in _HTML_HEADINGS:
                out.add(_html_line(node), level=int(node.name[1]))
            elif node.name in ("ol", "ul"):
                _html_list(node, out)
            elif node.name == "table" and (rows := _html_data_rows(node)) is not None:
                _html_table(node, rows, out)
            elif node.name == "pre":  # its lines are the author's
                for line in node.get_text().splitlines():
                    out.add(line)
            else:
                stack.append((iter(node.children), True))
    end_line()


def _html_line(element) -> str:
    """An element's text as one line (a cell's, an item's, a heading's)."""
    inner = Lines()
    _html_blocks(element, inner)
    return " ".join(inner.lines)


def _html_list(element, out: Lines) -> None:
    """A list's items as units, each with its number ("3. " in a list that starts at 3) or
    "• " in front; a list inside an item follows that item."""
    number = _html_number(element.get("start"), 1, 2**31) if element.name == "ol" else None
    for item in _html_children(element, "li"):
        inner = [part.extract() for part in _html_children(item, "ol", "ul")]
        text = _html_line(item)
        if text:
            out.add(f"{'•' if number is None else f'{number}.'} {text}", kind="item")
        if number is not None:
            number += 1  # an empty item takes its number too
        for part in inner:
            _html_list(part, out)


def _html_children(element, *names: str) -> list:
    """The element's children of these names. (Not find_all(recursive=False): its filters
    cost as much as the parse on a page of tables.)"""
    return [child for child in element.children if child.name in names]


def _html_data_rows(table) -> list[tuple[bool, list]] | None:
    """A table's own rows, each as whether it is in the thead and its cells; None for a table
    that lays the page out rather than holding data: one with tables or headings inside, or
    without a row of two cells, whose content is read as blocks."""
    if any(element.name in ("table", *_HTML_HEADINGS) for element in table.descendants):
        return None
    rows = []
    for child in _html_children(table, "tr", "thead", "tbody", "tfoot"):
        for row in [child] if child.name == "tr" else _html_children(child, "tr"):
            rows.append((child.name == "thead", _html_children(row, "td", "th")))
    return rows if any(len(cells) > 1 for _, cells in rows) else None


def _html_table(table, rows: list[tuple[bool, list]], out: Lines) -> None:
    """A data table (its _html_data_rows): its caption, then its rows with their header: the
    rows of its thead, else its first rows of <th> cells alone."""
    caption = _html_children(table, "caption")
    title = _html_line(caption[0]) if caption else ""
    out.add(title, kind="caption")
    header_rows = 0
    for in_head, cells in rows:
        if not in_head and not (cells and all(cell.name == "th" for cell in cells)):
            break
        header_rows += 1
    grid: list[list[str]] = []
    spanned: dict[int, tuple[str, int]] = {}  # column → text of a cell above and rows it has left
    for _, cells in rows:
        line = {column: text for column, (text, _) in spanned.items()}
        spanned = {column: (text, left - 1) for column, (text, left) in spanned.items() if left > 1}
        column = 0
        for cell in cells:
            while column in line:
                column += 1
            text = _html_line(cell)
            down = _html_number(cell.get("rowspan"), 1, _HTML_MAX_ROWSPAN)
            for _ in range(_html_number(cell.get("colspan"), 1, _HTML_MAX_COLSPAN)):
                line[column] = text
                if down > 1:
                    spanned[column] = (text, down - 1)
                column += 1
        grid.append([line.get(place, "") for place in range(max(line, default=-1) + 1)])
    out.table(grid, header_rows, title)


def _html_number(value, default: int, limit: int) -> int:
    """A whole-number attribute (start, rowspan, colspan), from 1 to `limit`; else `default`."""
    try:
        return min(max(int(value), 1), limit)
    except (TypeError, ValueError):
        return default
