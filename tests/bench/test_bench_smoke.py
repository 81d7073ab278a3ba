"""Each benchmark script runs on a tiny slice and writes a well-formed report.

Benchmarks measure; this checks only that they run and that their output has the shape the
docs rely on (every system, every metric, numbers in range). No timing is asserted.

The peers (LangChain, rank_bm25, txtai) come from requirements-bench.txt. Without them these
tests fail, not skip: CI installs that file, and a silently skipped benchmark is a broken one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import small_recall_check

from bench.peers import PeersMissingError, check_peer_packages

pytestmark = pytest.mark.model

METRIC_ROW = re.compile(r"^\| (?P<system>[^|]+?) \|(?P<cells>( \**\d\.\d{3}\** \|)+)$")
SYSTEMS = {"project bm25", "project dense", "project hybrid", "langchain", "txtai"}


@pytest.fixture(scope="module", autouse=True)
def peers_installed() -> None:
    try:
        check_peer_packages()
    except PeersMissingError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: slices and indexes are tiny, and built once."""
    return tmp_path_factory.mktemp("bench-cache")


def _tables(markdown: str) -> dict[str, dict[str, list[float]]]:
    """Each "## set (...)" section's rows: set name (before any slice suffix) → system →
    the numbers of its row."""
    tables: dict[str, dict[str, list[float]]] = {}
    rows: dict[str, list[float]] = {}
    for line in markdown.splitlines():
        if line.startswith("## "):
            rows = tables.setdefault(re.split(r"-q\d+-c\d+| ", line[3:])[0], {})
        match = METRIC_ROW.match(line)
        if match:
            cells = [c.strip().strip("*") for c in match["cells"].strip(" |").split("|")]
            rows[match["system"]] = [float(c) for c in cells]
    return tables


def _check_passage_table(rows: dict[str, list[float]]) -> None:
    assert set(rows) == SYSTEMS
    for values in rows.values():
        assert len(values) == 5 and all(0.0 <= v <= 1.0 for v in values)
        r1, r5, r10, hit10, _ = values
        assert r1 <= r5 <= r10 <= hit10  # recall grows with k; a hit needs only one gold


def test_quality_scores_every_system(cache: Path, tmp_path: Path) -> None:
    from bench.quality import main

    output = tmp_path / "quality.md"
    argv = ["--sets", "dureader_demo", "--limit", "5", "--corpus-limit", "20", "-q"]
    assert main([*argv, "--cache", str(cache), "--output", str(output)]) == 0
    tables = _tables(output.read_text(encoding="utf-8"))
    assert list(tables) == ["dureader_demo"]
    _check_passage_table(tables["dureader_demo"])
    assert (cache / "bench" / "quality_details.json").is_file()


def test_quality_covers_traditional_and_whole_document_sets(cache: Path, tmp_path: Path) -> None:
    """drcd_test like the other passage sets; the user-style set with each peer reading the
    documents itself (three documents: the first questions' one and two more)."""
    import json

    from bench.quality import main

    output = tmp_path / "quality.md"
    argv = ["--sets", "drcd_test", "userstyle", "--limit", "6", "--corpus-limit", "3", "-q"]
    assert main([*argv, "--cache", str(cache), "--output", str(output)]) == 0
    report = output.read_text(encoding="utf-8")
    tables = _tables(report)
    assert list(tables) == ["drcd_test", "userstyle"]
    _check_passage_table(tables["drcd_test"])
    assert set(tables["userstyle"]) == {"project (ask)", "langchain", "txtai"}
    for top1, top3 in tables["userstyle"].values():
        assert 0.0 <= top1 <= top3 <= 1.0
    assert re.search(
        r"## userstyle-q\d+-c3 \(\d+ answerable questions of \d+, 3 documents\)", report
    )
    details = json.loads((cache / "bench" / "quality_details.json").read_text(encoding="utf-8"))
    (userstyle,) = (ranks for name, ranks in details.items() if name.startswith("userstyle"))
    for system in ("project (ask)", "langchain", "txtai"):  # one rank per answerable question
        ranks = userstyle["first_gold_rank"][system].values()
        assert ranks and all(rank is None or 1 <= rank <= 3 for rank in ranks)


def test_speed_reports_every_system(cache: Path, tmp_path: Path) -> None:
    from bench.speed import main

    output = tmp_path / "speed.md"
    # --skip-build reuses the peers' tiny indexes from the quality test (same slice) when it
    # ran first; the project's index is built here, through the same build child.
    argv = ["--quick", "--skip-build", "--cache", str(cache), "--output", str(output)]
    assert main(argv) == 0
    rows = [line for line in output.read_text(encoding="utf-8").splitlines() if line[:2] == "| "]
    systems = [row.split("|")[1].strip() for row in rows[1:]]
    assert systems == ["project", "langchain", "txtai"]
    assert all(row.count("|") == 10 and " ms (" in row and " MB (" in row for row in rows[1:])
    assert "(1.00×)" in rows[1]  # the project is the base of every ratio
    asks = [row.split("|")[8].strip() for row in rows[1:]]  # a whole answer: the project's only
    assert asks[0].endswith(" ms") and float(asks[0][:-3]) > 0 and asks[1:] == ["–", "–"]


def test_onnx_int8_builds_and_scores(cache: Path, tmp_path: Path) -> None:
    from bench.onnx_int8 import main

    output = tmp_path / "onnx.md"
    argv = ["--quick", "--sets", "dureader_demo", "--cache", str(cache), "--output", str(output)]
    assert main(argv) == 0
    report = output.read_text(encoding="utf-8")
    for backend in ("torch fp32", "onnx int8"):  # --quick leaves out the fp32 export
        assert f"| {backend} |" in report
    assert re.search(r"Rule .*: \*\*(passes|fails)\*\*", report)


def test_kernels_times_the_kernels_this_cpu_offers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.kernels import main

    small_recall_check(monkeypatch)  # each kernel embeds the check's text: a third of it
    # Two kernels make the report's every column; each kernel this CPU offers is loaded
    # and checked against the model's vectors in tests/retriever/test_kernels.py.
    two = ("torch-fp32", "onnx-int8")
    monkeypatch.setattr("bench.kernels.available", lambda cpu: two)
    output = tmp_path / "kernels.md"
    assert main(["--passages", "8", "--runs", "1", "--output", str(output)]) == 0
    rows = {
        cells[0]: cells[1:]
        for line in output.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith(("| kernel", "|---"))
        for cells in [[c.strip() for c in line.strip("| ").split("|")]]
    }
    assert set(rows) == set(two)
    for rate, ratio, per_million, cosine, recall, gflops, share in rows.values():
        assert float(rate) > 0 and float(ratio.rstrip("×")) > 0 and float(per_million) > 0
        assert float(cosine) >= 0.98 and float(recall) >= 0.9
        assert float(gflops) > 0 and float(share) > 0
    assert rows["torch-fp32"][1] == "1.00×"


def test_scale_writes_tables_and_plots(cache: Path, tmp_path: Path) -> None:
    from bench.scale import main

    assert main(["--quick", "--cache", str(cache), "--output-dir", str(tmp_path)]) == 0
    report = (tmp_path / "scale.md").read_text(encoding="utf-8")
    for part in ("Whole project indexes", "BM25 alone", "FAISS alone"):
        assert part in report
    for name in ("whole", "bm25", "faiss"):
        png = tmp_path / f"scale_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recalls = [float(m) for m in re.findall(r"\| (\d\.\d{3}) \|$", report, re.M)]
    assert recalls and all(0.0 <= r <= 1.0 for r in recalls)


def test_profile_build_times_every_stage(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.profile_build import main

    # Every kernel times 16 of the 60 passages (4 rounds each) and is scaled to all 60, as
    # 512 are scaled to 100,000: the same report, a quarter of the embedding. Two kernels
    # make its rows, as in the kernels report.
    monkeypatch.setattr("bench.profile_build.SAMPLE", 16)
    two = ("torch-fp32", "onnx-int8")
    monkeypatch.setattr("bench.profile_build.available", lambda cpu: two)
    output = tmp_path / "profile.md"
    assert main(["--size", "60", "--cache", str(cache), "--output", str(output)]) == 0
    report = output.read_text(encoding="utf-8")
    seconds = {
        cells[0]: float(cells[1])
        for line in report.splitlines()
        if re.match(r"^\| [^|]+ \| [\d.]+ \|", line)
        for cells in [[c.strip() for c in line.strip("| ").split("|")]]
    }
    for stage in ("read and extract", "chunk", "BM25 (jieba + bm25s)", "write the index"):
        assert stage in seconds
    assert [stage for stage in seconds if stage.startswith("embed on ")] == [
        f"embed on {kernel}" for kernel in two
    ]
    assert all(seconds[f"embed on {kernel}"] > 0 for kernel in two)
    assert "Build without embedding:" in report


def test_update_times_adding_a_document(cache: Path, tmp_path: Path) -> None:
    from bench.update import main

    output = tmp_path / "update.md"
    assert main(["--quick", "--cache", str(cache), "--output", str(output)]) == 0
    report = output.read_text(encoding="utf-8")
    rows = [line for line in report.splitlines() if re.match(r"^\| [\d,]+ \| (flat|HNSW) \|", line)]
    assert len(rows) == 2 and all(" chunks | " in row for row in rows)
    for stage in ("load the previous index", "embed (int8 model)", "write and swap in"):
        assert f"| {stage} |" in report


def test_small_corpora_reports_each_size(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, hashing_embedder
) -> None:
    """A corpus of each size is built and asked, from both sets; every row has its shares.
    The report's shape is checked, not its figures: the stand-in embedder serves."""
    from bench.small_corpora import main

    monkeypatch.setattr("bench.small_corpora.load_embedder", lambda **_: hashing_embedder)

    for name in ("drcd_test", "cmrc2018_dev"):
        assert main(["--set", name, "--per-size", "1"]) == 0
        rows = [line for line in capsys.readouterr().out.splitlines() if line[:2] == "| "]
        assert [row.split("|")[1].strip() for row in rows[1:]] == [
            "1–2",
            "3–5",
            "6–10",
            "11–1000",
            "all",
        ]
        assert all(re.search(r"\d\.\d{3} of \d+", row) for row in rows[1:]), rows


def test_faq_view_remakes_the_shipped_set(tmp_path: Path) -> None:
    """bench/datasets/dureader_faq is exactly what bench.faq_view makes from dureader_demo."""
    from bench import faq_view

    faq_view.main(["--output", str(tmp_path)])
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        assert (tmp_path / name).read_bytes() == (faq_view.TARGET / name).read_bytes(), name
    entries = faq_view.read_records(tmp_path / "corpus.jsonl")
    assert len(entries) == 448 and not any(e.title.endswith(faq_view.ZHIDAO) for e in entries)


def test_the_answer_check_report_asks_without_the_answering_passage(
    small_corpus: Path, hashing_embedder, tmp_path: Path
) -> None:
    """bench.fit_answerability's in-domain unanswerable questions: the passage that answers
    is dropped from every score of the candidates, the rest of the corpus left as it is."""
    from bench.fit_answerability import _without, ask_all
    from retriever import Retriever

    Retriever.build(small_corpus, tmp_path / "index", embedder=hashing_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=hashing_embedder)
    question = "行政助理的职责是什么"
    (candidates,) = retriever.searcher.candidates([question], 5, "hybrid")
    jobs = {i for i, chunk in retriever.index.by_id.items() if chunk.doc_id == "jobs.txt"}
    assert jobs and jobs <= candidates.dense.keys()
    dropped = _without(candidates, jobs)
    for scores in ("dense", "lexical", "coverage", "title_coverage"):
        kept = getattr(dropped, scores).keys()
        assert not kept & jobs and kept == getattr(candidates, scores).keys() - jobs, scores

    background = hashing_embedder.encode_passages(["今天天气晴朗", "股票市场", "足球比赛"] * 4)
    (as_is,) = ask_all(retriever, [question], background)
    (removed,) = ask_all(retriever, [question], background, removed=[{"jobs.txt"}])
    assert removed[0] < as_is[0]  # the nearest passage left is further: a lower lift
