"""Builds killed with SIGKILL at random moments leave the previous index working, and what
they leave behind is gone after the next load or build (issue 8).

The builds run in child processes over a generated corpus of 8,000 short passages, with the
hashing stand-in embedder, so a rebuild takes a few seconds, about a third of which is the
write phase (staging folder, files, swap). Kill moments come from a seeded RNG: the first
trials while the build reads, chunks and indexes, the others in its write phase, found by
watching for the staging folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import HashingEmbedder

from retriever import ChunkSettings, Retriever

TESTS = Path(__file__).resolve().parents[1]  # where conftest.py is
CHUNKING = ChunkSettings(max_chars=30)  # many small passages: a long write phase
FILES, LINES = 80, 100
KILLS, EARLY = 10, 4  # the first EARLY kills before the write phase, the others during it
WORDS = ["办公室", "主任", "行政", "主管", "职责", "考勤", "报表", "采购", "员工", "领导"]

# The build a child process runs: argv is the tests folder, the corpus and the index.
CHILD = f"""
import sys
sys.path.insert(0, sys.argv[1])
from conftest import HashingEmbedder
from retriever import ChunkSettings, Retriever
print("building", flush=True)
chunking = ChunkSettings(max_chars={CHUNKING.max_chars})
Retriever.build(sys.argv[2], sys.argv[3], embedder=HashingEmbedder(), chunking=chunking)
"""


def write_corpus(folder: Path, rng: random.Random) -> None:
    folder.mkdir()
    for number in range(FILES):
        lines = (
            f"{rng.choice(WORDS)}{rng.randrange(10**9)} {rng.choice(WORDS)}{rng.randrange(10**6)}。"
            for _ in range(LINES)
        )
        (folder / f"doc{number:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_build(corpus: Path, index: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(TESTS), str(corpus), str(index)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "building\n"
    return child


def leftovers(parent: Path) -> list[str]:
    """What builds put beside the index: staging folders and the swap's backup."""
    return sorted(name for name in os.listdir(parent) if name.startswith(".index."))


def wait_for_staging(parent: Path, child: subprocess.Popen[str], *, present: bool = True) -> None:
    """Until the build's staging folder is there (or gone, once swapped in), or it has ended."""
    while child.poll() is None and present != any(".building-" in n for n in leftovers(parent)):
        time.sleep(0.002)


def phase(parent: Path, child: subprocess.Popen[str]) -> str:
    """Where the build is, from what it has written so far ("before writing" includes the
    moments after the swap; the index loaded afterwards tells them apart)."""
    if child.poll() is not None:
        return "finished"
    names = leftovers(parent)
    if any(name.endswith(".previous") for name in names):
        return "swapping"
    return "writing" if names else "before writing"


def test_killed_builds_leave_the_index_working_and_nothing_behind(tmp_path: Path) -> None:
    rng = random.Random(8)
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, rng)
    Retriever.build(corpus, index, embedder=HashingEmbedder(), chunking=CHUNKING)

    # One whole rebuild, timed, to place the kills; it leaves nothing behind either.
    (corpus / "added-0.txt").write_text("第0次追加的文件内容。", encoding="utf-8")
    child = start_build(corpus, index)
    started = time.monotonic()
    wait_for_staging(tmp_path, child)
    writing_started = time.monotonic()
    wait_for_staging(tmp_path, child, present=False)
    write_seconds = time.monotonic() - writing_started
    early_seconds = writing_started - started
    assert child.wait(timeout=120) == 0
    assert leftovers(tmp_path) == []
    complete = len(Retriever.load(index, embedder=HashingEmbedder()).chunks)
    previous = complete

    report = []
    for trial in range(1, KILLS + 1):
        (corpus / f"added-{trial}.txt").write_text(f"第{trial}次追加的文件内容。", encoding="utf-8")
        child = start_build(corpus, index)
        if trial <= EARLY:
            time.sleep(rng.uniform(0, early_seconds))
        else:
            wait_for_staging(tmp_path, child)
            time.sleep(rng.uniform(0, write_seconds))
        where = phase(tmp_path, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        left = leftovers(tmp_path)

        retriever = Retriever.load(index, embedder=HashingEmbedder())
        assert retriever.search("主任的职责", k=1), f"trial {trial}: no answer"
        # The previous index, or the new one (one passage a file added so far) if the kill
        # came after the swap; never a mix.
        assert len(retriever.chunks) in (previous, complete + trial), f"trial {trial}"
        assert leftovers(tmp_path) == [], f"trial {trial}: the load left {leftovers(tmp_path)}"
        if where == "before writing" and len(retriever.chunks) != previous:
            where = "after the swap"
        previous = len(retriever.chunks)
        report.append((trial, where, left, previous))

    Retriever.build(corpus, index, embedder=HashingEmbedder(), chunking=CHUNKING)
    assert leftovers(tmp_path) == []
    print(f"\nbefore writing {early_seconds:.1f} s, writing {write_seconds:.2f} s")
    for trial, where, left, count in report:
        print(f"kill {trial}: {where}; left {left or 'nothing'}; loaded {count} chunks")
    phases = [where for _, where, _, _ in report]
    assert phases.count("writing") + phases.count("swapping") >= (KILLS - EARLY) // 2, phases
