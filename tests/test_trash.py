"""The corpus folder's trash (retriever/trash.py): nothing is lost by a replace, a removal or a
restore, and no name or id reaches outside the folder.

Each test snapshots every file under the test's folder (the corpus, its trash, and a canary
file beside the corpus) and checks that only the intended files changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from web_server import snapshot

from retriever import trash
from retriever.corpus import corpus_files
from retriever.trash import (
    TRASH,
    DocumentError,
    NoSuchDocument,
    NoSuchTrashEntry,
    NothingReadableLeft,
    document_names,
    list_trash,
    put_file,
    remove_file,
    restore,
)

OLD = "差旅费须在十五个工作日内报销。".encode()
NEW = "差旅费须在十个工作日内报销。".encode()
OTHER = "办公室主任负责行政事务。".encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "travel.txt").write_bytes(OLD)
    (folder / "jobs.txt").write_bytes(OTHER)
    # A file beside the corpus that no operation may touch.
    (tmp_path / "canary.txt").write_text("outside the corpus", encoding="utf-8")
    return folder


def trashed_files(corpus: Path) -> dict[str, str]:
    return {k: v for k, v in snapshot(corpus).items() if k.startswith(f"{TRASH}/")}


def test_a_new_file_is_written_and_nothing_goes_to_the_trash(corpus: Path) -> None:
    before = snapshot(corpus.parent)
    assert put_file(corpus, "new.txt", NEW) is None
    assert snapshot(corpus.parent) == {**before, "corpus/new.txt": digest(NEW)}
    assert list_trash(corpus) == []


def test_a_replaced_file_goes_to_the_trash_with_its_name_and_reason(corpus: Path) -> None:
    before = snapshot(corpus.parent)
    entry = put_file(corpus, "travel.txt", NEW)
    assert entry is not None and entry.name == "travel.txt" and entry.reason == "replaced"
    assert entry.size == len(OLD) and entry.removed_at.endswith("+00:00")
    assert (corpus / "travel.txt").read_bytes() == NEW
    assert (corpus / TRASH / entry.id / "travel.txt").read_bytes() == OLD
    assert list_trash(corpus) == [entry]
    after = snapshot(corpus.parent)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"corpus/travel.txt", f"corpus/{TRASH}/{entry.id}/travel.txt"} | {
        f"corpus/{TRASH}/{entry.id}/entry.json"
    }
    record = json.loads((corpus / TRASH / entry.id / "entry.json").read_text(encoding="utf-8"))
    assert record == entry.to_dict()


def test_builds_never_read_the_trash(corpus: Path) -> None:
    put_file(corpus, "travel.txt", NEW)
    remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    assert [p.name for p in corpus_files(corpus)] == ["jobs.txt"]
    assert document_names(corpus) == ["jobs.txt"]
    assert len(list_trash(corpus)) == 2


def test_removing_moves_the_file_to_the_trash(corpus: Path) -> None:
    before = snapshot(corpus.parent)
    entry = remove_file(corpus, "travel.txt", readable=["travel.txt", "jobs.txt"])
    assert entry.reason == "removed" and not (corpus / "travel.txt").exists()
    kept = {k: v for k, v in snapshot(corpus.parent).items() if not k.startswith("corpus/.")}
    assert kept == {k: v for k, v in before.items() if k != "corpus/travel.txt"}
    assert trashed_files(corpus)[f"{TRASH}/{entry.id}/travel.txt"] == digest(OLD)


@pytest.mark.parametrize(
    "readable",
    [
        [],  # nothing is known to be readable
        ["travel.txt"],  # only the file being removed
        ["travel.txt", "gone.txt"],  # another, but no longer in the folder
    ],
)
def test_a_removal_that_leaves_nothing_readable_is_refused_untouched(
    corpus: Path, readable: list[str]
) -> None:
    before = snapshot(corpus.parent)
    with pytest.raises(NothingReadableLeft, match="no readable document"):
        remove_file(corpus, "travel.txt", readable=readable)
    assert snapshot(corpus.parent) == before


@pytest.mark.parametrize(
    "name", ["missing.txt", "../canary.txt", "/etc/passwd", f"{TRASH}/x/travel.txt", ""]
)
def test_only_a_listed_document_can_be_removed(corpus: Path, name: str) -> None:
    before = snapshot(corpus.parent)
    with pytest.raises(NoSuchDocument, match="is not a document"):
        remove_file(corpus, name, readable=["jobs.txt", "travel.txt"])
    assert snapshot(corpus.parent) == before


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", ".hidden.txt", "/abs.txt", "a\\b.txt", ""]
)
def test_a_name_outside_the_folder_or_hidden_is_never_written(corpus: Path, name: str) -> None:
    before = snapshot(corpus.parent)
    with pytest.raises(DocumentError, match="not a plain relative file name"):
        put_file(corpus, name, NEW)
    assert snapshot(corpus.parent) == before


def test_restore_puts_the_file_back_and_empties_its_entry(corpus: Path) -> None:
    before = snapshot(corpus.parent)
    entry = remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    restored, displaced = restore(corpus, entry.id)
    assert restored == entry and displaced is None
    assert list_trash(corpus) == []
    assert snapshot(corpus.parent) == before


def test_restore_never_overwrites_the_current_file(corpus: Path) -> None:
    replaced = put_file(corpus, "travel.txt", NEW)  # OLD is in the trash, NEW in place
    assert replaced is not None
    _, displaced = restore(corpus, replaced.id)
    assert displaced is not None and displaced.reason == "restored-over"
    assert (corpus / "travel.txt").read_bytes() == OLD
    assert [entry.id for entry in list_trash(corpus)] == [displaced.id]
    assert (corpus / TRASH / displaced.id / "travel.txt").read_bytes() == NEW


@pytest.mark.parametrize("entry_id", ["20260101T000000Z-00000000", "..", "../../canary.txt", ""])
def test_restoring_an_unknown_entry_is_refused_untouched(corpus: Path, entry_id: str) -> None:
    remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    before = snapshot(corpus.parent)
    with pytest.raises(NoSuchTrashEntry):
        restore(corpus, entry_id)
    assert snapshot(corpus.parent) == before


def test_files_in_sub_folders_keep_their_place(corpus: Path) -> None:
    put_file(corpus, "规章/报销.txt", OLD)
    entry = remove_file(corpus, "规章/报销.txt", readable=["jobs.txt"])
    (corpus / "规章").rmdir()  # the folder may go too
    restore(corpus, entry.id)
    assert (corpus / "规章" / "报销.txt").read_bytes() == OLD


def test_each_removal_is_its_own_entry_newest_first(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moments = iter([datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 10, tzinfo=UTC)])

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None) -> datetime:
            return next(moments)

    monkeypatch.setattr(trash, "datetime", Clock)
    first = put_file(corpus, "travel.txt", NEW)
    second = remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    assert first is not None
    assert list_trash(corpus) == [second, first]
    assert [(e.reason, e.size) for e in list_trash(corpus)] == [
        ("removed", len(NEW)),
        ("replaced", len(OLD)),
    ]
    assert second.id.startswith("20260101T100000Z-")


def test_incomplete_or_tampered_entries_are_ignored(corpus: Path) -> None:
    entry = remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    (corpus / TRASH / "no-record").mkdir()
    (corpus / TRASH / "bad-json").mkdir()
    (corpus / TRASH / "bad-json" / "entry.json").write_text("{", encoding="utf-8")
    # A record whose name would restore outside the corpus folder.
    tampered = corpus / TRASH / "tampered"
    tampered.mkdir()
    (tampered / "canary.txt").write_bytes(b"x")
    record = {**entry.to_dict(), "id": "tampered", "name": "../canary.txt"}
    (tampered / "entry.json").write_text(json.dumps(record), encoding="utf-8")
    assert {item.id for item in list_trash(corpus)} == {entry.id, "tampered"}
    before = snapshot(corpus.parent)
    with pytest.raises(DocumentError, match="not a plain relative file name"):
        restore(corpus, "tampered")
    assert snapshot(corpus.parent) == before


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(corpus.parent)

    def broken_fsync(_: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        put_file(corpus, "travel.txt", NEW)
    assert snapshot(corpus.parent) == before
