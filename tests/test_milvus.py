"""The Milvus backend end to end, on Milvus Lite: built through the CLI with the real default
model, it answers the questions FAISS answers (test_end_to_end's list, imported), takes
updates, and a damaged Milvus file is refused with the "rebuild" error.

The contract (search, scores, delete, save and load) is tests/test_backends.py's, which runs
over Milvus Lite too.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import CACHE, CORPUS, copy_tree
from test_end_to_end import KEY_PASSAGE, KEY_QUESTION, USER_QUESTIONS, run_cli

from retriever import Retriever
from retriever.backends import milvus_dense
from retriever.config import BackendSettings
from retriever.embedding import DEFAULT_EMBEDDER, load_embedder
from retriever.schema import IndexLoadError
from retriever.store import DENSE_FOLDER, MANIFEST

MILVUS = BackendSettings(dense="milvus")
NEW_DOCUMENT = "印章管理制度.txt"
NEW_TEXT = (
    "公司印章由行政部统一保管，使用印章必须填写用印申请单，经部门经理签字后方可盖章。"
    "合同专用章仅用于经法务审核的合同，严禁在空白文件上加盖印章。"
)
NEW_QUESTION = "合同专用章可以盖在空白文件上吗?"


@pytest.fixture(scope="module")
def milvus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starting corpus built with `build --backend milvus`, as a user would."""
    folder = tmp_path_factory.mktemp("milvus") / "index"
    result = run_cli(
        "build", "--corpus", str(CORPUS), "--index", str(folder), "--backend", "milvus", "-q"
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def milvus_retriever(milvus_index: Path) -> Retriever:
    return Retriever.load(milvus_index, cache_dir=CACHE)


def test_the_manifest_records_milvus_and_the_data_is_in_the_index_folder(milvus_index) -> None:
    manifest = json.loads((milvus_index / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["backends"] == {"dense": "milvus", "lexical": "bm25s"}
    assert (milvus_index / DENSE_FOLDER / milvus_dense.DATA).is_dir()
    settings = json.loads((milvus_index / DENSE_FOLDER / milvus_dense.SETTINGS).read_text())
    assert settings["uri"] is None  # Milvus Lite: nothing outside the folder


def test_key_question_cites_the_comparison_passage(milvus_retriever) -> None:
    assert any(KEY_PASSAGE in hit.text for hit in milvus_retriever.search(KEY_QUESTION, k=3))
    answer = milvus_retriever.ask(KEY_QUESTION)
    assert answer.found and KEY_PASSAGE in answer.answer


@pytest.mark.parametrize(("question", "phrase"), USER_QUESTIONS)
def test_user_questions_find_their_passage(milvus_retriever, question, phrase) -> None:
    texts = [hit.heading + hit.text for hit in milvus_retriever.search(question, k=5)]
    assert any(re.search(phrase, text) for text in texts), texts


def test_the_cli_searches_a_milvus_index_with_no_option(milvus_index) -> None:
    result = run_cli("search", KEY_QUESTION, "-k", "3", "--json", "--index", str(milvus_index))
    assert result.returncode == 0, result.stderr
    assert any(KEY_PASSAGE in hit["text"] for hit in json.loads(result.stdout))


def test_an_update_is_seen_by_the_next_search_and_survives_reopening(
    milvus_index: Path, tmp_path: Path
) -> None:
    """Add one document, then remove one: only those passages change, in a copy of the
    index, and a fresh process sees the result."""
    corpus = copy_tree(CORPUS, tmp_path / "corpus")
    index = copy_tree(milvus_index, tmp_path / "index")
    embedder = load_embedder(DEFAULT_EMBEDDER, cache_dir=CACHE)
    (corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")

    added = Retriever.build(corpus, index, embedder=embedder, backends=MILVUS)
    assert added.read == (NEW_DOCUMENT,) and added.reused > 0
    hits = Retriever.load(index, embedder=embedder).search(NEW_QUESTION, k=3)
    assert hits[0].source == NEW_DOCUMENT

    (corpus / "office_director_vs_admin_assistant.txt").unlink()
    # No backends named, as the page's rebuilds and `make index` build: the index stays Milvus.
    removed = Retriever.build(corpus, index, embedder=embedder)
    assert removed.removed == ("office_director_vs_admin_assistant.txt",)
    assert json.loads((index / MANIFEST).read_text())["backends"]["dense"] == "milvus"
    stale = run_cli("build", "--if-stale", "--corpus", str(corpus), "--index", str(index))
    assert stale.returncode == 0 and "is up to date" in stale.stderr
    result = run_cli("search", KEY_QUESTION, "-k", "5", "--json", "--index", str(index))
    assert result.returncode == 0, result.stderr
    assert {hit["source"] for hit in json.loads(result.stdout)} == {NEW_DOCUMENT}


def test_a_damaged_milvus_file_says_rebuild(milvus_index: Path, tmp_path: Path) -> None:
    index = copy_tree(milvus_index, tmp_path / "index")
    data = index / DENSE_FOLDER / milvus_dense.DATA
    damaged = next(path for path in sorted(data.rglob("*.parquet")))
    damaged.write_bytes(b"not a parquet file")
    with pytest.raises(IndexLoadError, match="rebuild"):
        Retriever.load(index, cache_dir=CACHE)
    result = run_cli("search", KEY_QUESTION, "--index", str(index))
    assert result.returncode == 2 and "rebuild" in result.stderr


def test_milvus_that_cannot_open_its_collection_is_a_load_error(
    milvus_index: Path, tmp_path: Path
) -> None:
    """Damage the checksums cannot see (say, a manifest edited by hand) still says rebuild:
    the backend turns Milvus's errors into ValueError, which loading reports."""
    dense = copy_tree(milvus_index / DENSE_FOLDER, tmp_path / "dense")
    shutil.rmtree(dense / milvus_dense.DATA / "collections")
    with pytest.raises(ValueError, match="no collection"):
        milvus_dense.MilvusDense.load(dense)
