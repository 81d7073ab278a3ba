"""Every Gradio event of the page, fuzzed with server paths in every shape a value can take.

Read from the page's own /config, so an event added later is fuzzed too: each event with a
Python function gets, as every input and as its event data, a server path as a plain
string, a FileData object, a list of them, a chat message with files, a chat history with
file and component messages, and a component message whose constructor arguments name the
file. Each shape runs in a session of its own, every event in order and then in reverse, so
that each event also runs after every other one (an event that leaves a value in the
session's state, then one that shows it). Run on two real servers: as `make run` serves
(no logins), and with an access file, as a logged-in reader.

Nothing outside Gradio's upload folder may be copied into it or served: after the fuzz the
upload folder, the corpus and a canary file are as they were, and no response holds the
canary's secret, a file's lines, or a file URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from web_server import running_app, snapshot

from web.credentials import hash_password

SECRET = "金库密码是七三九一"
PASSWORD = "reader password 1"
# What a response would hold if a file had been read: the canary, the access file, the
# repository's README, /etc/passwd.
LEAKS = (SECRET, "pbkdf2_sha256$", "make run", "root:x:0:0", "/gradio_api/file=")


@dataclass(frozen=True)
class Target:
    url: str
    folder: Path
    login: bool  # an access file: fuzz as a logged-in reader

    def paths(self) -> list[str]:
        """Files no client may reach: beside the corpus, in the repository, up from the
        upload folder, the access file, and a URL."""
        return [
            str(self.folder / "canary.txt"),
            str(ROOT / "README.md"),
            "README.md",
            str(self.folder / "gradio" / ".." / "canary.txt"),
            str(self.folder / "access.toml"),
            "/etc/passwd",
            f"{self.url}/api/info",
        ]


def _server(folder: Path, real_index: Path, *, login: bool) -> Iterator[Target]:
    (folder / "canary.txt").write_text(f"服务器上的机密：{SECRET}。\n", encoding="utf-8")
    (folder / "access.toml").write_text(
        f'[users.bob]\nrole = "reader"\npassword = "{hash_password(PASSWORD)}"\n',
        encoding="utf-8",
    )
    settings = {"RETRIEVER_QUESTIONS_PER_MINUTE": "0"}
    if login:
        settings["RETRIEVER_ACCESS_FILE"] = str(folder / "access.toml")
    with running_app(folder, real_index, **settings) as url:
        yield Target(url, folder, login)


@pytest.fixture(scope="module", params=["no-logins", "access-file"])
def target(request, real_index: Path, tmp_path_factory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp(request.param)
    yield from _server(folder, real_index, login=request.param == "access-file")


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def shapes(paths: list[str]) -> dict[str, list[object]]:
    """Name → the values of that shape, one session each: every way a value can name a file."""
    return {
        "plain string": list(paths),
        "FileData": [file_data(path) for path in paths],
        "list of FileData": [[file_data(path) for path in paths]],
        "message with files": [{"text": "看看这个", "files": paths}],
        "option with files": [{"type": "text", "text": "a", "files": paths}],
        "chat history with files": [
            [
                {"role": "user", "content": [{"type": "file", "file": file_data(path)}]}
                for path in paths
            ]
            + [{"role": "assistant", "content": path} for path in paths]
        ],
        "component messages": [
            [
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "component",
                            "component": component,
                            "value": path if component == "file" else None,
                            "constructor_args": {argument: path},
                            "props": {},
                        }
                    ],
                }
                for path in paths
                for component, argument in (
                    ("button", "icon"),
                    ("image", "value"),
                    ("file", "value"),
                )
            ]
        ],
        "component message": [
            {"type": "component", "component": "button", "constructor_args": {"icon": path}}
            for path in paths
        ],
    }


class Session:
    """One browser's session of the page: its cookies, its Gradio session, its events."""

    def __init__(self, client: httpx.Client, name: str) -> None:
        self.client = client
        self.name = name
        config = client.get("/config")
        assert config.status_code == 200, config.text
        # Only events that run Python: an event of the browser alone cannot be called.
        self.events = [event for event in config.json()["dependencies"] if event["backend_fn"]]

    def fire(self, event: dict, value: object) -> str:
        """Send `value` as every input and as the event data; everything the server said."""
        trigger = event["targets"][0][0] if event["targets"] else None
        body = {
            "data": [value] * len(event["inputs"]),
            "event_data": {"index": 0, "value": value, "files": [value], "spec": value},
            "fn_index": event["id"],
            "session_hash": self.name,
            "trigger_id": trigger,
        }
        joined = self.client.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return joined.text
        event_id = joined.json()["event_id"]
        said = []
        with self.client.stream("GET", f"/gradio_api/queue/data?session_hash={self.name}") as s:
            for line in s.iter_lines():
                said.append(line)
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("event_id") == event_id and message.get("msg") == (
                    "process_completed"
                ):
                    break
        return "\n".join(said)


@contextmanager
def browser(target: Target) -> Iterator[httpx.Client]:
    """A browser of the page, logged in as a reader where logins are configured."""
    with httpx.Client(base_url=target.url, timeout=120) as client:
        if target.login:
            response = client.post("/login", data={"username": "bob", "password": PASSWORD})
            assert response.status_code == 200, response.text
        yield client


def test_no_event_copies_or_serves_a_file_the_browser_did_not_upload(target: Target) -> None:
    uploads, corpus = target.folder / "gradio", target.folder / "corpus"
    before = snapshot(uploads), snapshot(corpus), (target.folder / "canary.txt").read_bytes()
    said: list[str] = []
    with browser(target) as client:
        for number, (shape, values) in enumerate(shapes(target.paths()).items()):
            for index, value in enumerate(values):
                session = Session(client, f"fuzz-{number}-{index}")
                # Every event in order, then in reverse: each runs after every other one.
                for event in [*session.events, *reversed(session.events)]:
                    answer = session.fire(event, value)
                    said.append(answer)
                    for leak in LEAKS:
                        assert leak not in answer, (shape, event["api_name"], answer[:2000])
        # The chat's own events are among those fuzzed, and none takes the chat as input.
        config = client.get("/config").json()
    after = snapshot(uploads), snapshot(corpus), (target.folder / "canary.txt").read_bytes()
    assert after == before, "a file was copied into Gradio's upload folder, or changed"
    assert len(said) > 300
    chat = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "chat")
    fuzzed = {event["api_name"] for event in config["dependencies"] if event["backend_fn"]}
    assert {"take", "take_example", "answer", "ask", "add_documents"} <= fuzzed
    assert all(
        chat not in event["inputs"] for event in config["dependencies"] if event["backend_fn"]
    )
