"""HTML for the page: answers with their cited passages, the index line, the document list.

Everything that comes from a document or a user (passage text, file names, headings,
questions) goes through `html.escape`: anyone may upload a passage, so its text must show as
text and never run as markup or script. Gradio's Chatbot renders Markdown, so each piece
is emitted as one HTML block with no blank line in it; Markdown leaves the inside of such a
block alone, so `**`, `[x](y)` or `$$` in a passage stay literal too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime

from retriever import Answer, Citation, IndexInfo
from retriever.trash import TrashEntry
from web.library import BuildState, DocumentRow, Outcome

_MARKER = re.compile(r"\[(\d+)\]")
# A not-found answer quotes nothing; this many of its closest passages show unfolded.
CLOSEST_SHOWN = 3


def _text(text: str) -> str:
    """Text as HTML: escaped, with its line breaks kept."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>")


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
        parts.append('<p class="qa-sources-title">来源</p>')
    else:
        parts.append(f'<p class="qa-not-found">{_text(answer.answer)}</p>')
        parts.append('<p class="qa-sources-title">最接近的段落（不是答案）</p>')
    # The passages the answer quotes are shown; the others, kept for checking, fold away so
    # that the answer stays in view.
    shown = [c for c in answer.citations if c.quotes] or answer.citations[:CLOSEST_SHOWN]
    folded = [c for c in answer.citations if c not in shown]
    parts.append(f'<ol class="qa-sources">{"".join(map(_citation_html, shown))}</ol>')
    if folded:
        parts.append(
            f'<details class="qa-more"><summary>其他相关段落（{len(folded)}）</summary>'
            f'<ol class="qa-sources">{"".join(map(_citation_html, folded))}</ol></details>'
        )
    parts.append("</div>")
    return "".join(parts)


def _citation_html(citation: Citation) -> str:
    hit = citation.hit
    where = [f'<span class="qa-file">{_text(hit.source)}</span>']
    if hit.heading:
        where.append(f'<span class="qa-heading">{_text(hit.heading)}</span>')
    # Offsets are 0-based and end-exclusive; people count characters from 1.
    where.append(f'<span class="qa-position">第 {hit.start + 1}–{hit.end} 字</span>')
    return (
        f'<li class="qa-source" value="{citation.number}">'
        f'<div class="qa-where">[{citation.number}] {" · ".join(where)}</div>'
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
        line += f' · <span class="qa-error">上次重建失败：{_text(state.error)}</span>'
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
