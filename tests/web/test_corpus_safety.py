"""Symbolic links and a full disk: nothing outside the corpus folder is indexed or moved
into it, and a change that the full disk fails is undone and answered in Chinese.

Builds and the HTTP API run in-process over the stand-in embedder; tests/retriever/test_trash.py
checks the trash's functions one by one.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.testclient import TestClient
from web_server import snapshot

from retriever import Retriever
from retriever.corpus import corpus_files, file_hashes, read_corpus
from retriever.trash import TRASH
from web.access import Access
from web.api import api_router
from web.api_models import disk_full, validation_error
from web.feedback import AnswerLog, Feedback
from web.feedback_log import FeedbackLog
from web.libraries import Libraries
from web.library import Library
from web.limits import FeedbackLimit, QuestionLimit
from web.outcomes import DISK_FULL
from web.preview import BasePreviews, Previews
from web.service import Service

SECRET = "火星基地的大门密码是七三九一，只有站长知道。"
HIDDEN = "月球仓库的钥匙放在第九号柜里，每周一更换。"
JOBS_QUESTION = "行政助理的职责"
NO_ENTRY = "回收站里没有这一项"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the corpus: a file and a sub-folder that links could reach."""
    folder = tmp_path / "outside"
    (folder / "more").mkdir(parents=True)
    (folder / "secret.txt").write_text(SECRET, encoding="utf-8")
    (folder / "more" / "hidden.txt").write_text(HIDDEN, encoding="utf-8")
    return folder


def link_outside(corpus: Path, outside: Path) -> None:
    """A link to the outside file, and a linked sub-folder, in the corpus folder."""
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "linked").symlink_to(outside / "more", target_is_directory=True)


# ---------------------------------------------------------------- B: builds skip links


def test_a_build_skips_linked_files_and_folders_and_says_why(
    small_corpus: Path, outside: Path, tmp_path: Path, hashing_embedder
) -> None:
    link_outside(small_corpus, outside)
    index = tmp_path / "index"
    report = Retriever.build(small_corpus, index, embedder=hashing_embedder)

    skipped = {item.path: item.reason for item in report.index.skipped}
    assert set(skipped) == {"secret.txt", "linked"}
    assert all("a symbolic link, which builds do not follow" in why for why in skipped.values())
    assert report.index.files == 2 and set(report.read) == {"jobs.txt", "fruit.md"}
    # Reading the corpus without a build, and listing it, say the same.
    assert read_corpus(small_corpus).skipped == report.index.skipped
    assert [path.name for path in corpus_files(small_corpus)] == ["fruit.md", "jobs.txt"]

    retriever = Retriever.load(index, embedder=hashing_embedder)
    for question in (SECRET, HIDDEN, "火星基地的大门密码", "月球仓库的钥匙"):
        for hit in retriever.search(question, k=10):
            assert hit.source in {"jobs.txt", "fruit.md"}
            assert "火星" not in hit.text and "月球" not in hit.text


def test_a_link_added_or_removed_later_is_a_change_a_build_reports(
    small_corpus: Path, outside: Path, tmp_path: Path, hashing_embedder
) -> None:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    (small_corpus / "secret.txt").symlink_to(outside / "secret.txt")
    assert Retriever.load(index, embedder=hashing_embedder).is_stale(small_corpus)

    added = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert added.changed and added.read == () and added.removed == ()
    assert [item.path for item in added.index.skipped] == ["secret.txt"]
    again = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert not again.changed  # the link is not read, so it is no change once reported

    (small_corpus / "secret.txt").unlink()
    gone = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert gone.removed == ("secret.txt",) and gone.index.skipped == []
    assert set(file_hashes(small_corpus)) == {"jobs.txt", "fruit.md"}


# -------------------------------------------------------------- the API, in-process


@pytest.fixture
def library(small_corpus: Path, tmp_path: Path, hashing_embedder) -> Library:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    return Library(small_corpus, index, Retriever.load(index, embedder=hashing_embedder))


@pytest.fixture
def client(library: Library, tmp_path: Path) -> Iterator[TestClient]:
    """The API of app.py, with its exception handlers, and no access control."""
    libraries = Libraries(library, tmp_path / "bases")
    answers = AnswerLog()
    feedback = Feedback(answers, FeedbackLog(tmp_path / "fb", max_bytes=10**6), FeedbackLimit(0))
    app = FastAPI(exception_handlers={RequestValidationError: validation_error, OSError: disk_full})
    app.include_router(
        api_router(
            Service(libraries, QuestionLimit(0), answers),
            Access(),
            previews=BasePreviews(libraries, Previews(library)),
            feedback=feedback,
        )
    )
    with TestClient(app) as client:
        yield client


def still_answers(client: TestClient) -> bool:
    """Whether jobs.txt is still a document, and still found by a search."""
    names = {row["name"] for row in client.get("/api/documents").json()}
    hits = client.post("/api/search", json={"question": JOBS_QUESTION, "k": 3}).json()
    return "jobs.txt" in names and "jobs.txt" in {hit["source"] for hit in hits}


# ------------------------------------------------ A: restoring a link is refused, untouched


def _record(folder: Path, entry_id: str, name: str) -> None:
    record = {
        "id": entry_id,
        "name": name,
        "removed_at": "2026-01-01T00:00:00+00:00",
        "reason": "removed",
        "size": len(SECRET.encode()),
    }
    (folder / "entry.json").write_text(json.dumps(record), encoding="utf-8")


def _linked_folder(corpus: Path, outside: Path) -> str:
    """An entry folder that is a link to the outside folder, which holds a record for it."""
    _record(outside, "linked", "secret.txt")
    (corpus / TRASH / "linked").symlink_to(outside, target_is_directory=True)
    return "linked"


def _linked_file(corpus: Path, outside: Path) -> str:
    """A real entry folder whose file is a link to the outside file."""
    entry = corpus / TRASH / "20260101T000000Z-0000000a"
    entry.mkdir()
    _record(entry, entry.name, "secret.txt")
    (entry / "secret.txt").symlink_to(outside / "secret.txt")
    return entry.name


def _record_outside(corpus: Path, outside: Path) -> str:
    """A real entry whose record names a path outside the corpus, over the outside file."""
    entry = corpus / TRASH / "20260101T000000Z-0000000b"
    entry.mkdir()
    _record(entry, entry.name, "../outside/secret.txt")
    (entry / "secret.txt").write_text("替换外面的文件", encoding="utf-8")
    return entry.name


@pytest.mark.parametrize("plant", [_linked_folder, _linked_file, _record_outside])
def test_restoring_an_entry_that_reaches_outside_is_refused_untouched(
    client: TestClient,
    small_corpus: Path,
    outside: Path,
    plant: Callable[[Path, Path], str],
) -> None:
    (small_corpus / TRASH).mkdir()
    entry_id = plant(small_corpus, outside)
    corpus_before, outside_before = snapshot(small_corpus), snapshot(outside)

    assert client.get("/api/trash").json() == []
    response = client.post(f"/api/trash/{entry_id}/restore")
    assert response.status_code == 404
    assert response.json() == {"detail": NO_ENTRY}

    assert (outside / "secret.txt").read_text(encoding="utf-8") == SECRET
    assert snapshot(outside) == outside_before and snapshot(small_corpus) == corpus_before
    assert not (small_corpus / "secret.txt").exists()
    assert still_answers(client)


def test_the_page_refuses_such_a_restore_with_a_message(
    library: Library, small_corpus: Path, outside: Path
) -> None:
    (small_corpus / TRASH).mkdir()
    entry_id = _linked_folder(small_corpus, outside)
    before = snapshot(small_corpus.parent)
    outcome = library.restore(entry_id)
    assert not outcome.ok and outcome.message == NO_ENTRY
    assert snapshot(small_corpus.parent) == before


# ------------------------------------------- C: a full disk is a 507, and nothing changes


def _fail_moves(monkeypatch: pytest.MonkeyPatch, code: int, picks: Callable[[Path], bool]) -> None:
    """Make os.replace fail with `code` for the moves whose source `picks` chooses."""
    replace = os.replace

    def fake(source, target) -> None:
        if picks(Path(source)):
            raise OSError(code, os.strerror(code))
        replace(source, target)

    monkeypatch.setattr(os, "replace", fake)


def _no_trash_entry(corpus: Path) -> bool:
    return not (corpus / TRASH).exists() or not list((corpus / TRASH).iterdir())


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("failing", ["record", "move"])
def test_a_removal_the_full_disk_fails_is_a_507_and_the_document_stays(
    client: TestClient,
    small_corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    failing: str,
) -> None:
    before = snapshot(small_corpus)
    if failing == "record":  # writing the trash entry's record

        def no_space(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(Path, "write_text", no_space)
    else:  # moving the file into the trash
        _fail_moves(monkeypatch, code, lambda source: source.name == "jobs.txt")

    response = client.delete("/api/documents/jobs.txt")
    assert response.status_code == 507
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": DISK_FULL}
    assert DISK_FULL.startswith("服务器磁盘已满") and "没有做任何改动" in DISK_FULL

    monkeypatch.undo()
    assert snapshot(small_corpus) == before and _no_trash_entry(small_corpus)
    assert client.get("/api/trash").json() == []
    assert still_answers(client)


def test_a_replacement_the_full_disk_fails_is_a_507_and_keeps_the_old_file(
    client: TestClient, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(small_corpus)
    # The old file goes to the trash, then the new one cannot be moved into its place.
    _fail_moves(monkeypatch, errno.ENOSPC, lambda source: source.name.startswith(".upload-"))
    response = client.post(
        "/api/documents", files=[("files", ("jobs.txt", "新的内容。".encode(), "text/plain"))]
    )
    assert response.status_code == 507 and response.json() == {"detail": DISK_FULL}
    monkeypatch.undo()
    assert snapshot(small_corpus) == before and _no_trash_entry(small_corpus)
    assert still_answers(client)


def test_an_upload_the_full_disk_fails_before_the_corpus_is_a_507(
    client: TestClient, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving the upload's temporary copy fails: the handler of app.py answers."""

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    before = snapshot(small_corpus)
    monkeypatch.setattr(shutil, "copyfileobj", no_space)
    response = client.post(
        "/api/documents", files=[("files", ("new.txt", "新的文档。".encode(), "text/plain"))]
    )
    assert response.status_code == 507 and response.json() == {"detail": DISK_FULL}
    assert snapshot(small_corpus) == before


def test_the_page_says_the_disk_is_full_and_nothing_changed(
    library: Library, small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = tmp_path / "upload.txt"
    upload.write_text("新的内容。", encoding="utf-8")
    before = snapshot(small_corpus)
    _fail_moves(monkeypatch, errno.ENOSPC, lambda source: True)
    [added] = library.add([(upload, "jobs.txt")])
    removed = library.remove("jobs.txt")
    for outcome in (added, removed):
        assert not outcome.ok and outcome.disk_full
        assert outcome.message == f"jobs.txt：{DISK_FULL}"
    assert snapshot(small_corpus) == before and _no_trash_entry(small_corpus)


def test_the_handler_leaves_other_os_errors_alone() -> None:
    with pytest.raises(PermissionError):
        asyncio.run(disk_full(None, PermissionError(errno.EACCES, "Permission denied")))  # type: ignore[arg-type]
