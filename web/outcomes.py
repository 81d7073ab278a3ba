"""What a change to a base's documents reports: each file's Outcome, the rows of the document
list, and why a change failed for want of disk space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retriever.corpus import corpus_files
from retriever.trash import WriteFailed
from web.reasons import file_reason

# Why a change failed for want of disk space (retriever.trash undid what it had done); the
# API's 507 says it too.
DISK_FULL = "服务器磁盘已满，没有做任何改动：请管理员清理磁盘空间后再试"


@dataclass(frozen=True)
class DocumentRow:
    """A file of the corpus folder, as the document list shows it."""

    name: str  # path relative to the corpus folder
    size: int
    status: str


@dataclass(frozen=True)
class Outcome:
    """What became of one uploaded or removed file."""

    name: str
    ok: bool
    message: str
    # The trash entry of the file this change moved there (removed, or replaced), if any:
    # what to restore to undo it.
    trash_id: str | None = None
    # Failed for want of disk space, which the API answers with a 507.
    disk_full: bool = False

    def to_dict(self) -> dict[str, object]:
        """The outcome as the API reports each file."""
        return {
            "name": self.name,
            "ok": self.ok,
            "message": self.message,
            "trash_id": self.trash_id,
        }


def write_failed(name: str, error: WriteFailed) -> Outcome:
    """The outcome of a change to `name` that the file system failed, and which was undone."""
    if error.disk_full:
        return Outcome(name, False, f"{name}：{DISK_FULL}", disk_full=True)
    return Outcome(
        name, False, f"{name}：写入失败，文档库没有任何改动（系统提示：{error.strerror}）"
    )


def document_rows(corpus_dir: Path, manifest: Any, *, building: bool) -> list[DocumentRow]:
    """The corpus folder's files, each with whether the index of `manifest` ({} for none)
    holds it: a file it does not hold yet is 正在建立索引 while a rebuild runs (`building`),
    else 等待重建索引."""
    indexed = {source["path"]: source for source in manifest.get("sources", [])}
    skipped = {item["path"]: item["reason"] for item in manifest.get("skipped", [])}
    rows: list[DocumentRow] = []
    if not corpus_dir.is_dir():  # the base was renamed or deleted meanwhile
        return rows
    for path in corpus_files(corpus_dir):
        name = path.relative_to(corpus_dir).as_posix()
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # removed since it was listed
            continue
        if name in skipped:
            status = f"未能读取：{file_reason(name, skipped[name])}"
        elif name in indexed and indexed[name]["size"] == size:
            status = "已索引"
        else:
            status = "正在建立索引" if building else "等待重建索引"
        rows.append(DocumentRow(name, size, status))
    return rows
