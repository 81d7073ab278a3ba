"""What a build may replace, what a load refuses, and what crashed builds leave behind.

A build replaces its index folder whole, so it is refused for anything that is not an index
this project built (issue 8); a damaged index is an IndexLoadError saying to rebuild, never a
traceback; and staging folders or backups of dead builds are removed by the next build or
load, while a live build's are left alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, HashingEmbedder

from retriever import IndexLoadError, Retriever
from retriever.__main__ import main
from retriever.manifest import FORMAT
from retriever.staging import BUILD_LOCK, IndexFolderError
from retriever.store import CHUNKS, MANIFEST, README, README_TEXT

VECTORS = "dense/vectors.faiss"

HINT = "python -m retriever build"


class UnusableEmbedder(HashingEmbedder):
    """Fails when used: a refused build must not get as far as embedding."""

    def encode_passages(self, texts, *, progress=False):
        raise AssertionError("the build went on after it should have been refused")


class NarrowEmbedder(HashingEmbedder):
    """The stand-in under its own name, but giving 32-dim vectors instead of 64."""

    dim = 32


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root`, with the content of each file (None for folders and links)."""
    return {
        path.relative_to(root).as_posix(): (
            path.read_bytes() if path.is_file() and not path.is_symlink() else None
        )
        for path in sorted(root.rglob("*"))
    }


def assert_refused(corpus: Path | str, index: Path | str, match: str, watched: Path) -> None:
    """The build raises IndexFolderError and nothing under `watched` changes."""
    before = snapshot(watched)
    with pytest.raises(IndexFolderError, match=match):
        Retriever.build(corpus, index, embedder=UnusableEmbedder())
    assert snapshot(watched) == before


def user_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("我的笔记,不能被删除。", encoding="utf-8")
    (folder / "photos").mkdir()
    (folder / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.fixture
def index(small_corpus: Path, tmp_path: Path, hashing_embedder) -> Path:
    folder = tmp_path / "index"
    Retriever.build(small_corpus, folder, embedder=hashing_embedder)
    return folder


def read_manifest_json(index: Path) -> dict:
    return json.loads((index / MANIFEST).read_text(encoding="utf-8"))


def write_manifest_json(index: Path, manifest: object) -> None:
    (index / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def edit_manifest(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A damage that edits the manifest in place."""

    def damage(index: Path) -> None:
        manifest = read_manifest_json(index)
        change(manifest)
        write_manifest_json(index, manifest)

    return damage


def rewrite_listed(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """A damage to a listed file whose checksum is then recomputed, so only later checks see
    it."""

    def damage(index: Path) -> None:
        data = change((index / name).read_bytes())
        (index / name).write_bytes(data)
        manifest = read_manifest_json(index)
        manifest["checksums"][name] = hashlib.sha256(data).hexdigest()
        write_manifest_json(index, manifest)

    return damage


def replace_chunk_line(number: int, line: str) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        lines = data.decode("utf-8").splitlines(keepends=True)
        lines[number - 1] = line + "\n"
        return "".join(lines).encode("utf-8")

    return change


def edit_first_chunk(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        first, rest = data.decode("utf-8").split("\n", 1)
        record = json.loads(first)
        change(record)
        return (json.dumps(record, ensure_ascii=False) + "\n" + rest).encode("utf-8")

    return edit


# ------------------------------------------------------------------------------- the guard


def test_folder_of_user_files_is_not_replaced(small_corpus: Path, tmp_path: Path) -> None:
    user_folder(tmp_path / "mine")
    assert_refused(small_corpus, tmp_path / "mine", r"holds notes\.txt, photos", tmp_path)


def test_index_equal_to_the_corpus_is_refused(small_corpus: Path, tmp_path: Path) -> None:
    assert_refused(small_corpus, small_corpus, "is the corpus itself", tmp_path)


def test_index_inside_the_corpus_is_refused(small_corpus: Path, tmp_path: Path) -> None:
    assert_refused(small_corpus, small_corpus / "index", "inside the corpus", tmp_path)


def test_index_inside_the_corpus_is_refused_even_if_it_is_an_index(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    Retriever.build(small_corpus, tmp_path / "elsewhere", embedder=hashing_embedder)
    (tmp_path / "elsewhere").rename(small_corpus / "index")
    assert_refused(small_corpus, small_corpus / "index", "inside the corpus", tmp_path)


def test_corpus_inside_the_index_is_refused(
    small_corpus: Path, tmp_path: Path, hashing_embedder
) -> None:
    index = tmp_path / "index"
    Retriever.build(small_corpus, index, embedder=hashing_embedder)
    small_corpus.rename(index / "corpus")
    assert_refused(index / "corpus", index, "holds the corpus", tmp_path)


def test_git_checkout_as_index_is_refused(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = user_folder(tmp_path / "checkout")
    (checkout / ".git").mkdir()
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    small_corpus.rename(checkout / "corpus")
    monkeypatch.chdir(checkout)
    assert_refused("corpus", ".", "holds the corpus", tmp_path)


@pytest.mark.parametrize("index", [".", ".."])
def test_folder_holding_the_working_directory_is_refused(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: str
) -> None:
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert_refused(small_corpus, index, "holds the working directory", tmp_path)


def test_index_naming_a_file_is_refused(small_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "report.docx").write_bytes(b"PK\x03\x04 my report")
    assert_refused(small_corpus, tmp_path / "report.docx", "is not a folder", tmp_path)


def test_link_to_the_corpus_is_refused(small_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "index").symlink_to(small_corpus, target_is_directory=True)
    assert_refused(small_corpus, tmp_path / "index", "is the corpus itself", tmp_path)


def test_user_file_put_into_an_index_is_not_deleted(
    small_corpus: Path, index: Path, tmp_path: Path
) -> None:
    (index / "notes.txt").write_text("放在索引里的笔记。", encoding="utf-8")
    assert_refused(small_corpus, index, r"holds notes\.txt, which a build does not write", tmp_path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (README, "# my project\n"),
        (MANIFEST, '{"name": "my-web-app", "version": "1.0"}'),
        (CHUNKS, '{"my": "data"}\n'),
    ],
)
def test_folder_without_the_mark_is_not_replaced(
    small_corpus: Path, tmp_path: Path, name: str, content: str
) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / name).write_text(content, encoding="utf-8")
    assert_refused(small_corpus, tmp_path / "index", "is not an index this project built", tmp_path)


@pytest.mark.parametrize("kind", ["user folder", "file"])
def test_backup_that_is_not_ours_is_not_deleted(
    small_corpus: Path, index: Path, tmp_path: Path, kind: str
) -> None:
    backup = tmp_path / ".index.previous"
    if kind == "file":
        backup.write_text("某人的文件", encoding="utf-8")
    else:
        user_folder(backup)
    assert_refused(small_corpus, index, r"\.index\.previous is in the way", tmp_path)
    before = snapshot(tmp_path)
    Retriever.load(index, embedder=HashingEmbedder())  # a load leaves it alone too
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "prepare",
    [
        pytest.param(lambda folder: folder.mkdir(), id="empty folder"),
        pytest.param(
            lambda folder: (folder.mkdir(), (folder / README).write_text(README_TEXT)),
            id="fresh clone: only the README",
        ),
        pytest.param(
            lambda folder: (
                folder.mkdir(),
                (folder / README).write_bytes(README_TEXT.replace("\n", "\r\n").encode()),
            ),
            id="README checked out with CRLF",
        ),
    ],
)
def test_empty_or_fresh_folder_is_built(small_corpus: Path, tmp_path: Path, prepare) -> None:
    folder = tmp_path / "index"
    prepare(folder)
    Retriever.build(small_corpus, folder, embedder=HashingEmbedder())
    assert read_manifest_json(folder)["format"] == FORMAT
    assert (folder / README).read_text(encoding="utf-8") == README_TEXT


def test_repository_index_folder_counts_as_fresh() -> None:
    """`make run` on a fresh clone builds into index/, which git gives only this README."""
    assert (ROOT / "index" / README).read_text(encoding="utf-8") == README_TEXT


def test_index_from_before_the_mark_is_rebuilt(small_corpus: Path, index: Path) -> None:
    manifest = read_manifest_json(index)
    del manifest["format"]
    manifest["format_version"] = 1  # as an index of the first format was written
    write_manifest_json(index, manifest)
    (index / README).unlink()  # only the manifest's shape says it is ours
    with pytest.raises(IndexLoadError, match="index format 1, this version reads format 2"):
        Retriever.load(index, embedder=HashingEmbedder())
    Retriever.build(small_corpus, index, embedder=HashingEmbedder())
    assert read_manifest_json(index)["format"] == FORMAT


def test_refusal_in_the_middle_of_a_build_touches_nothing(
    small_corpus: Path, index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file put into the index while the build embeds is seen before the swap."""
    import retriever.index

    real_write_manifest = retriever.index.write_manifest

    def write_manifest_while_user_adds_a_file(*args, **kwargs):
        written = real_write_manifest(*args, **kwargs)
        (index / "notes.txt").write_text("构建期间放进来的笔记。", encoding="utf-8")
        return written

    monkeypatch.setattr(retriever.index, "write_manifest", write_manifest_while_user_adds_a_file)
    (small_corpus / "new.txt").write_text("新的文件内容。", encoding="utf-8")  # work to do
    before = snapshot(index)
    with pytest.raises(IndexFolderError, match=r"holds notes\.txt"):
        Retriever.build(small_corpus, index, embedder=HashingEmbedder())
    after = snapshot(index)
    assert after.pop("notes.txt") and after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "index"]


def test_cli_refusal_is_one_error_line(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    code = main(["build", "--corpus", str(small_corpus), "--index", str(tmp_path / "mine")])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "is not an index this project built" in lines[0]
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------ damaged indexes


def _set_key(path: str, value: object) -> Callable[[dict], None]:
    *parents, key = path.split(".")

    def change(manifest: dict) -> None:
        for parent in parents:
            manifest = manifest[parent]
        manifest[key] = value

    return change


DAMAGES = {
    "manifest missing": (lambda i: (i / MANIFEST).unlink(), "not a complete index"),
    "manifest not JSON": (
        lambda i: (i / MANIFEST).write_text("{not json", encoding="utf-8"),
        "manifest.json is damaged",
    ),
    "manifest a JSON list": (
        lambda i: write_manifest_json(i, [read_manifest_json(i)]),
        "holds a JSON list",
    ),
    "manifest not UTF-8": (
        lambda i: (i / MANIFEST).write_bytes('{"模型": 1}'.encode("gbk")),
        "manifest.json is damaged",
    ),
    "key renamed": (
        edit_manifest(lambda m: m.update(chunks=m.pop("chunk_count"))),
        "chunk_count is missing",
    ),
    "nested key missing": (edit_manifest(lambda m: m["model"].pop("dim")), "model.dim is missing"),
    "chunk_count a string": (
        edit_manifest(_set_key("chunk_count", "9")),
        'chunk_count should be a whole number, not "9"',
    ),
    "chunk_count true": (
        edit_manifest(_set_key("chunk_count", True)),
        "chunk_count should be a whole number, not true",
    ),
    "chunk_count wrong": (
        edit_manifest(lambda m: m.update(chunk_count=m["chunk_count"] + 1)),
        "inconsistent: its manifest counts",
    ),
    "sources entry not an object": (
        edit_manifest(_set_key("sources", ["jobs.txt"])),
        r"sources\[0\] should be an object",
    ),
    "unknown setting": (
        edit_manifest(_set_key("settings.lexical.k3", 1.0)),
        "settings.lexical holds unknown settings k3",
    ),
    "setting of the wrong type": (
        edit_manifest(_set_key("settings.chunking.max_chars", "300")),
        "settings.chunking.max_chars should be a whole number",
    ),
    "checksum listing a path outside": (
        edit_manifest(lambda m: m["checksums"].update({"../../etc/passwd": "0" * 64})),
        "outside the index",
    ),
    "unknown format version": (edit_manifest(_set_key("format_version", 3)), "index format 3"),
    "another program's format": (
        edit_manifest(_set_key("format", "other-tool")),
        "not the manifest of an index of this project",
    ),
    "checksum mismatch": (
        lambda i: (i / CHUNKS).write_text("{}\n", encoding="utf-8"),
        "does not match its checksum",
    ),
    "chunk line not JSON": (
        rewrite_listed(CHUNKS, replace_chunk_line(2, '{"doc_id": "jobs.txt", ')),
        "chunks.jsonl is damaged .line 2",
    ),
    "chunk line not UTF-8": (
        rewrite_listed(CHUNKS, lambda data: b"\xff\xfe" + data),
        "chunks.jsonl is damaged .line 1",
    ),
    "chunk offset of the wrong type": (
        rewrite_listed(CHUNKS, edit_first_chunk(lambda c: c.update(start="0"))),
        "line 1: start should be a whole number",
    ),
    "chunk key missing": (
        rewrite_listed(CHUNKS, edit_first_chunk(lambda c: c.pop("text"))),
        "line 1: text is missing",
    ),
    "vectors truncated": (
        rewrite_listed(VECTORS, lambda data: data[: len(data) // 2]),
        "cannot be read",
    ),
    "BM25 file missing": (
        lambda i: next((i / "lexical").glob("*.npy")).unlink(),
        "is missing lexical/",
    ),
    "manifest dimension differs from the vectors": (
        edit_manifest(_set_key("model.dim", 32)),
        "its manifest says the model gives 32-dim vectors, its faiss index holds 64-dim ones",
    ),
    "unknown backend": (
        edit_manifest(_set_key("backends.dense", "annoy")),
        "no dense backend named 'annoy': this installation has faiss",
    ),
    "chunk id repeated": (
        rewrite_listed(CHUNKS, lambda data: data.replace(b'{"id": 1,', b'{"id": 0,', 1)),
        "inconsistent: its manifest counts",
    ),
    "index of format 1": (
        edit_manifest(_set_key("format_version", 1)),
        "has index format 1, this version reads format 2",
    ),
}


@pytest.mark.parametrize(("damage", "message"), DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_index_is_refused_with_the_rebuild_hint(
    small_corpus: Path,
    index: Path,
    damage: Callable[[Path], None],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    damage(index)
    with pytest.raises(IndexLoadError, match=message) as raised:
        Retriever.load(index, embedder=HashingEmbedder())
    assert str(raised.value).count(HINT) == 1

    # The command line: one error line, exit code 2, no traceback (an exception would
    # escape main and fail this test). It loads the index's model, here the stand-in.
    monkeypatch.setattr("retriever.search.load_embedder", lambda *args, **kw: HashingEmbedder())
    capsys.readouterr()
    code = main(["search", "行政助理的职责", "--index", str(index)])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert (code, captured.out, len(lines)) == (2, "", 1), captured.err
    assert lines[0].startswith("error: ") and HINT in lines[0]

    # The hint is true: a build replaces the damaged index.
    Retriever.build(small_corpus, index, embedder=HashingEmbedder())
    assert Retriever.load(index, embedder=HashingEmbedder()).search("行政助理的职责")


def test_model_of_another_dimension_is_named_with_both_dimensions(index: Path) -> None:
    with pytest.raises(IndexLoadError) as raised:
        Retriever.load(index, embedder=NarrowEmbedder())
    message = str(raised.value)
    assert "model 'test-hashing' gives 32-dim vectors" in message
    assert "holds 64-dim ones" in message and HINT in message


# ------------------------------------------------------------------ what dead builds leave


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def staging_folder(parent: Path, pid: int, *, marker: bool) -> Path:
    """A staging folder as a build leaves it: some index files, maybe its marker."""
    folder = parent / f".index.building-{pid}-abc123"
    folder.mkdir()
    (folder / CHUNKS).write_text('{"doc_id": "a"}\n', encoding="utf-8")
    (folder / "lexical").mkdir()
    if marker:
        (folder / BUILD_LOCK).touch()
    return folder


def leftovers(parent: Path) -> list[str]:
    return sorted(path.name for path in parent.iterdir() if path.name.startswith(".index."))


@pytest.mark.parametrize("marker", [True, False], ids=["marker unlocked", "no marker"])
@pytest.mark.parametrize("action", ["load", "build"])
def test_dead_build_staging_is_removed(
    small_corpus: Path, index: Path, tmp_path: Path, marker: bool, action: str
) -> None:
    staging_folder(tmp_path, dead_pid(), marker=marker)
    old_style = tmp_path / ".index.building-k2x9q7wd"  # named before the pid and the lock
    old_style.mkdir()
    (old_style / "vectors.faiss").write_bytes(b"partial")  # format 1's name
    if action == "load":
        Retriever.load(index, embedder=HashingEmbedder())
    else:
        Retriever.build(small_corpus, index, embedder=HashingEmbedder())
    assert leftovers(tmp_path) == []


def test_live_build_staging_is_left_alone(
    small_corpus: Path, index: Path, tmp_path: Path, hashing_embedder
) -> None:
    locked = staging_folder(tmp_path, dead_pid(), marker=True)
    starting = staging_folder(tmp_path, 1, marker=False)  # no marker yet, pid alive
    with (locked / BUILD_LOCK).open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as the build that owns it holds it
        Retriever.load(index, embedder=hashing_embedder)
        Retriever.build(small_corpus, index, embedder=hashing_embedder)
        assert leftovers(tmp_path) == sorted([locked.name, starting.name])
    Retriever.load(index, embedder=hashing_embedder)
    assert leftovers(tmp_path) == [starting.name]


def test_staging_holding_other_files_is_never_removed(index: Path, tmp_path: Path) -> None:
    staging = staging_folder(tmp_path, dead_pid(), marker=True)
    (staging / "notes.txt").write_text("不是构建写的。", encoding="utf-8")
    Retriever.load(index, embedder=HashingEmbedder())
    assert (staging / "notes.txt").exists()


def test_backup_left_beside_a_complete_index_is_removed(index: Path, tmp_path: Path) -> None:
    (tmp_path / ".index.previous").mkdir()
    (tmp_path / ".index.previous" / CHUNKS).write_text("{}\n", encoding="utf-8")
    Retriever.load(index, embedder=HashingEmbedder())
    assert leftovers(tmp_path) == []


def test_interrupted_swap_is_not_undone_while_a_build_runs(index: Path, tmp_path: Path) -> None:
    """Between a live build's two renames the index is missing; a load must not put the
    backup back under the build's feet."""
    index.rename(tmp_path / ".index.previous")
    live = staging_folder(tmp_path, dead_pid(), marker=True)
    with (live / BUILD_LOCK).open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(IndexLoadError, match="no index at"):
            Retriever.load(index, embedder=HashingEmbedder())
    assert Retriever.load(index, embedder=HashingEmbedder()).chunks  # the build has died
    assert leftovers(tmp_path) == []
