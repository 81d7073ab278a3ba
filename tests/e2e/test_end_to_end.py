"""End to end with the real default model on the real corpus: questions as users ask them."""

from __future__ import annotations

import json
import re

import pytest
from conftest import KEY_PASSAGE, KEY_QUESTION, ROOT, USER_QUESTIONS, run_cli


def test_key_question_cites_the_comparison_passage(real_retriever) -> None:
    hits = real_retriever.search(KEY_QUESTION, k=3)
    assert any(KEY_PASSAGE in hit.text for hit in hits), [h.text[:40] for h in hits]
    answer = real_retriever.ask(KEY_QUESTION)
    assert answer.found
    assert KEY_PASSAGE in answer.answer
    cited = next(c for c in answer.citations if KEY_PASSAGE in c.hit.text)
    assert any(KEY_PASSAGE in quote.text for quote in cited.quotes)
    assert f"[{cited.number}]" in answer.answer


@pytest.mark.parametrize(("question", "phrase"), USER_QUESTIONS)
def test_user_questions_find_their_passage_among_the_shown(real_retriever, question, phrase):
    """The five passages a user is shown (search's and ask's default k) hold the answer."""
    hits = real_retriever.search(question, k=5)
    texts = [hit.heading + hit.text for hit in hits]
    assert any(re.search(phrase, text) for text in texts), texts
    assert real_retriever.ask(question).found


def test_hits_point_at_the_exact_source_text(real_retriever) -> None:
    source = (ROOT / "corpus" / "office_director_vs_admin_assistant.txt").read_text("utf-8")
    for hit in real_retriever.search("行政助理的职责", k=5):
        assert source[hit.start : hit.end] == hit.text


@pytest.mark.parametrize("question", ["今天天气怎么样?", "如何做红烧肉?", "苹果手机怎么截图?"])
def test_off_topic_questions_are_flagged_not_answered(real_retriever, question) -> None:
    answer = real_retriever.ask(question)
    assert not answer.found, (answer.confidence, answer.answer)
    assert answer.citations, "the nearest passages are still shown"


def test_cli_search_json(real_index) -> None:
    result = run_cli("search", KEY_QUESTION, "-k", "3", "--json", "--index", str(real_index))
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert {"rank", "score", "text", "source", "start", "end"} <= set(hits[0])
    assert any(KEY_PASSAGE in hit["text"] for hit in hits)


def test_cli_ask_json(real_index) -> None:
    result = run_cli("ask", KEY_QUESTION, "--json", "--index", str(real_index))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["found"] is True and KEY_PASSAGE in answer["answer"]
    assert {"rank", "score", "text", "source", "start", "end"} <= set(answer["citations"][0])


def test_cli_errors_are_one_clear_line(tmp_path) -> None:
    result = run_cli("search", "问题", "--index", str(tmp_path / "none"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: no index at") and "Traceback" not in result.stderr
    result = run_cli("ask", "   ", "--index", str(tmp_path / "none"))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_cli_builds_on_a_forced_kernel_and_searches_on_the_machines(tmp_path) -> None:
    """--kernel torch-fp32 builds on torch; the index records it, and searching runs on this
    machine's kernel without being told."""
    index = tmp_path / "index"
    result = run_cli("build", "--kernel", "torch-fp32", "--index", str(index), "-q")
    assert result.returncode == 0, result.stderr
    assert "with multilingual-e5-small in" in result.stderr
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["model"]["name"], manifest["model"]["kernel"]) == (
        "multilingual-e5-small",
        "torch-fp32",
    )
    result = run_cli("info", "--index", str(index), "--corpus", "corpus")
    assert "run on torch-fp32 (torch 2.13.0" in result.stdout, result.stdout

    result = run_cli("ask", KEY_QUESTION, "--json", "--index", str(index), machine_kernel=True)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["found"] is True and KEY_PASSAGE in answer["answer"]
