"""HTML for the page: answers with their cited passages, the previews of those passages, and
the escaping every piece of the page's HTML goes through (web/render_library.py: the rest).

Everything that comes from a document or a user (passage text, file names, headings,
questions) goes through `html.escape`: anyone may upload a passage, so its text must show as
text and never run as markup or script. Gradio's Chatbot renders Markdown, so each piece
is emitted as one HTML block with no line break in it; Markdown leaves the inside of such a
block alone, so `**`, `[x](y)` or `$$` in a passage stay literal too.

Each answer carries its own copy button, holding the answer as plain text (`answer_text`):
Gradio's copy button copies a message as it was sent, which for an answer is this HTML.
web/page.js puts the button's value on the clipboard.

Each [n] marker is a button that opens source n in its document, and each source has one
too (查看原文): its value says which document and where (`_preview_spec`), and web/sources.js
asks the server for the window around it (`preview_html`, from web/preview.py). An answer
the app remembered (web/feedback.py) has 👍 and 👎 buttons, whose value is its id. Gradio's
sanitizer keeps `value`, `name` and `title` on a button, and drops `data-*` and `aria-*`.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from itertools import pairwise

from retriever import Answer, Citation, Hit
from retriever.answer_rules import is_row
from retriever.bases import DEFAULT
from web.preview import Preview

_MARKER = re.compile(r"\[(\d+)\]")
# A not-found answer quotes nothing; this many of its closest passages show unfolded.
CLOSEST_SHOWN = 3


def html_text(text: str) -> str:
    """Text as HTML: escaped, with its line breaks kept."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>")


def _attribute(text: str) -> str:
    """Text as an HTML attribute value: escaped, with its line breaks as character references
    (a raw one would end the HTML block that Markdown leaves alone)."""
    return html.escape(text).replace("\r", "&#13;").replace("\n", "&#10;")


def answer_html(
    answer: Answer,
    *,
    asked: str | None = None,
    answer_id: str | None = None,
    base: str = DEFAULT,
) -> str:
    """The answer with its [n] markers first, then the numbered passages they point to.

    `asked` is what the user typed when it differs from `answer.question`, the question
    searched after completing a follow-up; the page shows both so the rewrite can be checked.
    `answer_id` is the id ratings name the answer by (web/feedback.py): with it, the answer
    gets 👍 and 👎 buttons. `base` is the knowledge base that answered, whose documents the
    sources' 查看原文 opens.
    """
    parts = ['<div class="qa">']
    if asked is not None:
        parts.append(f'<p class="qa-rewrite">按上文理解为：{html_text(answer.question)}</p>')
    if answer.kind == "generated":
        parts.append('<p class="qa-kind">由模型撰写，每句都已与它所引的段落核对</p>')
    elif answer.fallback and answer.found:
        why = html_text(answer.fallback)
        parts.append(f'<p class="qa-kind">没有采用模型写的回答（{why}），下面是文档原句</p>')
    numbers = {citation.number for citation in answer.citations}
    if answer.found:
        parts.append(f'<div class="qa-answer">{_answer_lines(answer.answer, numbers)}</div>')
    else:
        parts.append(f'<p class="qa-not-found">{html_text(answer.answer)}</p>')
    parts.append(f'<p class="qa-sources-title">{_sources_title(answer)}</p>')
    shown, folded = _shown_and_folded(answer)
    parts.append(f'<ol class="qa-sources">{"".join(_citation_html(c, base) for c in shown)}</ol>')
    if folded:
        parts.append(
            f'<details class="qa-more"><summary>其他相关段落（{len(folded)}）</summary>'
            f'<ol class="qa-sources">{"".join(_citation_html(c, base) for c in folded)}</ol>'
            "</details>"
        )
    # The text to copy is the button's value: Gradio's sanitizer drops data-* attributes.
    parts.append(
        f'<div class="qa-actions">{_rating(answer_id) if answer_id else ""}'
        '<button type="button" class="qa-copy" '
        f'value="{_attribute(answer_text(answer, asked=asked))}">复制答案和来源</button></div>'
    )
    parts.append("</div>")
    return "".join(parts)


# An answer's line that quotes one table row: the row, then its passage's marker.
_ROW_LINE = re.compile(r"^(.+?)((?:\[\d+\])+)$")


def _answer_lines(answer: str, numbers: set[int]) -> str:
    """The answer's text as HTML, its [n] markers as buttons; a line that quotes a table row
    (列：值；列：值, retriever.answer_rules.is_row) as a small table of its header and values."""

    def markers(html_text: str) -> str:
        return _MARKER.sub(
            lambda m: _marker(int(m[1])) if int(m[1]) in numbers else m[0], html_text
        )

    shown = []
    for line in answer.split("\n"):
        quoted = _ROW_LINE.match(line)
        if quoted and is_row(quoted[1]):
            pairs = [pair.split("：", 1) for pair in quoted[1].split("；")]
            head = "".join(f"<th>{html_text(name)}</th>" for name, _ in pairs)
            row = "".join(f"<td>{html_text(value)}</td>" for _, value in pairs)
            shown.append(
                f'<div class="qa-row-line"><table class="qa-row"><tr>{head}</tr><tr>{row}</tr>'
                f"</table>{markers(quoted[2])}</div>"
            )
        else:
            shown.append(f"<p>{markers(html_text(line))}</p>")
    return "".join(shown)


def _marker(number: int) -> str:
    """An [n] marker: a button that opens source n where it stands in its document."""
    return (
        f'<sup class="qa-marker"><button type="button" class="qa-cite" value="{number}" '
        f'title="查看来源 {number} 在原文中的位置">[{number}]</button></sup>'
    )


def _rating(answer_id: str) -> str:
    """👍 and 👎 for an answer; web/feedback.js sends the one clicked, then offers a comment."""
    value = _attribute(answer_id)
    return (
        '<span class="qa-rating">'
        f'<button type="button" class="qa-rate" name="good" value="{value}" '
        'title="这个回答有用">👍 有用</button>'
        f'<button type="button" class="qa-rate" name="bad" value="{value}" '
        'title="这个回答没用或有错">👎 没用</button></span>'
    )


def answer_text(answer: Answer, *, asked: str | None = None) -> str:
    """The answer as plain text, for the clipboard: what the page shows unfolded.

    The answer with its [n] markers, then each source it cites (or, when nothing answers,
    the closest passages) with its file, heading and position, and the passage itself.
    """
    lines = [f"按上文理解为：{answer.question}"] if asked is not None else []
    lines += [answer.answer, "", _sources_title(answer)]
    for citation in _shown_and_folded(answer)[0]:
        where = " · ".join(part for _, part in _where(citation.hit))
        lines += [f"[{citation.number}] {where}", citation.hit.text, ""]
    return "\n".join(lines).rstrip("\n")


def _sources_title(answer: Answer) -> str:
    return "来源" if answer.found else "最接近的段落（不是答案）"


def _shown_and_folded(answer: Answer) -> tuple[list[Citation], list[Citation]]:
    """The passages shown under the answer, and those folded away.

    The passages the answer quotes are shown; the others, kept for checking, fold away so
    that the answer stays in view.
    """
    shown = [c for c in answer.citations if c.quotes] or answer.citations[:CLOSEST_SHOWN]
    return shown, [c for c in answer.citations if c not in shown]


def _where(hit: Hit) -> list[tuple[str, str]]:
    """Where a passage is: (class, text) for its file, its heading if any, its position."""
    parts = [("qa-file", hit.source)]
    if hit.heading:
        parts.append(("qa-heading", hit.heading))
    # Offsets are 0-based and end-exclusive; people count characters from 1.
    parts.append(("qa-position", f"第 {hit.start + 1}–{hit.end} 字"))
    return parts


def _citation_html(citation: Citation, base: str) -> str:
    where = " · ".join(
        f'<span class="{name}">{html_text(part)}</span>' for name, part in _where(citation.hit)
    )
    spec = _attribute(_preview_spec(citation, base))
    return (
        f'<li class="qa-source" value="{citation.number}">'
        f'<div class="qa-where">[{citation.number}] {where}</div>'
        f'<blockquote class="qa-passage">{_highlighted(citation)}</blockquote>'
        f'<button type="button" class="qa-open" value="{spec}" '
        'title="在整篇文档里看这一段，引用的句子高亮">查看原文</button></li>'
    )


def _preview_spec(citation: Citation, base: str) -> str:
    """Which stretch of which document of which base the source's 查看原文 opens, for
    web/sources.js to send back as it is: the server checks every field (web/preview.py)."""
    hit = citation.hit
    marks = [[quote.start, quote.end] for quote in citation.quotes]
    spec = {"doc_id": hit.doc_id, "start": hit.start, "end": hit.end, "marks": marks}
    return json.dumps(spec | {"base": base}, ensure_ascii=False)


def _highlighted(citation: Citation) -> str:
    """The passage, with the sentences the answer quotes from it marked."""
    hit = citation.hit
    pieces, cursor = [], 0
    for quote in sorted(citation.quotes, key=lambda quote: quote.start):
        start, end = quote.start - hit.start, quote.end - hit.start
        pieces.append(html_text(hit.text[cursor:start]))
        pieces.append(f"<mark>{html_text(hit.text[start:end])}</mark>")
        cursor = end
    pieces.append(html_text(hit.text[cursor:]))
    return "".join(pieces)


def preview_html(preview: Preview) -> str:
    """A cited passage in its document, for the page's source preview: the window of text
    around it, the passage set off and the sentences the answer quotes marked.

    Offsets are 0-based; the page counts characters from 1, as the sources do (第 a–b 字).
    """
    where = [f'<span class="qa-file">{html_text(preview.source)}</span>']
    if preview.heading:
        where.append(f'<span class="qa-heading">{html_text(preview.heading)}</span>')
    where.append(
        f'<span class="qa-position">第 {preview.passage.start + 1}–{preview.passage.end} 字</span>'
    )
    shown = f"原文第 {preview.start + 1}–{preview.end} 字，全文共 {preview.length} 字"
    if preview.start > 0 or preview.end < preview.length:
        shown += "；前后从略"
    return _dialog(
        f'<div class="qa-preview-where">{" · ".join(where)}</div>',
        f'<p class="qa-preview-range">{shown}。PDF、Word 和网页显示的是提取出的文字，'
        "不是原来的版式。</p>"
        f'<div class="qa-preview-text">{"…" if preview.start > 0 else ""}'
        f"{_window_html(preview)}{'…' if preview.end < preview.length else ''}</div>",
    )


def preview_error_html(message: str) -> str:
    """Why a source could not be opened, in the preview's place."""
    return _dialog(
        '<div class="qa-preview-where">原文</div>', f'<p class="qa-error">{html_text(message)}</p>'
    )


def preview_loading_html() -> str:
    """What the preview shows while the server reads the document."""
    return _dialog(
        '<div class="qa-preview-where">原文</div>', '<p class="qa-note">正在打开原文…</p>'
    )


def _dialog(head: str, body: str) -> str:
    return (
        '<div class="qa-preview-backdrop"><div class="qa-preview" role="dialog" '
        'aria-modal="true" aria-label="原文">'
        f'<div class="qa-preview-head">{head}<button type="button" class="qa-preview-close" '
        'title="关闭（Esc）">关闭</button></div>'
        f"{body}</div></div>"
    )


def _window_html(preview: Preview) -> str:
    """The window's text, escaped, with the passage in a span and the quotes in <mark>.

    Cut at every edge of the passage and of the marks, each piece is wrapped in what
    covers it, so that overlapping or partial spans still nest properly.
    """
    base = preview.start
    edges = {0, len(preview.text)}
    spans = [preview.passage, *preview.marks]
    for span in spans:
        edges.update(min(max(edge - base, 0), len(preview.text)) for edge in (span.start, span.end))
    cuts = sorted(edges)
    pieces = []
    for low, high in pairwise(cuts):
        piece = html.escape(preview.text[low:high])
        if any(mark.start <= base + low and base + high <= mark.end for mark in preview.marks):
            piece = f"<mark>{piece}</mark>"
        if preview.passage.start <= base + low and base + high <= preview.passage.end:
            piece = f'<span class="qa-preview-passage">{piece}</span>'
        pieces.append(piece)
    return "".join(pieces)


def feedback_html(answer_id: str, rating: str, message: str, *, ok: bool, commented: bool) -> str:
    """What became of a 👍 or 👎, for web/feedback.js to show under the answer it rates.

    A fresh id each time: the page acts on a change of this HTML, and the same message twice
    (two refusals alike) must still be a change.
    """
    return (
        f'<output class="qa-feedback-result" id="fb-{secrets.token_hex(4)}" '
        f'name="{_attribute(answer_id)}" '
        f'data-rating="{_attribute(rating)}" data-ok="{int(ok)}" data-commented="{int(commented)}">'
        f"{html_text(message)}</output>"
    )


def error_html(message: str) -> str:
    """Why a question was not answered, in place of the answer."""
    return f'<div class="qa"><p class="qa-error">{html_text(message)}</p></div>'
