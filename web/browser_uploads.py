"""Only bytes a client uploaded may enter the corpus, or be served back: Gradio's uploads,
tied to their browser, and Gradio kept to them.

Gradio's events take files as {"path": ...} objects (and chat messages, components and URLs
that name files), and when the app is mounted on FastAPI (not started by Gradio's launch())
Gradio does not check those paths: it copies whatever file a value names into its cache,
hands it to the event and serves it back. A client could name `/etc/passwd`, another
client's upload, or a URL, and read it or add it to the corpus. Three things close that,
each on its own:

- `keep_gradio_to_uploads`: Gradio copies nothing into its cache that is not there already
  (no server path, no URL), whatever value or event asks for it, and its own path checks
  run as in a launched app.
- `UploadGuard` (web/upload_guard.py), in front of Gradio: every browser gets a random,
  httponly cookie; the paths Gradio's upload route returns are recorded for that browser; a
  request whose JSON names another path is refused, and so is a file URL
  (`/gradio_api/file=…`) for anything but that browser's own uploads. Uploading needs the
  editor role when logins are configured, and counts against a cap per user (or browser)
  and a cap for everyone, before a byte of it is written.
- The event handler claims each path (`BrowserUploads.claim`: recorded, still a plain file
  inside Gradio's upload folder, no symlink), reads it, and deletes Gradio's copy. Uploads
  never added are deleted after an hour.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.blocks import Block
from gradio.exceptions import InvalidPathError
from gradio_client.utils import is_http_url_like

COOKIE = "qa-browser"
# How long an upload waits to be added (or not) before it is deleted.
KEEP_SECONDS = 3600.0
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def browser_of(cookies: dict[str, str]) -> str | None:
    """The browser id in a request's cookies, if it has a well-formed one."""
    value = cookies.get(COOKIE, "")
    return value if _BROWSER_ID.fullmatch(value) else None


def keep_gradio_to_uploads(blocks: gr.Blocks, folder: Path) -> None:
    """Let Gradio copy into its cache only files that are in its upload folder already: no
    other server path and no URL, whichever event, value or component names it.

    Every copy Gradio makes into its cache (a file named in an event's data, in a chat
    message, in a component's arguments) goes through Block.move_resource_to_block_cache or
    its async twin; a file already in the folder is used where it is. So refusing there
    closes every shape of request at once. Gradio's own checks (only uploads as inputs, no
    dotfiles) run only in an app started by launch(); this app is mounted, so they are
    turned on here too.
    """
    blocks.has_launched = True
    real_folder = folder.resolve()

    def check(resource: str | Path | None) -> None:
        if resource is None:
            return
        if is_http_url_like(str(resource)) or not _inside(Path(resource), real_folder):
            raise InvalidPathError(f"不能读取上传文件夹以外的文件：{resource}")

    copy, async_copy = Block.move_resource_to_block_cache, Block.async_move_resource_to_block_cache
    if getattr(copy, "kept_to_uploads", False):
        return  # already kept, in this process

    def kept(self: Block, resource: str | Path | None) -> str | None:
        check(resource)
        return copy(self, resource)

    async def async_kept(self: Block, resource: str | Path | None) -> str | None:
        check(resource)
        return await async_copy(self, resource)

    kept.kept_to_uploads = True  # type: ignore[attr-defined]
    Block.move_resource_to_block_cache = kept  # type: ignore[method-assign]
    Block.async_move_resource_to_block_cache = async_kept  # type: ignore[method-assign]


def _megabytes(size: float) -> str:
    return f"{size / 1024 / 1024:.0f} MB"


def _inside(path: Path, real_folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_folder)
    except (OSError, RuntimeError, ValueError):
        return False


@dataclass
class _Held:
    """An upload waiting to be added: when, who it counts against, its size in bytes."""

    when: float
    holder: str
    size: int


class BrowserUploads:
    """The files in Gradio's upload folder, each with the browser that uploaded it, and the
    bytes each holder (a user, or a browser without logins) has there.

    `max_held_each` and `max_held` cap what one holder and everyone together may keep in the
    folder, uploads under way included: uploads are checked against them before they start.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_held_each: float = math.inf,
        max_held: float = math.inf,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder.absolute()  # as Gradio spells it in the paths it returns
        self._real_folder = folder.resolve()
        self.max_held_each = max_held_each
        self.max_held = max_held
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._uploads: dict[tuple[str, str], _Held] = {}  # (browser, path) → the upload
        self._reserved: dict[str, int] = {}  # holder → bytes of its uploads under way
        self._lock = threading.Lock()

    def reserve(self, holder: str, size: int) -> str | None:
        """Count an upload of `size` bytes against `holder` before it starts; None if it
        fits under the caps (then `release` it when done), else why not, in Chinese."""
        with self._lock:
            self._expire()
            held = list(self._uploads.values())
            mine = self._reserved.get(holder, 0) + sum(
                item.size for item in held if item.holder == holder
            )
            everyone = sum(self._reserved.values()) + sum(item.size for item in held)
            if mine + size > self.max_held_each:
                return (
                    f"你上传了还没加入文档库的文件共 {_megabytes(mine)}，再加这次的 "
                    f"{_megabytes(size)} 就超过了 {_megabytes(self.max_held_each)} 的上限："
                    "请先把它们加入文档库"
                )
            if everyone + size > self.max_held:
                return "服务器上等待加入文档库的上传文件已经太多，请稍后再上传"
            self._reserved[holder] = self._reserved.get(holder, 0) + size
            return None

    def release(self, holder: str, size: int) -> None:
        with self._lock:
            left = self._reserved.get(holder, 0) - size
            if left > 0:
                self._reserved[holder] = left
            else:
                self._reserved.pop(holder, None)

    def record(self, browser: str, paths: list[str], holder: str = "") -> None:
        with self._lock:
            self._expire()
            for path in paths:
                try:
                    size = Path(path).stat().st_size
                except OSError:
                    continue  # not a file Gradio wrote: nothing to claim
                self._uploads[browser, path] = _Held(self._clock(), holder or browser, size)

    def owns(self, browser: str | None, path: str) -> bool:
        with self._lock:
            self._expire()
            return browser is not None and (browser, path) in self._uploads

    def claim(self, browser: str | None, path: str) -> Path | None:
        """The uploaded file at `path`, if `browser` uploaded it and it is still a plain file
        inside the upload folder, reached without a symlink or `..`; else None. Either way
        the path is forgotten: a claim succeeds once."""
        with self._lock:
            self._expire()
            if browser is None or self._uploads.pop((browser, path), None) is None:
                return None
        candidate = Path(path)
        if not candidate.is_relative_to(self.folder):
            return None
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        # Equal only when no part below the folder is a symlink or "..".
        if resolved != self._real_folder / candidate.relative_to(self.folder):
            return None
        return resolved if resolved.is_file() else None

    def discard(self, path: Path) -> None:
        """Delete an uploaded file, and its folder (Gradio makes one per upload) if empty."""
        if not path.resolve().is_relative_to(self._real_folder):
            return
        path.unlink(missing_ok=True)
        if path.parent.resolve() != self._real_folder:
            with contextlib.suppress(OSError):  # not empty: another upload, same content
                path.parent.rmdir()

    def _expire(self) -> None:
        """Forget uploads older than keep_seconds, and delete their files."""
        deadline = self._clock() - self.keep_seconds
        for key in [key for key, held in self._uploads.items() if held.when < deadline]:
            del self._uploads[key]
            if not any(path == key[1] for _, path in self._uploads):
                self.discard(Path(key[1]))
