"""bench.million on 5,000 vectors: both engines through the product's backends, a row each
with every figure the scale page shows, and a report section written once into the page
(bench.scale keeps it, by `section_of`, when it rewrites the rest). No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from bench import million


def test_quick_run_measures_both_engines_and_reports_into_the_page(tmp_path: Path) -> None:
    results = tmp_path / "rows.jsonl"
    million.main(["--quick", "--runs", "1", "--work", str(tmp_path), "--output", str(results)])
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [row["engine"] for row in rows] == list(million.ENGINES)
    for row in rows:
        assert row["vectors"] == 5_000
        assert row["recall_at_10"] >= 0.95  # FLAT below 100,000 vectors: exact but for ties
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["disk_mb"] > 5_000 * 384 * 4 / 2**20  # at least the vectors
        assert row["add_document_s"] >= 0 and row["build_peak_mb"] > 0
    assert list(tmp_path.glob("bench_million_*")) == []  # the scratch folder is removed

    page = tmp_path / "scale.md"
    page.write_text("# How cost grows with the corpus\n", encoding="utf-8")
    million.main(["--report", "--output", str(results), "--page", str(page)])
    million.main(["--report", "--output", str(results), "--page", str(page)])  # replaced
    text = page.read_text(encoding="utf-8")
    assert text.count(million.MARKS[0]) == 1 and text.count("| milvus-lite | 5,000 |") == 1
    section = million.section_of(text)
    assert section.startswith(million.MARKS[0]) and section.endswith(million.MARKS[1])
