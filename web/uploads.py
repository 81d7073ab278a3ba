"""Checks on an uploaded file before it may enter the corpus folder.

A file is refused, with a message the page shows, when its name could reach outside the
corpus folder or hide from the build, when its type is not one the build reads, when it is
empty or too large, or when the engine cannot extract any text from it. The last check runs
the same extraction the build runs, so a file accepted here is a file the build indexes;
the build takes that reading of a PDF, Word or HTML file (retriever.corpus keeps it by the
file's hash) rather than reading the file again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from retriever.config import Quota
from retriever.corpus import DOCUMENT_SUFFIXES, MAX_FILE_BYTES, TEXT_SUFFIXES, extract_text
from retriever.text import CorpusError
from web.outcomes import DocumentRow
from web.questions import is_text
from web.reasons import file_reason

# Every document format the build reads; .jsonl record files are for evaluation sets.
UPLOAD_SUFFIXES = TEXT_SUFFIXES + DOCUMENT_SUFFIXES
# Most file systems allow 255 bytes a name; UTF-8 hanzi take 3 bytes each.
MAX_NAME_BYTES = 255


class UploadError(ValueError):
    """A file that may not be added to the corpus; the message says why, in Chinese."""


def check_name(name: str) -> str:
    """`name` if it is a plain file name the corpus can take; UploadError otherwise."""
    if not name or not name.strip():
        raise UploadError("文件名为空")
    # Both separators count: a name made on Windows may carry backslashes.
    plain = PurePosixPath(name).name == name and PureWindowsPath(name).name == name
    if not plain or name in (".", ".."):
        raise UploadError(f"文件名 {name!r} 含有路径，只能是单纯的文件名")
    if name.startswith("."):
        raise UploadError(f"文件名 {name!r} 以点开头，是隐藏文件，建索引时会被跳过")
    if any(ord(ch) < 32 for ch in name):
        raise UploadError(f"文件名 {name!r} 含有控制字符")
    if not is_text(name):
        raise UploadError(f"文件名 {name!r} 不是有效的 Unicode 文本")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UploadError(f"文件名太长（超过 {MAX_NAME_BYTES} 字节）")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        shown = suffix or "（无扩展名）"
        raise UploadError(f"不支持的文件类型 {shown}：只接受 {' '.join(UPLOAD_SUFFIXES)}")
    return name


def check_content(path: Path, name: str) -> bytes:
    """The file's bytes if they hold text the build can index; UploadError otherwise."""
    size = path.stat().st_size
    if size == 0:
        raise UploadError(f"{name} 是空文件")
    if size > MAX_FILE_BYTES:
        raise UploadError(
            f"{name} 有 {size / 1e6:.1f} MB，超过单个文件 {MAX_FILE_BYTES / 1e6:.0f} MB 的上限，"
            "请拆成几个小文件"
        )
    data = path.read_bytes()
    try:
        text, _ = extract_text(data, PurePosixPath(name).suffix.lower(), name)
    except CorpusError as error:
        raise UploadError(f"{name} 无法作为文档读取：{file_reason(name, str(error))}") from None
    if not text.strip():
        raise UploadError(f"{name} 里没有文字")
    return data


def check_quota(quota: Quota, documents: Sequence[DocumentRow], name: str, size: int) -> None:
    """UploadError if a file of `size` bytes named `name` would overfill a corpus that holds
    `documents` (a file of that name among them is replaced)."""
    sizes = {row.name: row.size for row in documents}
    count = len(sizes) + (name not in sizes)
    if count > quota.max_documents:
        raise UploadError(f"{name} 未加入：文档库最多 {quota.max_documents} 篇文档，已经满了")
    total = sum(sizes.values()) - sizes.get(name, 0) + size
    if total > quota.max_bytes:
        raise UploadError(
            f"{name} 未加入：文档库总大小上限是 {quota.max_bytes / 1024 / 1024:.0f} MB，"
            "加入后会超过"
        )
