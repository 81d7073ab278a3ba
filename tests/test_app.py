"""The chat page as a real HTTP server, with the real model and index."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import CACHE, ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(real_index) -> Iterator[str]:
    port = free_port()
    environment = {
        **os.environ,
        "RETRIEVER_INDEX": str(real_index),
        "RETRIEVER_PORT": str(port),
        "RETRIEVER_CACHE": str(CACHE),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("app.py did not start serving within 180 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_page_is_served_with_examples(server: str) -> None:
    page = httpx.get(server, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_chat_endpoint_answers_with_citation(server: str) -> None:
    from gradio_client import Client

    client = Client(server, verbose=False)
    reply = client.predict("办公室主任和行政主管哪个大?", api_name="/ask")
    assert "在没有特定公司的前提下" in reply
    assert "[1]" in reply and "office_director_vs_admin_assistant.txt" in reply
