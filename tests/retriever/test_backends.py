"""One contract for every backend (issue 10), as txtai tests each of its ANN engines.

The same tests run over every dense backend (FAISS flat and HNSW, Milvus Lite flat and HNSW)
and every lexical backend (bm25s, Milvus Lite's BM25): a new engine is added to DENSE or
LEXICAL below and must pass them all, and then nothing else in the engine changes. Ids are
deliberately not 0..n-1: an index that has been updated has gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retriever.backends import (
    DENSE_BACKENDS,
    LEXICAL_BACKENDS,
    UnknownBackendError,
    bm25s_lexical,
    dense_backend,
    faiss_dense,
    lexical_backend,
    milvus_dense,
    milvus_lexical,
)
from retriever.backends.base import DenseBackend, LexicalBackend
from retriever.config import LexicalSettings
from retriever.words import telling_words

DIM = 16
IDS = [3, 8, 15, 16, 42, 99, 100, 7001]


def unit_vectors(count: int, seed: int = 10) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


VECTORS = unit_vectors(len(IDS))
TEXTS = [
    "办公室主任负责协调各部门的工作。",
    "行政助理负责员工的考勤和报表。",
    "苹果是一种水果，富含维生素。",
    "香蕉产于热带地区，口感软糯香甜。",
    "办公用品的采购计划由行政助理制定。",
    "办公室主任的直接上级是公司总经理。",
    "橙子富含维生素C。",
    "考勤报表于次月第一个工作日提交。",
]

# name → (how to make one empty, how to load one); a backend's variants are separate entries.
DENSE: dict[str, Callable[[pytest.MonkeyPatch], type[DenseBackend]]] = {
    "faiss-flat": lambda monkeypatch: faiss_dense.FaissDense,
    "faiss-hnsw": lambda monkeypatch: (
        monkeypatch.setattr(faiss_dense, "HNSW_THRESHOLD", 0),
        faiss_dense.FaissDense,
    )[1],
    "milvus-flat": lambda monkeypatch: milvus_dense.MilvusDense,  # Milvus Lite
    "milvus-hnsw": lambda monkeypatch: (
        monkeypatch.setattr(milvus_dense, "HNSW_THRESHOLD", 0),
        milvus_dense.MilvusDense,
    )[1],
}
LEXICAL: dict[str, Callable[[pytest.MonkeyPatch], type[LexicalBackend]]] = {
    "bm25s": lambda monkeypatch: bm25s_lexical.Bm25sLexical,
    "milvus": lambda monkeypatch: milvus_lexical.MilvusLexical,  # Milvus Lite's BM25
}


@pytest.fixture(params=list(DENSE))
def dense_cls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    return DENSE[request.param](monkeypatch)


@pytest.fixture(params=list(LEXICAL))
def lexical_cls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    return LEXICAL[request.param](monkeypatch)


def filled_dense(cls: type[DenseBackend]) -> DenseBackend:
    index = cls.create(DIM)
    index.add(IDS, VECTORS)
    return index


def filled_lexical(cls: type[LexicalBackend]) -> LexicalBackend:
    index = cls.create(LexicalSettings())
    index.add(IDS, TEXTS)
    return index


def saved_and_loaded_dense(index: DenseBackend, folder: Path) -> DenseBackend:
    folder.mkdir()
    index.save(folder)
    return type(index).load(folder)


def saved_and_loaded_lexical(index: LexicalBackend, folder: Path) -> LexicalBackend:
    folder.mkdir()
    index.save(folder)
    return type(index).load(folder, LexicalSettings())


# ------------------------------------------------------------------------------ dense


def test_dense_empty_index_finds_nothing(dense_cls) -> None:
    index = dense_cls.create(DIM)
    assert (index.count, index.dim) == (0, DIM)
    assert index.search(VECTORS[0], 5) == []
    assert index.scores(VECTORS[0], [3, 8]) == {}


def test_dense_search_returns_the_nearest_ids_best_first(dense_cls) -> None:
    index = filled_dense(dense_cls)
    assert index.count == len(IDS)
    for row, chunk_id in enumerate(IDS):
        found = index.search(VECTORS[row], 3)
        assert len(found) == 3 and found[0][0] == chunk_id
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
    assert {chunk_id for chunk_id, _ in index.search(VECTORS[0], 100)} == set(IDS)


def test_dense_scores_are_exact_cosines_of_given_ids(dense_cls) -> None:
    index = filled_dense(dense_cls)
    query = unit_vectors(1, seed=3)[0]
    scores = index.scores(query, [15, 7001, 5])  # 5 is not in the index: left out
    assert scores.keys() == {15, 7001}
    for chunk_id, score in scores.items():
        assert score == pytest.approx(float(VECTORS[IDS.index(chunk_id)] @ query), abs=1e-5)
    searched = dict(index.search(query, len(IDS)))
    assert index.scores(query, list(searched)) == pytest.approx(searched, abs=1e-5)


def test_dense_delete_removes_only_those_ids(dense_cls) -> None:
    index = filled_dense(dense_cls)
    index.delete({8, 42, 12345})  # an id it does not hold is ignored
    assert index.count == len(IDS) - 2
    found = {chunk_id for chunk_id, _ in index.search(VECTORS[1], 100)}
    assert found == set(IDS) - {8, 42}
    assert index.scores(VECTORS[1], [8, 15]).keys() == {15}
    index.delete([])
    assert index.count == len(IDS) - 2


def test_dense_save_and_load_mirror_each_other(dense_cls, tmp_path: Path) -> None:
    index = filled_dense(dense_cls)
    loaded = saved_and_loaded_dense(index, tmp_path / "dense")
    assert (loaded.count, loaded.dim) == (index.count, index.dim)
    query = unit_vectors(1, seed=4)[0]
    assert loaded.search(query, 5) == index.search(query, 5)
    loaded.add([500], unit_vectors(1, seed=5))  # an update starts from a loaded index
    assert loaded.search(unit_vectors(1, seed=5)[0], 1)[0][0] == 500


def test_dense_updates_end_where_a_fresh_build_starts(dense_cls) -> None:
    updated = dense_cls.create(DIM)
    updated.add(IDS[:5], VECTORS[:5])
    updated.delete([IDS[1]])
    updated.add(IDS[5:], VECTORS[5:])
    fresh = dense_cls.create(DIM)
    keep = [row for row, chunk_id in enumerate(IDS) if chunk_id != IDS[1]]
    fresh.add([IDS[row] for row in keep], VECTORS[keep])
    for query in unit_vectors(5, seed=6):
        assert [i for i, _ in updated.search(query, 4)] == [i for i, _ in fresh.search(query, 4)]


# ---------------------------------------------------------------------------- lexical


def test_lexical_empty_index_finds_nothing(lexical_cls) -> None:
    index = lexical_cls.create(LexicalSettings())
    assert index.count == 0
    assert index.search("考勤", 5) == []
    assert index.scores("考勤", [3]) == {}


def test_lexical_search_returns_matching_ids_best_first(lexical_cls) -> None:
    index = filled_lexical(lexical_cls)
    assert index.count == len(IDS)
    found = index.search("行政助理的考勤", 3)
    assert found[0][0] == 8 and len(found) <= 3
    assert all(score > 0 for _, score in found)
    assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
    assert {i for i, _ in index.search("维生素", 10)} == {15, 100}  # only passages that match
    assert index.search("量子计算", 5) == []  # no word known: nothing, not an error


def test_lexical_scores_of_given_ids(lexical_cls) -> None:
    index = filled_lexical(lexical_cls)
    searched = dict(index.search("办公室主任", 10))
    scores = index.scores("办公室主任", [*searched, 15, 123456])  # 123456 is not held
    assert scores.keys() == {*searched, 15}
    assert scores[15] == 0.0  # held, but no word matches
    assert {i: scores[i] for i in searched} == pytest.approx(searched)


def test_lexical_coverage_is_the_share_of_question_words_held(lexical_cls) -> None:
    index = filled_lexical(lexical_cls)

    def weight(holding: int) -> float:  # BM25's inverse document frequency, 8 passages
        return math.log1p((len(TEXTS) - holding + 0.5) / (holding + 0.5))

    # Five words: 办公, 公室, 办公室, 主任 (jieba's search mode) and 负责; 办公 is in three
    # passages, the others in two, so 办公 weighs less.
    total = weight(3) + 4 * weight(2)
    words = telling_words("办公室主任负责什么")
    shares = index.coverage(words, [3, 8, 42, 99, 123456])  # 123456: not held
    assert shares.keys() == {3, 8, 42, 99}
    assert shares[3] == pytest.approx(1.0)  # 办公室主任负责协调各部门的工作
    assert shares[8] == pytest.approx(weight(2) / total)  # 行政助理负责…: only 负责
    assert shares[42] == pytest.approx(weight(3) / total)  # 办公用品的采购计划…: only 办公
    assert shares[99] == pytest.approx(1 - weight(2) / total)  # 办公室主任的直接上级…
    assert index.coverage(telling_words("的了吗"), [3]) == {3: 0.0}  # function words only
    # A single character (做) does not count.
    assert index.coverage(telling_words("工作做"), [3]) == {3: 1.0}
    assert index.coverage(telling_words("量子计算"), [3]) == {3: 0.0}  # no word known


def test_lexical_delete_removes_only_those_ids(lexical_cls) -> None:
    index = filled_lexical(lexical_cls)
    index.delete({8, 12345})
    assert index.count == len(IDS) - 1
    assert 8 not in {i for i, _ in index.search("考勤", 10)}
    assert {i for i, _ in index.search("考勤", 10)} == {7001}
    assert index.scores("考勤", [8, 7001]).keys() == {7001}


def test_lexical_save_and_load_mirror_each_other(lexical_cls, tmp_path: Path) -> None:
    index = filled_lexical(lexical_cls)
    loaded = saved_and_loaded_lexical(index, tmp_path / "lexical")
    assert loaded.count == index.count
    for question in ("办公室主任", "维生素", "考勤报表"):
        assert loaded.search(question, 5) == index.search(question, 5)
    loaded.add([500], ["新员工入职培训由行政助理安排。"])  # an update starts from a loaded one
    assert loaded.search("入职培训", 1)[0][0] == 500


def test_lexical_updates_end_where_a_fresh_build_starts(lexical_cls) -> None:
    """BM25 depends on the whole collection (its size, its mean length): after any change
    every score must be what a build of the remaining passages gives."""
    updated = lexical_cls.create(LexicalSettings())
    updated.add(IDS[:5], TEXTS[:5])
    updated.delete([IDS[0]])
    updated.add(IDS[5:], TEXTS[5:])
    fresh = lexical_cls.create(LexicalSettings())
    fresh.add(IDS[1:], TEXTS[1:])
    for question in ("办公室主任", "行政助理考勤", "水果维生素"):
        expected = dict(fresh.search(question, 10))
        assert dict(updated.search(question, 10)) == pytest.approx(expected)


# ------------------------------------------------------------------- registry, engines


def test_backends_are_found_by_the_names_the_manifest_records() -> None:
    for name in DENSE_BACKENDS:
        assert dense_backend(name).name == name
    for name in LEXICAL_BACKENDS:
        assert lexical_backend(name).name == name
    with pytest.raises(UnknownBackendError, match=r"no dense backend named 'annoy'.*faiss"):
        dense_backend("annoy")
    assert {name.split("-")[0] for name in DENSE} == set(DENSE_BACKENDS)  # all under contract
    assert set(LEXICAL) == set(LEXICAL_BACKENDS)


def test_faiss_switches_kind_with_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_dense, "HNSW_THRESHOLD", 5)
    index = faiss_dense.FaissDense.create(DIM)
    index.add(IDS[:4], VECTORS[:4])
    assert not index.is_hnsw
    index.add(IDS[4:], VECTORS[4:])
    assert index.is_hnsw  # as a fresh build of this many vectors would be
    index.delete(IDS[:4])  # HNSW cannot remove: rebuilt, and below the threshold again
    assert not index.is_hnsw and index.count == len(IDS) - 4


def test_bm25s_update_tokenises_only_new_passages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bm25s cannot change in place: the matrix is rebuilt, from the saved token ids."""
    loaded = saved_and_loaded_lexical(filled_lexical(bm25s_lexical.Bm25sLexical), tmp_path / "l")
    tokenised: list[str] = []
    real = bm25s_lexical.tokenize

    def counting(text: str, **kwargs) -> list[str]:
        tokenised.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(bm25s_lexical, "tokenize", counting)
    loaded.delete([IDS[0]])
    loaded.add([500], ["新员工入职培训由行政助理安排。"])
    loaded.search("行政助理", 3)
    assert tokenised == ["新员工入职培训由行政助理安排。", "行政助理"]
