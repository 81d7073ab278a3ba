"""The index folder: round trip, staleness, vector reuse, damage and crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retriever import ChunkSettings, IndexLoadError, Retriever
from retriever.kernels import Cpu
from retriever.search import index_is_current
from retriever.store import MANIFEST


def build(corpus: Path, index: Path, embedder) -> Retriever:
    Retriever.build(corpus, index, embedder=embedder)
    return Retriever.load(index, embedder=embedder)


def test_round_trip_keeps_chunks_and_results(small_corpus, tmp_path, hashing_embedder) -> None:
    index = tmp_path / "index"
    first = build(small_corpus, index, hashing_embedder)
    again = Retriever.load(index, embedder=hashing_embedder)
    assert first.chunks == again.chunks
    question = "办公室主任和行政主管哪个大?"
    assert first.search(question) == again.search(question)
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    cpu = Cpu.this_machine()
    assert manifest["model"] == {
        "name": "test-hashing",
        "dim": 64,
        "kernel": "test",
        "cpu": cpu.model,
        "cpu_flags": list(cpu.flags),
    }
    assert {s["path"] for s in manifest["sources"]} == {"jobs.txt", "fruit.md"}
    assert manifest["settings"]["chunking"]["max_chars"] == 300
    assert "faiss-cpu" in manifest["versions"] and manifest["created_at"]
    assert manifest["backends"] == {"dense": "faiss", "lexical": "bm25s"}
    assert not list(index.rglob("*.pkl")) and not list(index.rglob("*.pickle"))


def test_staleness_follows_content_not_timestamps(small_corpus, tmp_path, hashing_embedder):
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    assert index_is_current(index, small_corpus)
    (small_corpus / "jobs.txt").touch()
    assert index_is_current(index, small_corpus)
    (small_corpus / "new.txt").write_text("新的文件内容。", encoding="utf-8")
    assert not index_is_current(index, small_corpus)
    assert not index_is_current(tmp_path / "missing", small_corpus)


def test_other_settings_make_the_index_stale(small_corpus, tmp_path, hashing_embedder) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    assert index_is_current(index, small_corpus, "test-hashing")
    assert not index_is_current(index, small_corpus, "another-model")
    assert not index_is_current(index, small_corpus, chunking=ChunkSettings(max_chars=120))


def test_rebuild_embeds_only_new_passages(small_corpus, tmp_path, hashing_embedder) -> None:
    index = tmp_path / "index"
    first = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    (small_corpus / "new.txt").write_text(
        "橙子是一种柑橘类水果,维生素C含量很高。", encoding="utf-8"
    )
    second = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert first.embedded == first.index.chunks and first.reused == 0
    assert second.embedded == 1 and second.reused == first.index.chunks
    hits = Retriever.load(index, embedder=hashing_embedder).search("橙子的维生素", k=1)
    assert hits[0].source == "new.txt"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda i: (i / "dense" / "vectors.faiss").write_bytes(b"garbage"), "checksum"),
        (lambda i: (i / "chunks.jsonl").unlink(), "missing chunks.jsonl"),
        (lambda i: (i / MANIFEST).write_text("{not json", encoding="utf-8"), "damaged"),
        (lambda i: (i / MANIFEST).unlink(), "not a complete index"),
        (lambda i: next((i / "lexical").glob("*.npy")).write_bytes(b"x"), "checksum"),
    ],
)
def test_damaged_index_says_how_to_fix(small_corpus, tmp_path, hashing_embedder, damage, message):
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    damage(index)
    with pytest.raises(IndexLoadError, match=message) as raised:
        Retriever.load(index, embedder=hashing_embedder)
    assert "python -m retriever build" in str(raised.value)


def test_other_model_is_refused(small_corpus, tmp_path, hashing_embedder) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    with pytest.raises(IndexLoadError, match="built with model 'test-hashing'"):
        Retriever.load(index, model="BAAI/bge-small-zh-v1.5")


def test_missing_index_says_how_to_build(tmp_path) -> None:
    with pytest.raises(IndexLoadError, match="python -m retriever build"):
        Retriever.load(tmp_path / "nothing")


def test_crash_mid_build_leaves_old_index_usable(
    small_corpus, tmp_path, hashing_embedder, monkeypatch
):
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    (small_corpus / "new.txt").write_text("新增的内容会在崩溃中丢失。", encoding="utf-8")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing BM25")

    monkeypatch.setattr("retriever.backends.bm25s_lexical.Bm25sLexical.save", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Retriever.build(small_corpus, index, embedder=hashing_embedder)
    survivor = Retriever.load(index, embedder=hashing_embedder)
    assert {c.source for c in survivor.chunks} == {"jobs.txt", "fruit.md"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_swap_is_restored(small_corpus, tmp_path, hashing_embedder) -> None:
    index = tmp_path / "index"
    build(small_corpus, index, hashing_embedder)
    index.rename(tmp_path / ".index.previous")  # as if the crash came between the two renames
    assert Retriever.load(index, embedder=hashing_embedder).chunks


def test_corpus_without_readable_files_is_refused(tmp_path, hashing_embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt: the file is empty"):
        Retriever.build(corpus, tmp_path / "index", embedder=hashing_embedder)
