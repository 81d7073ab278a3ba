"""Knowledge bases (retriever.bases): create, list, rename, delete to the trash and restore;
names that are refused; folders the product did not create are never touched; and the
Python API's `base=`. Building and loading use the stand-in embedder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from web_server import snapshot

from retriever import Retriever
from retriever.bases import (
    ENTRY,
    MARKER,
    BadBaseName,
    BaseError,
    BaseExists,
    Bases,
    DefaultBase,
    NoSuchBase,
    NoSuchBaseTrashEntry,
    NotABase,
    check_name,
)


@pytest.fixture
def bases(tmp_path: Path) -> Bases:
    return Bases(tmp_path / "bases", tmp_path / "corpus", tmp_path / "index")


def names(bases: Bases) -> list[str]:
    return [base.name for base in bases.list()]


def test_a_new_base_has_its_own_folders_and_the_default_comes_first(bases: Bases) -> None:
    assert names(bases) == ["default"]
    assert bases.list()[0].corpus == bases.default_corpus
    created = bases.create("人事")
    bases.create("hr")
    assert names(bases) == ["default", "hr", "人事"]
    assert created.corpus == bases.root / "人事" / "corpus" and created.corpus.is_dir()
    assert created.index == bases.root / "人事" / "index" and not created.index.exists()
    assert created.created_at and not created.is_default
    marker = json.loads((bases.root / "人事" / MARKER).read_text(encoding="utf-8"))
    assert marker["kind"] == "zh-retriever knowledge base"
    assert bases.get("人事") == created
    assert [path.name for path in bases.root.iterdir() if path.name.startswith(".")] == []


def test_rename_moves_documents_and_index_with_the_base(bases: Bases) -> None:
    base = bases.create("hr")
    (base.corpus / "a.txt").write_text("年假有五天。\n", encoding="utf-8")
    renamed = bases.rename("hr", "人事部")
    assert (renamed.corpus / "a.txt").read_text(encoding="utf-8") == "年假有五天。\n"
    assert names(bases) == ["default", "人事部"]
    with pytest.raises(NoSuchBase):
        bases.get("hr")
    assert bases.rename("人事部", "人事部") == renamed  # to itself: nothing to do
    assert bases.rename("人事部", "HR").name == "HR"  # a change of case alone is allowed


def test_delete_moves_the_base_to_the_trash_and_restore_brings_it_back(bases: Bases) -> None:
    base = bases.create("hr")
    (base.corpus / "a.txt").write_text("年假有五天。\n", encoding="utf-8")
    before = snapshot(bases.root / "hr")
    entry = bases.delete("hr")
    assert entry.name == "hr" and names(bases) == ["default"]
    assert bases.trash() == [entry]
    assert snapshot(bases.root / ".trash" / entry.id / "hr") == before

    bases.create("hr")  # the name is free again: restoring under it is refused
    with pytest.raises(BaseExists):
        bases.restore(entry.id)
    restored = bases.restore(entry.id, "hr-old")
    assert restored.name == "hr-old" and snapshot(bases.root / "hr-old") == before
    assert bases.trash() == [] and not (bases.root / ".trash" / entry.id).exists()
    with pytest.raises(NoSuchBaseTrashEntry):
        bases.restore(entry.id)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".hidden",
        "..",
        "-rf",
        "a/b",
        "a\\b",
        "../up",
        "a.b",
        "a b",
        "a\n",
        "x" * 65,
        "ｈｒ",  # full-width letters: NFKC makes them "hr"
        "ﬁle",  # a ligature
        "\ud800",
        "a\x00",
    ],
)
def test_names_that_are_refused(bases: Bases, name: str) -> None:
    with pytest.raises(BadBaseName):
        check_name(name)
    with pytest.raises(BadBaseName):
        bases.create(name)
    with pytest.raises(BadBaseName):
        bases.get(name)
    assert not bases.root.exists(), "nothing was made for a refused name"


@pytest.mark.parametrize("name", ["hr", "人事", "部门_2024-财务", "_x", "x" * 64, "Ünïcode"])
def test_names_that_are_allowed(bases: Bases, name: str) -> None:
    assert bases.create(name).name == name


def test_a_name_taken_in_any_case_or_by_any_folder_is_refused(bases: Bases) -> None:
    bases.create("hr")
    for taken in ["hr", "HR", "default", "Default"]:
        with pytest.raises(BaseExists):
            bases.create(taken)
    (bases.root / "notes").write_text("mine", encoding="utf-8")
    with pytest.raises(BaseExists):
        bases.create("NOTES")
    for taken in ["notes", "default"]:
        with pytest.raises(BaseExists):
            bases.rename("hr", taken)
    assert (bases.root / "notes").read_text(encoding="utf-8") == "mine"
    assert names(bases) == ["default", "hr"]


def test_the_default_base_cannot_be_renamed_or_deleted(bases: Bases) -> None:
    with pytest.raises(DefaultBase):
        bases.rename("default", "main")
    with pytest.raises(DefaultBase):
        bases.delete("default")


def test_folders_it_did_not_create_are_left_alone(bases: Bases, tmp_path: Path) -> None:
    bases.root.mkdir()
    foreign = bases.root / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    # A marker made by hand in a folder reached through a link is not ours either.
    elsewhere = tmp_path / "elsewhere"
    Bases(elsewhere).create("real")
    os.symlink(elsewhere / "real", bases.root / "linked")
    before = snapshot(bases.root)

    assert names(bases) == ["default"]
    for name in ("photos", "linked"):
        with pytest.raises(NotABase):
            bases.get(name)
        with pytest.raises(NotABase):
            bases.delete(name)
        with pytest.raises(NotABase):
            bases.rename(name, "mine")
        with pytest.raises(BaseExists):
            bases.create(name)
    assert snapshot(bases.root) == before
    assert (bases.root / "linked").is_symlink() and (elsewhere / "real" / MARKER).is_file()


def test_the_trash_lists_only_entries_it_wrote(bases: Bases) -> None:
    entry = bases.delete(bases.create("hr").name)
    (bases.root / ".trash" / "by-hand").mkdir()
    (bases.root / ".trash" / "by-hand" / ENTRY).write_text("{}", encoding="utf-8")
    assert bases.trash() == [entry]


def test_the_bases_folder_may_not_be_inside_the_default_corpus(tmp_path: Path) -> None:
    with pytest.raises(BaseError, match="inside the default base's corpus"):
        Bases(tmp_path / "corpus" / "bases", tmp_path / "corpus", tmp_path / "index")


def test_build_and_load_name_a_base(
    bases: Bases, small_corpus: Path, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bases.root.parent)  # the default bases folder is bases/ here
    base = bases.create("fruit")
    (base.corpus / "fruit.md").write_bytes((small_corpus / "fruit.md").read_bytes())
    report = Retriever.build(base="fruit", embedder=hashing_embedder)
    assert report.index.folder == "bases/fruit/index" and report.index.files == 1
    retriever = Retriever.load(base="fruit", embedder=hashing_embedder)
    assert retriever.folder == Path("bases/fruit/index")
    assert retriever.search("香蕉产于哪里", k=1)[0].source == "fruit.md"
    with pytest.raises(BaseError, match="not both"):
        Retriever.build(small_corpus, base="fruit", embedder=hashing_embedder)
    with pytest.raises(NoSuchBase):
        Retriever.load(base="nothere", embedder=hashing_embedder)
    elsewhere = Bases(bases.root.parent / "other")
    elsewhere.create("fruit")
    with pytest.raises(Exception, match="no index"):
        Retriever.load(base="fruit", bases_root=elsewhere.root, embedder=hashing_embedder)
