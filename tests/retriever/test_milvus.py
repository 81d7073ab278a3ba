"""The Milvus backend end to end, on Milvus Lite: built through the CLI with the real default
model, it answers the questions FAISS answers (test_end_to_end's list, imported), takes
updates, and a damaged Milvus file is refused with the "rebuild" error. Milvus Lite's working
copies in the temp dir are deleted on close and at exit, and a killed process's at the next
open; nothing else there is touched.

The contract (search, scores, delete, save and load) is tests/retriever/test_backends.py's,
which runs over Milvus Lite too.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CACHE, CORPUS, KEY_PASSAGE, KEY_QUESTION, USER_QUESTIONS, copy_tree, run_cli
from pymilvus import MilvusException

from retriever import Retriever
from retriever.backends import milvus_collections, milvus_copies, milvus_dense
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
    assert (milvus_index / DENSE_FOLDER / milvus_copies.DATA).is_dir()
    settings = json.loads((milvus_index / DENSE_FOLDER / milvus_collections.SETTINGS).read_text())
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
    data = index / DENSE_FOLDER / milvus_copies.DATA
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
    shutil.rmtree(dense / milvus_copies.DATA / "collections")
    with pytest.raises(ValueError, match="no collection"):
        milvus_dense.MilvusDense.load(dense)


# ------------------------------------------------------------------ Lite working copies

# A process that opens a Milvus index's dense folder (argv[1]), says so, and holds it for
# argv[2] seconds before exiting normally.
HOLDER = """
import sys, time
from pathlib import Path
from typing import Any
from retriever.backends.milvus_dense import MilvusDense
dense = MilvusDense.load(Path(sys.argv[1]))
print("open", dense.count, flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir of the test's own, where working copies go (TMPDIR, so child processes
    use it too)."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return folder


@pytest.fixture
def small_milvus_index(small_corpus: Path, tmp_path: Path, hashing_embedder, temp_dir) -> Path:
    """The two-file corpus on Milvus Lite, with the stand-in embedder: a second to build."""
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder, backends=MILVUS)
    # The build's backend goes (and its copy with it) once collected: an error pymilvus
    # catches while it creates the collection keeps its frames in a reference cycle.
    gc.collect()
    return index


def working_copies(temp_dir: Path) -> list[str]:
    return sorted(name for name in os.listdir(temp_dir) if name.startswith("retriever-milvus-"))


def hold(dense: Path, seconds: float) -> subprocess.Popen[str]:
    """A child process holding the Milvus index in `dense` open, once it has opened it."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(dense), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().startswith("open ")
    return child


def test_closing_a_milvus_index_deletes_its_working_copy(
    small_milvus_index: Path, temp_dir: Path, hashing_embedder
) -> None:
    assert working_copies(temp_dir) == []  # the build's copy went with the build
    retriever = Retriever.load(small_milvus_index, embedder=hashing_embedder)
    [copy] = working_copies(temp_dir)
    assert (temp_dir / copy / milvus_copies.OWNER).is_file()
    assert retriever.search("苹果", k=1)[0].source == "fruit.md"
    dense = retriever.index.dense
    assert isinstance(dense, milvus_dense.MilvusDense)
    dense.close()
    assert working_copies(temp_dir) == []
    with pytest.raises(ValueError, match="closed"):
        dense.search(np.zeros(dense.dim, dtype=np.float32), 1)

    # Not closed: deleted once garbage-collected, and when the process exits.
    assert Retriever.load(small_milvus_index, embedder=hashing_embedder).search("苹果", k=1)
    gc.collect()
    assert working_copies(temp_dir) == []
    child = hold(small_milvus_index / DENSE_FOLDER, 0)
    assert child.wait(timeout=60) == 0
    assert working_copies(temp_dir) == []


def test_a_killed_process_copy_is_deleted_at_the_next_open_and_a_live_one_is_not(
    small_milvus_index: Path, temp_dir: Path
) -> None:
    dense = small_milvus_index / DENSE_FOLDER
    child = hold(dense, 120)
    try:
        [live] = working_copies(temp_dir)
        milvus_dense.MilvusDense.load(dense).close()  # the child is alive: its copy stays
        assert working_copies(temp_dir) == [live]
    finally:
        child.kill()  # SIGKILL: no atexit, no finalizer
        child.wait()
    assert working_copies(temp_dir) == [live]
    milvus_dense.MilvusDense.load(dense).close()
    assert working_copies(temp_dir) == []


def test_only_dead_working_copies_are_deleted(temp_dir: Path, tmp_path: Path) -> None:
    """What is not a folder the backend made, with its marker, stays: a folder with the
    prefix and no marker, a file, a symlink to a dead copy, a marker that is a symlink, and
    a dead copy not named as ours."""

    def dead_copy(folder: Path) -> Path:  # what a killed process leaves: data, a free marker
        (folder / milvus_copies.DATA).mkdir(parents=True)
        (folder / milvus_copies.OWNER).write_text("12345\n")
        return folder

    prefix = "retriever-milvus-"
    dead = dead_copy(temp_dir / f"{prefix}dead")
    elsewhere = dead_copy(tmp_path / "elsewhere")
    (temp_dir / f"{prefix}link").symlink_to(elsewhere, target_is_directory=True)
    (temp_dir / f"{prefix}unmarked" / milvus_copies.DATA).mkdir(parents=True)
    (temp_dir / f"{prefix}marker-link" / milvus_copies.DATA).mkdir(parents=True)
    (temp_dir / f"{prefix}marker-link" / milvus_copies.OWNER).symlink_to(
        elsewhere / milvus_copies.OWNER
    )
    (temp_dir / f"{prefix}file").write_text("")
    dead_copy(temp_dir / "not-ours")
    kept = sorted(name for name in os.listdir(temp_dir) if name != dead.name)

    milvus_dense.MilvusDense.create(8).close()  # a build sweeps too, as an open does
    assert sorted(os.listdir(temp_dir)) == kept
    assert (elsewhere / milvus_copies.DATA).is_dir()
    assert (temp_dir / "not-ours" / milvus_copies.DATA).is_dir()


def test_an_index_on_a_server_is_opened_with_the_environments_token_where_none_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page and the API load indexes outside any `configured` block (a rebuild runs in a
    background thread, which has no context either): the token of a server that asks for one
    comes from RETRIEVER_MILVUS_TOKEN there. Inside a block it is the block's, for its server
    or for none in particular (the CLI's build without --milvus-uri), and "" for another."""
    from retriever.backends.milvus_settings import MilvusSettings, configured, token_for

    server = "http://milvus.example:19530"
    monkeypatch.setenv("RETRIEVER_MILVUS_TOKEN", "user:secret")
    dense = tmp_path / "dense"
    dense.mkdir()
    (dense / milvus_collections.SETTINGS).write_text(
        json.dumps({"uri": server, "collection": "zh_retriever_x", "dim": 8})
    )
    tokens: list[str] = []

    def connect(uri: str, token: str, database: str):
        tokens.append(token)
        raise ConnectionError("no server here")

    monkeypatch.setattr(milvus_collections, "connect", connect)
    with pytest.raises(ConnectionError):
        milvus_dense.MilvusDense.load(dense)
    assert tokens == ["user:secret"]

    assert token_for(server) == "user:secret"
    with configured(MilvusSettings(uri=server, token="given")):
        assert token_for(server) == "given"
        assert token_for("http://other:19530") == ""
    with configured(MilvusSettings(token="cli")):  # the CLI's build with no --milvus-uri
        assert token_for(server) == "cli"
    monkeypatch.delenv("RETRIEVER_MILVUS_TOKEN")
    assert token_for(server) == ""


EXISTS = "index already exists for field 'vector'; call drop_index first"


@pytest.fixture
def retried(monkeypatch: pytest.MonkeyPatch, temp_dir: Path) -> dict[str, Any]:
    """Issue 23: Lite clients whose 2nd create_index (the 1st: the new collection's) makes index
    `made` (None: the one asked), then fails as pymilvus's retry did at 300k. HNSW from 50."""
    monkeypatch.setattr(milvus_dense, "HNSW_THRESHOLD", 50)
    fault: dict[str, Any] = {"made": None, "code": 35, "message": EXISTS, "calls": 0}

    def open_client(*args: Any, real_open=milvus_collections.open_client) -> Any:
        client = fault["client"] = real_open(*args)

        def create_index(name: str, params: Any, real=client.create_index, **kwargs: Any) -> None:
            if fault["made"]:
                params = milvus_collections.index_params(client, fault["made"])
            real(name, params, **kwargs)
            fault["calls"] += 1
            if fault["calls"] == 2:
                raise MilvusException(code=fault["code"], message=fault["message"])

        client.create_index = create_index
        return client

    monkeypatch.setattr(milvus_collections, "open_client", open_client)
    return fault


def test_a_retried_create_index_that_finds_its_index_builds(retried, tmp_path: Path) -> None:
    """The switch to HNSW survives the retry: HNSW, loaded, exact on 120 vectors, saved and
    loaded. The Lite client sends no keepalive pings (the GOAWAY was "too_many_pings")."""
    ids, rows = [5 * i + 3 for i in range(120)], np.random.default_rng(23).normal(size=(120, 16))
    vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    index = milvus_dense.MilvusDense.create(16)
    index.add(ids, vectors)  # FLAT → HNSW, and the create_index is retried
    client, name = retried["client"], index._collection
    assert retried["calls"] == 2 and index.count == 120
    assert client.describe_index(name, milvus_collections.VECTOR)["index_type"] == "HNSW"
    assert client.get_load_state(name)["state"].name == "Loaded"
    assert client._handler._grpc_options["grpc.keepalive_time_ms"] == 2**31 - 1  # "never"
    queries = [*vectors[[0, 77]], *vectors[5:13, ::-1]]  # 2 vectors held, 8 not
    found = [[i for i, _ in index.search(query, 10)] for query in queries]
    assert found == [[ids[r] for r in np.argsort(-(vectors @ q))[:10]] for q in queries]
    index.save(tmp_path / "dense")
    loaded = milvus_dense.MilvusDense.load(tmp_path / "dense")
    assert loaded._index_kind() == "HNSW"
    assert [[i for i, _ in loaded.search(query, 10)] for query in queries] == found


@pytest.mark.parametrize(("made", "code", "message"), [("FLAT", 35, EXISTS), (None, 1, "lost")])
def test_other_create_index_failures_stay_errors(retried, made, code: int, message: str) -> None:
    retried.update(made=made, code=code, message=message)
    with pytest.raises(MilvusException, match=message):
        milvus_dense.MilvusDense.create(16).add(list(range(60)), np.full((60, 16), 0.25))
