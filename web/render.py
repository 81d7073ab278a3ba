"""HTML for the page: answers with their cited passages, the index line, the document list.

Everything that comes from a document or a user (passage text, file names, headings,
questions) goes through `html.escape`: anyone may upload a passage, so its text must show as
text and never run as markup or script. Gradio's Chatbot renders Markdown, so each piece
is emitted as one HTML block with no line break in it; Markdown leaves the inside of such a
block alone, so `**`, `[x](y)` or `$$` in a passage stay literal too.

Each answer carries its own copy button, holding the answer as plain text (`answer_text`):
Gradio's copy button copies a message as it was sent, which for an answer is this HTML.
web/page.js puts the button's value on the clipboard.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime

from retriever import Answer, Citation, Hit, IndexInfo
from retriever.trash import TrashEntry
from web.library import BuildState, DocumentRow, Outcome
from web.reasons import build_error

_MARKER = re.compile(r"\[(\d+)\]")
# A not-found answer quotes nothing; this many of its closest passages show unfolded.
CLOSEST_SHOWN = 3


def _text(text: str) -> str:
    """Text as HTML: escaped, with its line breaks kept."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>")


def _attribute(text: str) -> str:
    """Text as an HTML attribute value: escaped, with its line breaks as character references
    (a raw one would end the HTML block that Markdown leaves alone)."""
    return html.escape(text).replace("\r", "&#13;").replace("\n", "&#10;")


def answer_html(answer: Answer, *, asked: str | None = None) -> str:
    """The answer with its [n] markers first, then the numbered passages they point to.

    `asked` is what the user typed when it differs from `answer.question`, the question
    searched after completing a follow-up; the page shows both so the rewrite can be checked.
    """
    parts = ['<div class="qa">']
    if asked is not None:
        parts.append(f'<p class="qa-rewrite">按上文理解为：{_text(answer.question)}</p>')
    numbers = {citation.number for citation in answer.citations}
    if answer.found:
        text = _MARKER.sub(
            lambda m: f'<sup class="qa-marker">[{m[1]}]</sup>' if int(m[1]) in numbers else m[0],
            _text(answer.answer),
        )
        parts.append(f'<p class="qa-answer">{text}</p>')
    else:
        parts.append(f'<p class="qa-not-found">{_text(answer.answer)}</p>')
    parts.append(f'<p class="qa-sources-title">{_sources_title(answer)}</p>')
    shown, folded = _shown_and_folded(answer)
    parts.append(f'<ol class="qa-sources">{"".join(map(_citation_html, shown))}</ol>')
    if folded:
        parts.append(
            f'<details class="qa-more"><summary>其他相关段落（{len(folded)}）</summary>'
            f'<ol class="qa-sources">{"".join(map(_citation_html, folded))}</ol></details>'
        )
    # The text to copy is the button's value: Gradio's sanitizer drops data-* attributes.
    parts.append(
        '<div class="qa-actions"><button type="button" class="qa-copy" '
        f'value="{_attribute(answer_text(answer, asked=asked))}">复制答案和来源</button></div>'
    )
    parts.append("</div>")
    return "".join(parts)


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


def _citation_html(citation: Citation) -> str:
    where = " · ".join(
        f'<span class="{name}">{_text(part)}</span>' for name, part in _where(citation.hit)
    )
    return (
        f'<li class="qa-source" value="{citation.number}">'
        f'<div class="qa-where">[{citation.number}] {where}</div>'
        f'<blockquote class="qa-passage">{_highlighted(citation)}</blockquote></li>'
    )


def _highlighted(citation: Citation) -> str:
    """The passage, with the sentences the answer quotes from it marked."""
    hit = citation.hit
    pieces, cursor = [], 0
    for quote in sorted(citation.quotes, key=lambda quote: quote.start):
        start, end = quote.start - hit.start, quote.end - hit.start
        pieces.append(_text(hit.text[cursor:start]))
        pieces.append(f"<mark>{_text(hit.text[start:end])}</mark>")
        cursor = end
    pieces.append(_text(hit.text[cursor:]))
    return "".join(pieces)


def error_html(message: str) -> str:
    """Why a question was not answered, in place of the answer."""
    return f'<div class="qa"><p class="qa-error">{_text(message)}</p></div>'


def info_html(info: IndexInfo, state: BuildState) -> str:
    """Which index the page serves: documents, chunks, model, when it was built."""
    built = datetime.fromisoformat(info.created_at).strftime("%Y-%m-%d %H:%M %Z").strip()
    line = (
        f"当前索引：{info.documents} 篇文档 · {info.chunks} 个段落 · "
        f"模型 {_text(info.model)} · 建于 {_text(built)}"
    )
    if state.running:
        line += f' · <span class="qa-building">正在重建索引（{_text(state.stage)}）</span>'
    elif state.error:
        line += f' · <span class="qa-error">上次重建失败：{_text(build_error(state.error))}</span>'
    return f'<div class="qa-info">{line}</div>'


def documents_html(rows: Sequence[DocumentRow]) -> str:
    """The corpus folder's documents as a table: name, size, whether the index holds them."""
    if not rows:
        return '<p class="qa-docs-empty">文档库是空的。</p>'
    body = "".join(
        f"<tr><td>{_text(row.name)}</td><td>{_size(row.size)}</td><td>{_text(row.status)}</td></tr>"
        for row in rows
    )
    return (
        '<table class="qa-docs"><thead><tr><th>文件</th><th>大小</th><th>状态</th></tr>'
        f"</thead><tbody>{body}</tbody></table>"
    )


# Why a file is in the trash, as the page says it.
TRASH_REASONS = {
    "removed": "被删除",
    "replaced": "被同名上传替换",
    "restored-over": "被恢复的旧版本替换",
}


def trash_html(entries: Sequence[TrashEntry]) -> str:
    """The trash as a table: name, size, when and why each file went there."""
    if not entries:
        return '<p class="qa-docs-empty">回收站是空的。</p>'
    body = "".join(
        f"<tr><td>{_text(entry.name)}</td><td>{_size(entry.size)}</td>"
        f"<td>{_text(trash_label(entry))}</td></tr>"
        for entry in entries
    )
    return (
        '<table class="qa-docs"><thead><tr><th>文件</th><th>大小</th><th>何时、为何移入</th></tr>'
        f"</thead><tbody>{body}</tbody></table>"
    )


def trash_label(entry: TrashEntry) -> str:
    """When and why a file went to the trash, e.g. "2026-11-29 01:15 UTC 被删除"."""
    when = datetime.fromisoformat(entry.removed_at).strftime("%Y-%m-%d %H:%M %Z").strip()
    return f"{when} {TRASH_REASONS.get(entry.reason, entry.reason)}"


def outcomes_html(outcomes: Sequence[Outcome], note: str = "") -> str:
    """What became of each uploaded or removed file, then `note` (how the rebuild went)."""
    lines = [
        f'<p class="{"qa-ok" if outcome.ok else "qa-error"}">{_text(outcome.message)}</p>'
        for outcome in outcomes
    ]
    if note:
        lines.append(f'<p class="qa-note">{_text(note)}</p>')
    return f'<div class="qa-outcomes">{"".join(lines)}</div>'


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
