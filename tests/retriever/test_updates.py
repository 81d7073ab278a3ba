"""Builds update the index one document at a time (issue 10): unchanged files are not read,
their passages keep their ids and vectors, and the result is what a build from nothing
gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from retriever import ChunkSettings, Retriever
from retriever.building import BuildReport

QUESTIONS = ["办公室主任和行政主管哪个大?", "行政助理负责考勤吗", "苹果有什么好处", "橙子的维生素"]


def build(corpus: Path, index: Path, embedder, **settings) -> BuildReport:
    return Retriever.build(corpus, index, embedder=embedder, **settings)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def ids_by_passage(index: Path, embedder) -> dict[tuple[str, int, int], int | None]:
    passages = Retriever.load(index, embedder=embedder).index.passages
    return {(p.doc_id, p.start, p.end): p.id for p in passages}


def assert_same_as_a_fresh_build(corpus: Path, index: Path, tmp_path: Path, embedder) -> None:
    """Same passages, the same ones indexed, the same results (ids aside)."""
    build(corpus, tmp_path / "fresh", embedder)
    updated = Retriever.load(index, embedder=embedder)
    fresh = Retriever.load(tmp_path / "fresh", embedder=embedder)

    def passages(retriever: Retriever) -> list[tuple]:
        return [(p.doc_id, p.start, p.end, p.text, p.id is None) for p in retriever.index.passages]

    assert passages(updated) == passages(fresh)
    for question in QUESTIONS:
        for mode in ("hybrid", "dense", "bm25"):
            got, expected = (r.search(question, 5, mode=mode) for r in (updated, fresh))
            assert [(h.source, h.start) for h in got] == [(h.source, h.start) for h in expected]
            assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-5)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The corpus files each build reads, in order."""
    import retriever.building

    seen: list[str] = []
    real = retriever.building.read_one

    def read_one(path: Path, root: Path):
        seen.append(path.name)
        return real(path, root)

    monkeypatch.setattr(retriever.building, "read_one", read_one)
    return seen


def test_an_unchanged_corpus_is_left_as_it_is(small_corpus, tmp_path, hashing_embedder, reads):
    index = tmp_path / "index"
    first = build(small_corpus, index, hashing_embedder)
    assert first.changed and sorted(first.read) == ["fruit.md", "jobs.txt"]
    before, reads[:] = snapshot(index), []
    again = build(small_corpus, index, hashing_embedder)
    assert not again.changed and (again.embedded, again.read, again.removed) == (0, (), ())
    assert again.reused == first.index.chunks and again.index == first.index
    assert reads == [] and snapshot(index) == before


def test_adding_a_file_reads_and_embeds_only_that_file(
    small_corpus, tmp_path, hashing_embedder, reads
) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    ids = ids_by_passage(index, hashing_embedder)
    (small_corpus / "orange.txt").write_text("橙子是一种柑橘类水果,维生素C含量很高。", "utf-8")
    reads[:] = []
    report = build(small_corpus, index, hashing_embedder)
    assert reads == ["orange.txt"] and report.read == ("orange.txt",)
    assert (report.embedded, report.reused) == (1, len(ids))
    after = ids_by_passage(index, hashing_embedder)
    assert {key: after[key] for key in ids} == ids  # every other passage keeps its id
    hits = Retriever.load(index, embedder=hashing_embedder).search("橙子的维生素", k=1)
    assert hits[0].source == "orange.txt"
    assert_same_as_a_fresh_build(small_corpus, index, tmp_path, hashing_embedder)


def test_changing_a_file_embeds_only_its_new_passages(
    small_corpus, tmp_path, hashing_embedder, reads
) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    fruit = small_corpus / "fruit.md"
    fruit.write_text("# 橙子\n橙子富含维生素C。\n" + fruit.read_text("utf-8"), "utf-8")
    reads[:] = []
    report = build(small_corpus, index, hashing_embedder)
    # The file is read again; of its passages only the new one is embedded, the moved ones
    # keep their ids and vectors.
    assert reads == ["fruit.md"] and report.embedded == 1
    hits = Retriever.load(index, embedder=hashing_embedder).search("橙子", k=1)
    # Offsets of the new text, as rendered: "橙子\n" before the passage.
    assert hits[0].heading == "橙子" and hits[0].start == 3
    assert_same_as_a_fresh_build(small_corpus, index, tmp_path, hashing_embedder)


def test_removing_a_file_deletes_its_passages(small_corpus, tmp_path, hashing_embedder, reads):
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    (small_corpus / "fruit.md").unlink()
    reads[:] = []
    report = build(small_corpus, index, hashing_embedder)
    assert reads == [] and report.removed == ("fruit.md",) and report.embedded == 0
    retriever = Retriever.load(index, embedder=hashing_embedder)
    assert {chunk.source for chunk in retriever.chunks} == {"jobs.txt"}
    assert retriever.info.files == 1
    assert_same_as_a_fresh_build(small_corpus, index, tmp_path, hashing_embedder)


def test_a_repeat_is_indexed_once_its_first_copy_goes(small_corpus, tmp_path, hashing_embedder):
    index = tmp_path / "index"
    copy = small_corpus / "zz-copy.txt"  # after jobs.txt in corpus order
    copy.write_text((small_corpus / "jobs.txt").read_text("utf-8"), "utf-8")
    build(small_corpus, index, hashing_embedder)
    retriever = Retriever.load(index, embedder=hashing_embedder)
    assert "zz-copy.txt" not in {chunk.source for chunk in retriever.chunks}
    assert "zz-copy.txt" in {passage.source for passage in retriever.index.passages}

    (small_corpus / "jobs.txt").unlink()
    report = build(small_corpus, index, hashing_embedder)
    assert report.read == ()  # the copy's passages were kept: no file is read again
    hits = Retriever.load(index, embedder=hashing_embedder).search("行政助理的职责", k=1)
    assert hits[0].source == "zz-copy.txt"
    assert_same_as_a_fresh_build(small_corpus, index, tmp_path, hashing_embedder)


def test_an_unreadable_file_is_not_read_again_until_it_changes(
    small_corpus, tmp_path, hashing_embedder, reads
) -> None:
    index = tmp_path / "index"
    (small_corpus / "broken.txt").write_bytes(b"")
    first = build(small_corpus, index, hashing_embedder)
    (small_corpus / "orange.txt").write_text("橙子富含维生素C。", "utf-8")
    reads[:] = []
    second = build(small_corpus, index, hashing_embedder)
    assert reads == ["orange.txt"]
    assert second.index.skipped == first.index.skipped != []
    (small_corpus / "broken.txt").write_text("修好的文件。", "utf-8")
    reads[:] = []
    third = build(small_corpus, index, hashing_embedder)
    assert reads == ["broken.txt"] and third.index.skipped == []


def test_other_settings_build_from_nothing(small_corpus, tmp_path, hashing_embedder, reads):
    index = tmp_path / "index"
    first = build(small_corpus, index, hashing_embedder)
    reads[:] = []
    report = build(small_corpus, index, hashing_embedder, chunking=ChunkSettings(max_chars=40))
    assert sorted(reads) == ["fruit.md", "jobs.txt"]
    assert report.embedded == report.index.chunks and report.reused == 0
    assert report.index.chunks >= first.index.chunks


def test_a_sequence_of_updates_ends_where_a_fresh_build_starts(
    small_corpus, tmp_path, hashing_embedder
) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    steps = [
        ("add", "a.txt", "行政主管负责公司的日常行政事务。\n办公室主任负责协调。"),
        ("add", "b.txt", "苹果是一种水果,富含维生素。每天吃一个苹果有益健康。"),  # repeats fruit.md
        ("change", "jobs.txt", "行政助理的职责\n负责员工的考勤。\n负责办公用品采购。"),
        ("remove", "fruit.md", ""),
        ("change", "a.txt", "办公室主任负责协调。\n行政主管负责日常事务。"),
    ]
    for action, name, text in steps:
        if action == "remove":
            (small_corpus / name).unlink()
        else:
            (small_corpus / name).write_text(text, "utf-8")
        build(small_corpus, index, hashing_embedder)
        assert_same_as_a_fresh_build(
            small_corpus, index, tmp_path / action / name, hashing_embedder
        )
