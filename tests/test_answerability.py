"""The answer check (retriever.answerability): its evidence, its fitted model, its cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retriever.answerability import (
    AnswerCheck,
    Evidence,
    background_passages,
    background_vectors,
    gather_evidence,
    load_fitted,
)
from retriever.models import DEFAULT_MODEL_NAME
from retriever.search import Retriever
from retriever.searcher import Candidates


def test_the_default_model_has_a_fit_with_a_cut_between_0_and_1() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    assert 0.0 < fitted.threshold < 1.0
    assert len(fitted.weights) == len(fitted.means) == len(fitted.scales) == 4
    assert len(background_passages()) > 1000


def test_more_evidence_never_lowers_the_confidence() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    base = Evidence(lift=0.02, standout=0.03, coverage=0.5, coverage_top3=0.6)
    for field, more in (("lift", 0.06), ("standout", 0.08), ("coverage", 1.0)):
        assert fitted.probability(replace(base, **{field: more})) > fitted.probability(base)


def test_unknown_coverage_takes_the_prior_not_zero() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    english = Evidence(lift=0.03, standout=0.04, coverage=None, coverage_top3=None)
    assert fitted.features(english)[2:] == fitted.coverage_prior
    no_words = replace(english, coverage=0.0, coverage_top3=0.0)
    assert fitted.probability(english) > fitted.probability(no_words)


def _candidates(vector: np.ndarray, cosines: list[float]) -> Candidates:
    return Candidates("q", vector, dict(enumerate(cosines)), {}, {}, {})


def test_evidence_is_relative_to_the_question_baseline_and_the_corpus() -> None:
    vector = np.array([1.0, 0.0], dtype=np.float32)
    # The question's 10th-best cosine to the background is 0.5.
    background = np.array([[c, np.sqrt(1 - c * c)] for c in np.linspace(0.95, 0.05, 19)])
    cosines = [0.9] + [0.6] * 60
    evidence = gather_evidence("What is it?", _candidates(vector, cosines), [], background)
    assert evidence.lift == pytest.approx(0.9 - 0.5)
    assert evidence.standout == pytest.approx(0.9 - 0.6)
    assert evidence.coverage is None  # no Chinese characters: coverage unknown


def test_a_small_corpus_stands_out_from_the_background_it_lacks() -> None:
    vector = np.array([1.0, 0.0], dtype=np.float32)
    background = np.array([[c, np.sqrt(1 - c * c)] for c in np.linspace(0.70, 0.21, 50)])
    # One passage: without the background it would stand out from itself by 0.
    one = gather_evidence("q", _candidates(vector, [0.9]), [], background)
    assert one.standout == pytest.approx(0.9 - 0.22)  # the background's 49th
    # Three: the 50th of passages and background together.
    three = gather_evidence("q", _candidates(vector, [0.9, 0.85, 0.8]), [], background)
    assert three.standout == pytest.approx(0.9 - 0.24)  # the background's 47th
    # The background never raises the reference above the corpus's own last passage...
    low = gather_evidence("q", _candidates(vector, [0.9, 0.1]), [], background)
    assert low.standout == pytest.approx(0.9 - 0.1)
    # ...and a corpus of STANDOUT_RANK passages or more is measured against itself alone.
    large = gather_evidence("q", _candidates(vector, [0.9] + [0.75] * 60), [], background)
    assert large.standout == pytest.approx(0.9 - 0.75)


def test_background_vectors_are_embedded_once_and_cached(hashing_embedder, tmp_path) -> None:
    calls = []
    encode = hashing_embedder.encode_passages

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return encode(texts, **kwargs)

    hashing_embedder.encode_passages = counting
    first = background_vectors(hashing_embedder, tmp_path)
    second = background_vectors(hashing_embedder, tmp_path)
    assert calls == [len(background_passages())]
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "background").glob("*.npy"))) == 1


def test_a_model_without_a_fit_answers_with_its_cosine(hashing_embedder) -> None:
    vector = np.ones(hashing_embedder.dim, dtype=np.float32)
    check = AnswerCheck(hashing_embedder, None)
    judgement = check.judge("问题", _candidates(vector, [0.42, 0.1]), [])
    assert judgement.found and judgement.confidence == pytest.approx(0.42)
    strict = AnswerCheck(hashing_embedder, None, min_confidence=0.5)
    assert not strict.judge("问题", _candidates(vector, [0.42, 0.1]), []).found


@pytest.mark.model
@pytest.mark.parametrize(
    "question",
    [
        "Who is the office director's direct superior?",
        "What does an administrative assistant do every day?",
    ],
)
def test_english_questions_about_the_chinese_corpus_are_answered(
    real_retriever: Retriever, question: str
) -> None:
    answer = real_retriever.ask(question)
    assert answer.found, (answer.confidence, answer.answer)


@pytest.mark.model
def test_questions_about_a_missing_subject_score_below_the_cut(real_retriever: Retriever) -> None:
    answer = real_retriever.ask("量子计算机的原理是什么")
    assert not answer.found
    assert answer.confidence < real_retriever.settings.min_confidence


def test_the_fit_ships_beside_the_code() -> None:
    data = Path(__file__).resolve().parent.parent / "retriever" / "data"
    assert {"answerability.json", "background.txt", "SOURCE.md"} <= {p.name for p in data.iterdir()}
