"""Start app.py as a real server on a free port, on copies of a corpus and an index.

Shared by the HTTP API, security and browser tests: each gets its own server, with its own
Gradio upload folder, so uploads in one never reach another, and the repository's corpus/
and index/ are never touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import CACHE, CORPUS, ROOT
from gated_app import GATE_VARIABLE

STARTUP_SECONDS = 180


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder`, hidden ones included: relative path → SHA-256."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_environment(folder: Path, **settings: str) -> dict[str, str]:
    """The environment app.py runs in: `settings` (RETRIEVER_… variables) over the defaults,
    and Gradio's upload folder in `folder`, where no other server puts files."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RETRIEVER_") and key != "GRADIO_TEMP_DIR"
    }
    return {
        **environment,
        "RETRIEVER_HOST": "127.0.0.1",
        "RETRIEVER_CACHE": str(CACHE),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(folder / "gradio"),
        **settings,
    }


@contextmanager
def running_app(
    folder: Path, index: Path, *, gate: Path | None = None, **settings: str
) -> Iterator[str]:
    """Serve copies of corpus/ and `index` (built from corpus/) from `folder`; yields the URL.

    `settings` are RETRIEVER_… variables, such as RETRIEVER_ACCESS_FILE or RETRIEVER_HOST.
    With `gate`, builds hold before embedding while that file exists (tests/gated_app.py).
    """
    corpus_copy = shutil.copytree(CORPUS, folder / "corpus")
    index_copy = shutil.copytree(index, folder / "index")
    port = free_port()
    environment = app_environment(
        folder,
        RETRIEVER_CORPUS=str(corpus_copy),
        RETRIEVER_INDEX=str(index_copy),
        RETRIEVER_PORT=str(port),
        **settings,
    )
    command = [sys.executable, "app.py"]
    if gate is not None:
        command = [sys.executable, "tests/gated_app.py"]
        environment[GATE_VARIABLE] = str(gate)
    # A file, not a pipe: nobody reads a pipe while tests run, and a full one would stall
    # the server.
    log_path = folder / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(process, url, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_serving(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited early:\n{log_path.read_text()}")
        try:
            # 401 is a server with an access file, serving.
            if httpx.get(f"{url}/api/info", timeout=2).status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"app.py did not serve within {STARTUP_SECONDS} s:\n{log_path.read_text()}")
