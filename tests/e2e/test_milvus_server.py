"""The Milvus backend against a real Milvus server process on 127.0.0.1: `milvus-lite server`,
the gRPC server that milvus-lite (pinned in requirements.txt) installs. One server serves
the whole module; every test uses its own index folders and collections on it.

Build, search, ask, add a document, remove one, rebuild from scratch, kill -9 during an
update (the previous index answers after it, and the dead build's collection goes at the
next build), and two indexes on one server, each owning its collections. The same for the
words (`--lexical milvus`, Milvus's BM25 function, which milvus-lite's server has): BM25
results equal bm25s's through updates, and the lexical collections are owned as the dense
ones are; a server without BM25 (older than 2.5) is refused before anything is made. The
plumbing runs in-process with the stand-in embedder (conftest.HashingEmbedder); one path,
the CLI with the real default model, builds the shipped corpus on the server and updates it.

Not covered here: PyPI's `milvus` package (an embedded Milvus 2.3.5 standalone). Its
components listen on every interface unless each is configured otherwise, and it pins
versions this project does not use; docs/milvus.md says why it is not in the tests. Nor does
milvus-lite's server have a time tick: every consistency level reads alike there, so the
levels' cost is measured against what docs/milvus.md reports, not here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, KEY_PASSAGE, KEY_QUESTION, ROOT, copy_tree, run_cli
from pymilvus import MilvusException

from retriever import Retriever
from retriever.backends import milvus_collections, milvus_copies, milvus_owners, milvus_text
from retriever.backends.milvus_dense import MilvusDense
from retriever.backends.milvus_lexical import MilvusLexical
from retriever.backends.milvus_settings import MilvusSettings, configured
from retriever.config import BackendSettings, ChunkSettings
from retriever.store import DENSE_FOLDER, LEXICAL_FOLDER, MANIFEST

MILVUS = BackendSettings(dense="milvus")
BOTH = BackendSettings(dense="milvus", lexical="milvus")  # the words on the server too
NEW_DOCUMENT = "印章管理制度.txt"
NEW_TEXT = (
    "公司印章由行政部统一保管，使用印章必须填写用印申请单，经部门经理签字后方可盖章。"
    "合同专用章仅用于经法务审核的合同，严禁在空白文件上加盖印章。"
)
NEW_QUESTION = "合同专用章可以盖在空白文件上吗?"
START_TIMEOUT = 60.0
EXTERNAL_SERVER = "RETRIEVER_TEST_MILVUS_URI"  # a running server to test instead


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets listen on at `port` (from /proc/net/tcp{,6}), an
    IPv4-mapped IPv6 address as its IPv4 one."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(
                bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)
            )
            ip = ipaddress.ip_address(raw)
            mapped = getattr(ip, "ipv4_mapped", None)
            found.add(str(mapped or ip))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `milvus-lite server` on 127.0.0.1, its URI; stopped when the module is done.

    With EXTERNAL_SERVER set to a URI, that server instead (started and stopped by the
    caller; docs/milvus.md runs the module so against Milvus 2.3.5)."""
    external = os.environ.get(EXTERNAL_SERVER)
    if external:
        yield external
        return
    command = Path(sys.executable).parent / "milvus-lite"
    assert command.is_file(), f"{command} is missing: milvus-lite is in requirements.txt"
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server") / "data"
    log = (data.parent / "server.log").open("w")
    process = subprocess.Popen(
        [command, "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not listening_addresses(port):
            assert process.poll() is None, (data.parent / "server.log").read_text()
            assert time.monotonic() < deadline, "milvus-lite server did not start in time"
            time.sleep(0.2)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def client(server: str):
    from pymilvus import MilvusClient

    connection = MilvusClient(uri=server)
    yield connection
    connection.close()


@pytest.fixture
def settings(server: str) -> Iterator[MilvusSettings]:
    """New Milvus indexes go to the server within the test."""
    with configured(MilvusSettings(uri=server)) as given:
        yield given


def ours(client) -> set[str]:
    return {
        name
        for name in client.list_collections()
        if name.startswith(milvus_collections.COLLECTION_PREFIX)
    }


def recorded(index: Path, side: str = DENSE_FOLDER) -> tuple[str, list[str]]:
    """The collection dense/milvus.json (or lexical/'s) names, and the manifest's list."""
    saved = json.loads((index / side / milvus_collections.SETTINGS).read_text())
    manifest = json.loads((index / MANIFEST).read_text())
    return saved["collection"], manifest["collections"]


def has_bm25(client) -> bool:
    """Whether the server has Milvus's BM25 function (milvus-lite's and 2.5+ have it)."""
    try:
        milvus_text.check_bm25(client.get_server_version(), "")
    except ValueError:
        return False
    return True


def count(client, collection: str) -> int:
    rows = client.query(collection, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


def test_the_server_listens_on_loopback_only(server: str) -> None:
    if os.environ.get(EXTERNAL_SERVER):
        pytest.skip("a server started elsewhere: how it listens is its starter's business")
    port = int(server.rsplit(":", 1)[1])
    assert listening_addresses(port) == {"127.0.0.1"}


def test_build_search_and_ask_on_the_server(
    server, client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder, backends=MILVUS)
    collection, listed = recorded(index)
    assert listed == [collection] and collection in ours(client)
    assert not (index / DENSE_FOLDER / milvus_copies.DATA).exists()  # nothing of Lite's
    saved = json.loads((index / DENSE_FOLDER / milvus_collections.SETTINGS).read_text())
    assert saved["uri"] == server and saved["consistency"] == "Bounded"
    assert "token" not in saved
    properties = client.describe_collection(collection)["properties"]
    assert properties[milvus_owners.INDEX_FOLDER] == str(index.resolve())
    assert properties.get(milvus_owners.BUILDER, "") == ""  # no longer a build's

    retriever = Retriever.load(index, embedder=hashing_embedder)
    assert retriever.search("苹果", k=1)[0].source == "fruit.md"
    answer = retriever.ask("办公室主任和行政主管哪个大?")
    assert answer.found and "无法进行比较" in answer.answer
    assert count(client, collection) == retriever.index.dense.count == 4


def test_add_remove_and_rebuild_from_scratch_keep_two_collections_at_most(
    client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    """Each build writes a new collection and retires the one it replaced, which the
    build after drops: an index owns its collection and the one before, no more."""
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder, backends=MILVUS)
    first, _ = recorded(index)
    served = Retriever.load(index, embedder=hashing_embedder)  # a page serving the index

    (small_corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")
    added = Retriever.build(small_corpus, index, embedder=hashing_embedder)  # backends kept
    assert added.read == (NEW_DOCUMENT,) and added.reused == 4
    second, listed = recorded(index)
    assert listed == [second, first] and {first, second} <= ours(client)
    fresh = Retriever.load(index, embedder=hashing_embedder)
    assert fresh.search(NEW_QUESTION, k=1)[0].source == NEW_DOCUMENT
    assert count(client, second) == 5 and count(client, first) == 4
    # The index loaded before the update still answers from the retired collection.
    assert served.search("苹果", k=1)[0].source == "fruit.md"

    (small_corpus / "fruit.md").unlink()
    removed = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert removed.removed == ("fruit.md",)
    third, listed = recorded(index)
    assert listed == [third, second] and ours(client) & {first, second, third} == {second, third}
    hits = Retriever.load(index, embedder=hashing_embedder).search("苹果 香蕉", k=10)
    assert "fruit.md" not in {hit.source for hit in hits} and count(client, third) == 3
    # Two builds on, the first collection is gone: a process still reading it is told so.
    with pytest.raises(MilvusException, match=r"(?i)collection"):
        served.search("苹果", k=1)

    # Other chunk settings: a build from nothing, into a new collection.
    scratch = Retriever.build(
        small_corpus, index, embedder=hashing_embedder, chunking=ChunkSettings(max_chars=40)
    )
    assert scratch.reused == 0
    fourth, listed = recorded(index)
    assert listed == [fourth, third] and ours(client) & {second, third, fourth} == {third, fourth}
    hits = Retriever.load(index, embedder=hashing_embedder).search(NEW_QUESTION, k=1)
    assert hits[0].source == NEW_DOCUMENT


def same_bm25(ours: Retriever, theirs: Retriever) -> None:
    """Both rank each question's passages alike by BM25, with equal scores."""
    for question in ("苹果富含维生素", "办公室主任和行政主管", NEW_QUESTION, "香蕉 热带"):
        got, expected = (
            [(hit.text, hit.score) for hit in one.search(question, k=10, mode="bm25")]
            for one in (ours, theirs)
        )
        assert [text for text, _ in got] == [text for text, _ in expected], question
        assert [score for _, score in got] == pytest.approx([s for _, s in expected], rel=1e-4)


def test_the_words_on_the_server_score_as_bm25s_through_updates(
    server, client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    """--lexical milvus on the server: each build's words go to a collection of their own,
    which the index owns as it owns its vectors' (listed in the manifest, the replaced one
    retired for one build, then dropped), and BM25 answers as bm25s's does."""
    if not has_bm25(client):
        pytest.skip("a server without BM25 (Milvus 2.3, 2.4)")
    index, reference = tmp_path / "index", tmp_path / "bm25s"

    def build() -> tuple[Retriever, str, list[str]]:
        Retriever.build(small_corpus, index, embedder=hashing_embedder, backends=BOTH)
        Retriever.build(small_corpus, reference, embedder=hashing_embedder)  # faiss, bm25s
        loaded = Retriever.load(index, embedder=hashing_embedder)
        same_bm25(loaded, Retriever.load(reference, embedder=hashing_embedder))
        words, listed = recorded(index, LEXICAL_FOLDER)
        assert listed[0] == recorded(index)[0] and words in listed  # both sides listed
        return loaded, words, listed

    served, first, listed = build()
    assert isinstance(served.index.lexical, MilvusLexical) and first in ours(client)
    saved = json.loads((index / LEXICAL_FOLDER / milvus_collections.SETTINGS).read_text())
    assert saved["uri"] == server and "token" not in saved
    assert not (index / LEXICAL_FOLDER / milvus_copies.DATA).exists()  # nothing of Lite's
    properties = client.describe_collection(first)["properties"]
    assert properties[milvus_owners.INDEX_FOLDER] == str(index.resolve())
    assert properties.get(milvus_text.BUILDER, "") == ""  # no longer a build's
    assert served.search("苹果", k=1)[0].source == "fruit.md"
    assert served.ask("办公室主任和行政主管哪个大?").found

    (small_corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")
    added, second, listed = build()
    assert added.search(NEW_QUESTION, k=1)[0].source == NEW_DOCUMENT
    assert listed[2:] == [second, first] and {first, second} <= ours(client)
    assert served.search("苹果", k=1, mode="bm25")[0].source == "fruit.md"  # the retired one

    (small_corpus / "fruit.md").unlink()
    removed, third, listed = build()
    assert listed[2:] == [third, second]
    assert ours(client) & {first, second, third} == {second, third}  # two builds on: gone
    assert "fruit.md" not in {hit.source for hit in removed.search("苹果 香蕉", k=10)}
    assert removed.index.lexical.count == count(client, third) == 3


def test_a_server_without_bm25_is_refused_before_anything_is_made(
    client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder, monkeypatch
) -> None:
    """Milvus 2.3 and 2.4 have no BM25 function: --lexical milvus names the version and
    says to use bm25s, and leaves nothing on the server."""
    monkeypatch.setattr(type(client), "get_server_version", lambda self, **_: "v2.4.17")
    before = ours(client)
    with pytest.raises(ValueError, match=r"v2\.4\.17, which has no BM25.*--lexical bm25s"):
        Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder, backends=BOTH)
    assert ours(client) == before and not (tmp_path / "index" / MANIFEST).exists()


# A build in a child process whose `argv[6]` side stops at `argv[4]` (after the backend took
# the new vectors or words, or in the middle of saving) and says so, to be killed there.
STOPPED_BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[5])
    from conftest import HashingEmbedder
    from retriever import Retriever
    from retriever.backends.milvus_dense import MilvusDense
    from retriever.backends.milvus_lexical import MilvusLexical
    from retriever.backends.milvus_settings import MilvusSettings, configured

    where, Backend = sys.argv[4], MilvusDense if sys.argv[6] == "dense" else MilvusLexical
    original = getattr(Backend, where)

    def stop(self, *args):
        result = original(self, *args) if where == "add" else None
        print("stopped", self.collections()[0], flush=True)
        time.sleep(600)
        return result

    setattr(Backend, where, stop)
    with configured(MilvusSettings(uri=sys.argv[3])):
        Retriever.build(Path(sys.argv[1]), Path(sys.argv[2]), embedder=HashingEmbedder())
    """
)


@pytest.mark.parametrize(
    ("side", "where"), [(DENSE_FOLDER, "add"), (DENSE_FOLDER, "save"), (LEXICAL_FOLDER, "save")]
)
def test_kill_9_during_an_update_leaves_the_previous_index_answering(
    server, client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder, side, where
) -> None:
    if side == LEXICAL_FOLDER and not has_bm25(client):
        pytest.skip("a server without BM25 (Milvus 2.3, 2.4)")
    index = tmp_path / "index"
    backends = MILVUS if side == DENSE_FOLDER else BOTH
    Retriever.build(small_corpus, index, embedder=hashing_embedder, backends=backends)
    before, _ = recorded(index, side)
    (small_corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")

    tests = ROOT / "tests"
    child = subprocess.Popen(
        [sys.executable, "-c", STOPPED_BUILD, small_corpus, index, server, where, tests, side],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[:1] == ["stopped"], line
        dead = line[1]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert dead != before and dead in ours(client)  # what the killed build left

    retriever = Retriever.load(index, embedder=hashing_embedder)
    assert recorded(index, side)[0] == before
    assert retriever.search("苹果", k=1)[0].source == "fruit.md"
    assert NEW_DOCUMENT not in {hit.source for hit in retriever.search(NEW_QUESTION, k=10)}

    report = Retriever.build(small_corpus, index, embedder=hashing_embedder)
    assert report.read == (NEW_DOCUMENT,)
    after, listed = recorded(index, side)
    assert {after, before} <= set(listed) and dead not in listed  # the dead build's is not
    assert dead not in ours(client) and {before, after} <= ours(client)
    assert Retriever.load(index, embedder=hashing_embedder).search(NEW_QUESTION, k=1)[0].source == (
        NEW_DOCUMENT
    )


def test_two_indexes_on_one_server_each_own_their_collections(
    client, settings, small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    other_corpus = tmp_path / "other"
    other_corpus.mkdir()
    (other_corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")
    one, two = tmp_path / "one", tmp_path / "two"
    backends = BOTH if has_bm25(client) else MILVUS  # each side's collections, where it can
    Retriever.build(small_corpus, one, embedder=hashing_embedder, backends=backends)
    Retriever.build(other_corpus, two, embedder=hashing_embedder, backends=backends)
    first_one, first_two = set(recorded(one)[1]), set(recorded(two)[1])
    assert len(first_one) == len(first_two) == (2 if backends == BOTH else 1)
    assert not first_one & first_two

    # A copy of index one names one's collection but does not own it.
    copied = copy_tree(one, tmp_path / "copy")
    (small_corpus / "more.txt").write_text("橙子富含维生素C。", encoding="utf-8")
    Retriever.build(small_corpus, copied, embedder=hashing_embedder)
    (small_corpus / "more.txt").write_text("橙子富含维生素C和膳食纤维。", encoding="utf-8")
    Retriever.build(small_corpus, copied, embedder=hashing_embedder)
    assert first_one <= ours(client)  # one's, so the copy's updates kept them
    for text in ("橙子富含维生素C。", "橙子富含维生素C和膳食纤维。"):
        (small_corpus / "more.txt").write_text(text, encoding="utf-8")
        Retriever.build(small_corpus, one, embedder=hashing_embedder)
    assert not first_one & ours(client)  # one's own updates dropped them
    assert set(recorded(one)[1] + recorded(copied)[1]) | first_two <= ours(client)
    assert set(recorded(two)[1]) == first_two  # two's, untouched
    assert Retriever.load(copied, embedder=hashing_embedder).search("橙子", k=1)[0].source == (
        "more.txt"
    )

    two_retriever = Retriever.load(two, embedder=hashing_embedder)
    assert two_retriever.search(NEW_QUESTION, k=1)[0].source == NEW_DOCUMENT
    hits = Retriever.load(one, embedder=hashing_embedder).search("橙子", k=1)
    assert hits[0].source == "more.txt"


def test_settings_are_checked_and_the_cli_needs_a_milvus_backend_for_them() -> None:
    with pytest.raises(ValueError, match="consistency"):
        MilvusSettings(uri="http://127.0.0.1:19530", consistency="Sometimes")
    with pytest.raises(ValueError, match="http://"):
        MilvusSettings(uri="127.0.0.1:19530")
    result = run_cli("build", "--milvus-uri", "http://127.0.0.1:1", "--index", "nowhere")
    assert result.returncode != 0 and "--backend milvus" in result.stderr


def test_a_stopped_server_is_a_load_error_that_names_it(tmp_path: Path) -> None:
    """An index whose server cannot be reached is refused with an error naming the server,
    rather than hanging."""
    port = free_port()  # nothing listens there
    dense = tmp_path / "dense"
    dense.mkdir()
    (dense / milvus_collections.SETTINGS).write_text(
        json.dumps({"uri": f"http://127.0.0.1:{port}", "collection": "zh_retriever_x", "dim": 8})
    )
    started = time.monotonic()
    with pytest.raises(ValueError, match=f"127.0.0.1:{port}"):
        MilvusDense.load(dense)
    assert time.monotonic() - started < 30


def test_the_cli_builds_the_corpus_on_the_server_with_the_real_model_and_updates_it(
    server, client, tmp_path: Path
) -> None:
    """The user's path, and the one that failed before: build with --milvus-uri (vectors and,
    where the server has BM25, words on the server), ask, then add a document and build
    again with no options."""
    words = has_bm25(client)  # Milvus 2.3 and 2.4 keep the words in the folder (bm25s)
    corpus = copy_tree(CORPUS, tmp_path / "corpus")
    index = tmp_path / "index"
    built = run_cli(
        "build", "--corpus", str(corpus), "--index", str(index), "-q",
        "--backend", "milvus", *(["--lexical", "milvus"] if words else []),
        "--milvus-uri", server, "--milvus-consistency", "Session",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    first, listed = recorded(index)
    first_words = recorded(index, LEXICAL_FOLDER)[0] if words else None
    assert sorted(listed) == sorted(name for name in (first, first_words) if name)
    saved = json.loads((index / DENSE_FOLDER / milvus_collections.SETTINGS).read_text())
    assert saved["consistency"] == "Session"
    answer = run_cli("ask", KEY_QUESTION, "--json", "--index", str(index))
    assert answer.returncode == 0, answer.stderr
    assert KEY_PASSAGE in json.loads(answer.stdout)["answer"]

    (corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")
    updated = run_cli("build", "--corpus", str(corpus), "--index", str(index), "-q")
    assert updated.returncode == 0, updated.stderr
    second, listed = recorded(index)
    second_words = recorded(index, LEXICAL_FOLDER)[0] if words else None
    assert second_words != first_words or not words
    assert {name for name in (first, second, second_words) if name} <= set(listed) & ours(client)
    for mode in ("bm25", "hybrid"):
        result = run_cli(
            "search", NEW_QUESTION, "-k", "3", "--mode", mode, "--json", "--index", str(index)
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["source"] == NEW_DOCUMENT, mode
