"""HTML of a knowledge base's side of the page: the index line, the document list, the trash,
and what a change to the documents did. Escaped as web/render.py says, with its `html_text`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from retriever import IndexInfo
from retriever.bases import DEFAULT, BaseTrashEntry
from retriever.trash import TrashEntry
from web.builds import BuildState
from web.outcomes import DocumentRow, Outcome
from web.reasons import build_error
from web.render import html_text


def info_html(info: IndexInfo | None, state: BuildState, base: str = DEFAULT) -> str:
    """Which index the page serves: documents, chunks, model, when it was built; None: the
    knowledge base has no index yet."""
    where = "" if base == DEFAULT else f"知识库「{html_text(base)}」· "
    if info is None:
        line = f"{where}还没有索引：请先上传文档"
    else:
        built = datetime.fromisoformat(info.created_at).strftime("%Y-%m-%d %H:%M %Z").strip()
        line = (
            f"{where}当前索引：{info.documents} 篇文档 · {info.chunks} 个段落 · "
            f"模型 {html_text(info.model)} · 建于 {html_text(built)}"
        )
    if state.running:
        line += f' · <span class="qa-building">正在重建索引（{html_text(state.stage)}）</span>'
    elif state.error:
        line += (
            f' · <span class="qa-error">上次重建失败：{html_text(build_error(state.error))}</span>'
        )
    return f'<div class="qa-info">{line}</div>'


def documents_html(rows: Sequence[DocumentRow]) -> str:
    """The corpus folder's documents as a table: name, size, whether the index holds them."""
    if not rows:
        return '<p class="qa-docs-empty">文档库是空的。</p>'
    body = "".join(
        f"<tr><td>{html_text(row.name)}</td><td>{_size(row.size)}</td><td>{html_text(row.status)}</td></tr>"
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
        f"<tr><td>{html_text(entry.name)}</td><td>{_size(entry.size)}</td>"
        f"<td>{html_text(trash_label(entry))}</td></tr>"
        for entry in entries
    )
    return (
        '<table class="qa-docs"><thead><tr><th>文件</th><th>大小</th><th>何时、为何移入</th></tr>'
        f"</thead><tbody>{body}</tbody></table>"
    )


def trash_label(entry: TrashEntry) -> str:
    """When and why a file went to the trash, e.g. "2026-11-29 01:15 UTC 被删除"."""
    return f"{_when(entry.removed_at)} {TRASH_REASONS.get(entry.reason, entry.reason)}"


def base_trash_label(entry: BaseTrashEntry) -> str:
    """A deleted knowledge base, e.g. "人事（2026-11-29 01:15 UTC 删除）"."""
    return f"{entry.name}（{_when(entry.removed_at)} 删除）"


def _when(removed_at: str) -> str:
    return datetime.fromisoformat(removed_at).strftime("%Y-%m-%d %H:%M %Z").strip()


def outcomes_html(outcomes: Sequence[Outcome], note: str = "") -> str:
    """What became of each uploaded or removed file, then `note` (how the rebuild went)."""
    lines = [
        f'<p class="{"qa-ok" if outcome.ok else "qa-error"}">{html_text(outcome.message)}</p>'
        for outcome in outcomes
    ]
    if note:
        lines.append(f'<p class="qa-note">{html_text(note)}</p>')
    return f'<div class="qa-outcomes">{"".join(lines)}</div>'


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
