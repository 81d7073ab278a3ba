"""The corpus folder's trash (retriever/trash.py): nothing is lost by a replace, a removal or a
restore, and no name or id reaches outside the folder.

Each test snapshots every file under the test's folder (the corpus, its trash, and a canary
file beside the corpus) and checks that only the intended files changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

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
    WriteFailed,
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
    # Not listed, so not restorable: refused before anything is touched.
    assert [item.id for item in list_trash(corpus)] == [entry.id]
    before = snapshot(corpus.parent)
    with pytest.raises(NoSuchTrashEntry):
        restore(corpus, "tampered")
    assert snapshot(corpus.parent) == before


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(corpus.parent)

    def broken_fsync(_: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(WriteFailed, match="nothing was changed: No space") as failed:
        put_file(corpus, "travel.txt", NEW)
    assert failed.value.disk_full
    assert snapshot(corpus.parent) == before


# ------------------------------------------------- symbolic links: nothing outside is moved


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the corpus holding a file a link in the trash could reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(OTHER)
    return folder


def _record(folder: Path, entry_id: str, name: str) -> None:
    record = {
        "id": entry_id,
        "name": name,
        "removed_at": "2026-01-01T00:00:00+00:00",
        "reason": "removed",
        "size": len(OTHER),
    }
    (folder / "entry.json").write_text(json.dumps(record), encoding="utf-8")


def _assert_refused_untouched(corpus: Path, outside: Path, entry_id: str) -> None:
    """The entry is not listed, and restoring it is refused with every file as it was."""
    assert entry_id not in {entry.id for entry in list_trash(corpus)}
    before = snapshot(corpus.parent)
    with pytest.raises(NoSuchTrashEntry):
        restore(corpus, entry_id)
    assert snapshot(corpus.parent) == before
    assert (outside / "secret.txt").read_bytes() == OTHER


def test_an_entry_folder_linked_outside_is_never_restored(corpus: Path, outside: Path) -> None:
    _record(outside, "linked", "secret.txt")
    (corpus / TRASH).mkdir()
    (corpus / TRASH / "linked").symlink_to(outside, target_is_directory=True)
    _assert_refused_untouched(corpus, outside, "linked")
    assert not (corpus / "secret.txt").exists()


def test_an_entry_whose_file_is_a_link_outside_is_never_restored(
    corpus: Path, outside: Path
) -> None:
    entry = corpus / TRASH / "20260101T000000Z-0000000a"
    entry.mkdir(parents=True)
    _record(entry, entry.name, "secret.txt")
    (entry / "secret.txt").symlink_to(outside / "secret.txt")
    _assert_refused_untouched(corpus, outside, entry.name)
    assert not (corpus / "secret.txt").exists()


def test_an_entry_whose_record_is_a_link_is_never_restored(corpus: Path, outside: Path) -> None:
    entry = corpus / TRASH / "20260101T000000Z-0000000b"
    entry.mkdir(parents=True)
    _record(outside, entry.name, "secret.txt")
    (entry / "entry.json").symlink_to(outside / "entry.json")
    (entry / "secret.txt").write_bytes(OTHER)
    _assert_refused_untouched(corpus, outside, entry.name)


@pytest.mark.parametrize(
    "name", ["../outside/secret.txt", "sub/../../outside/secret.txt", "/etc/passwd", ".hidden"]
)
def test_an_entry_naming_a_path_outside_is_never_restored(
    corpus: Path, outside: Path, name: str
) -> None:
    entry = corpus / TRASH / "20260101T000000Z-0000000c"
    entry.mkdir(parents=True)
    _record(entry, entry.name, name)
    (entry / PurePosixPath(name).name).write_bytes(OTHER)
    _assert_refused_untouched(corpus, outside, entry.name)


def test_a_trash_folder_linked_outside_is_neither_listed_nor_written(
    corpus: Path, outside: Path
) -> None:
    entry = outside / "20260101T000000Z-0000000d"
    entry.mkdir()
    _record(entry, entry.name, "secret.txt")
    shutil.copy(outside / "secret.txt", entry / "secret.txt")
    (corpus / TRASH).symlink_to(outside, target_is_directory=True)
    _assert_refused_untouched(corpus, outside, entry.name)
    before = snapshot(corpus.parent)
    with pytest.raises(DocumentError, match="symbolic link"):
        remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    with pytest.raises(DocumentError, match="symbolic link"):
        put_file(corpus, "travel.txt", NEW)
    assert snapshot(corpus.parent) == before


def test_no_change_passes_through_a_linked_folder_or_file(corpus: Path, outside: Path) -> None:
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    (corpus / "link.txt").symlink_to(outside / "secret.txt")
    entry = remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    # A record edited to put the file back through the linked folder, over the outside file.
    _record(corpus / TRASH / entry.id, entry.id, "linked/secret.txt")
    os.rename(corpus / TRASH / entry.id / "travel.txt", corpus / TRASH / entry.id / "secret.txt")
    before = snapshot(corpus.parent)
    for name in ("linked/secret.txt", "linked/new.txt", "link.txt"):
        with pytest.raises(DocumentError, match="symbolic link"):
            put_file(corpus, name, NEW)
    with pytest.raises(DocumentError, match="symbolic link"):
        restore(corpus, entry.id)
    with pytest.raises(NoSuchDocument):
        remove_file(corpus, "link.txt", readable=["jobs.txt"])
    assert snapshot(corpus.parent) == before


# ------------------------------------------------------ a full disk: each change undone


def _fail_when(monkeypatch: pytest.MonkeyPatch, failing) -> None:
    """Make os.replace raise ENOSPC for the moves `failing(source, target)` picks."""
    replace = os.replace

    def fake(source, target) -> None:
        if failing(Path(source), Path(target)):
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", fake)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _assert_undone(corpus: Path, before: dict[str, str], failed: WriteFailed) -> None:
    assert failed.disk_full and "nothing was changed" in str(failed)
    assert snapshot(corpus.parent) == before
    assert list_trash(corpus) == [] and not list((corpus / TRASH).glob("*"))
    assert not list(corpus.glob(".upload-*"))


@pytest.mark.parametrize("failing", ["record", "move"])
def test_a_removal_the_full_disk_fails_leaves_no_entry(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    before = snapshot(corpus.parent)
    if failing == "record":
        monkeypatch.setattr(Path, "write_text", _no_space)
    else:
        _fail_when(monkeypatch, lambda source, target: True)
    with pytest.raises(WriteFailed) as failed:
        remove_file(corpus, "travel.txt", readable=["jobs.txt"])
    _assert_undone(corpus, before, failed.value)


@pytest.mark.parametrize("failing", ["record", "move to the trash", "move into place"])
def test_a_replacement_the_full_disk_fails_keeps_the_old_file(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    before = snapshot(corpus.parent)
    if failing == "record":
        monkeypatch.setattr(Path, "write_text", _no_space)
    elif failing == "move to the trash":
        _fail_when(monkeypatch, lambda source, target: TRASH in target.parts)
    else:
        _fail_when(monkeypatch, lambda source, target: source.name.startswith(".upload-"))
    with pytest.raises(WriteFailed) as failed:
        put_file(corpus, "travel.txt", NEW)
    _assert_undone(corpus, before, failed.value)


def test_a_restore_the_full_disk_fails_puts_the_displaced_file_back(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced = put_file(corpus, "travel.txt", NEW)  # OLD in the trash, NEW in place
    assert replaced is not None
    before = snapshot(corpus.parent)
    # Displacing NEW into the trash works; putting OLD back in its place does not.
    _fail_when(monkeypatch, lambda source, target: replaced.id in source.parts)
    with pytest.raises(WriteFailed, match="nothing was changed") as failed:
        restore(corpus, replaced.id)
    assert failed.value.disk_full
    assert snapshot(corpus.parent) == before
    assert list_trash(corpus) == [replaced]
