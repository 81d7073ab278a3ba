"""The answer check (retriever.answerability): its evidence, its fitted model, its cache."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retriever.answerability import AnswerCheck, gather_evidence
from retriever.answerability_fit import FEATURES, Evidence, background_vectors, load_fitted
from retriever.answerability_lines import (
    asked_kind,
    holds_kind,
    line_evidence,
    question_terms,
    term_weight,
)
from retriever.background import background_passages
from retriever.models import DEFAULT_MODEL_NAME
from retriever.search import Retriever
from retriever.searcher import Candidates, Hit


def test_the_default_model_has_a_fit_with_a_cut_between_0_and_1() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    assert 0.0 < fitted.threshold < 1.0
    # A topic part over the passage evidence, a line part over the line evidence.
    assert [part.names for part in fitted.parts] == [FEATURES[:4], FEATURES[4:]]
    for part in fitted.parts:
        assert len(part.weights) == len(part.means) == len(part.scales) == len(part.names)
    assert len(background_passages()) > 1000


def test_more_evidence_never_lowers_the_confidence() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    base = Evidence(0.02, 0.03, 0.5, 0.6, unheld=0.3, line_coverage=0.6, answer_line=0.4)
    for field, more in (
        ("lift", 0.06),
        ("standout", 0.08),
        ("coverage", 1.0),
        ("coverage_top3", 1.0),
        ("line_coverage", 1.0),
        ("answer_line", 1.0),
    ):
        assert fitted.probability(replace(base, **{field: more})) >= fitted.probability(base)
    # The evidence each part weighs most raises it strictly; a term no line holds lowers it.
    for field, more in (("lift", 0.06), ("answer_line", 0.6)):
        assert fitted.probability(replace(base, **{field: more})) > fitted.probability(base)
    assert fitted.probability(replace(base, unheld=0.8)) < fitted.probability(base)


def test_unknown_word_evidence_takes_the_prior_not_zero() -> None:
    fitted = load_fitted(DEFAULT_MODEL_NAME)
    assert fitted is not None
    english = Evidence(lift=0.03, standout=0.04, coverage=None, coverage_top3=None)
    values = fitted.features(english)
    assert all(values[name] == fitted.priors[name] for name in FEATURES[2:])
    no_words = replace(
        english, coverage=0.0, coverage_top3=0.0, unheld=1.0, line_coverage=0.0, answer_line=0.0
    )
    assert fitted.probability(english) > fitted.probability(no_words)


def test_a_fit_made_before_the_line_evidence_still_loads(tmp_path: Path) -> None:
    old = {
        "means": [0.03, 0.04, 0.44, 0.5],
        "scales": [0.027, 0.025, 0.4, 0.4],
        "weights": [2.5, 3.1, 2.0, 1.4],
        "bias": 1.8,
        "threshold": 0.52,
        "coverage_prior": [0.8, 0.85],
    }
    path = tmp_path / "answerability.json"
    path.write_text(json.dumps({"models": {DEFAULT_MODEL_NAME: old}}), "utf-8")
    fitted = load_fitted(DEFAULT_MODEL_NAME, path)
    assert fitted is not None and [part.names for part in fitted.parts] == [FEATURES[:4]]
    english = Evidence(lift=0.03, standout=0.04, coverage=None, coverage_top3=None)
    assert fitted.features(english) == {
        "lift": 0.03,
        "standout": 0.04,
        "coverage": 0.8,
        "coverage_top3": 0.85,
    }


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


def test_background_vectors_asked_for_at_once_are_embedded_once(hashing_embedder, tmp_path) -> None:
    """Two at once (a test run's workers, two apps starting): one embeds, the other waits
    for its file and reads it."""
    calls = []
    started = threading.Event()
    encode = hashing_embedder.encode_passages

    def slow(texts, **kwargs):
        calls.append(len(texts))
        started.set()
        time.sleep(0.5)  # long enough for the other thread to reach the lock
        return encode(texts, **kwargs)

    hashing_embedder.encode_passages = slow
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(background_vectors, hashing_embedder, tmp_path)
        started.wait(timeout=10)
        second = pool.submit(background_vectors, hashing_embedder, tmp_path)
        vectors = [first.result(), second.result()]
    assert calls == [len(background_passages())]
    np.testing.assert_array_equal(*vectors)


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
    data = Path(__file__).resolve().parents[2] / "retriever" / "data"
    assert {"answerability.json", "background.txt", "SOURCE.md"} <= {p.name for p in data.iterdir()}


def _hit(text: str, heading: str = "", title: str = "员工手册", rank: int = 1) -> Hit:
    return Hit(
        rank,
        1.0,
        text,
        "handbook.md",
        "handbook.md",
        title,
        heading,
        0,
        len(text),
        None,
        None,
        rank,
    )


HANDBOOK = [
    _hit(
        "假别：婚假；天数：3天；工资：照发\n假别：产假；天数：158天；工资：照发\n"
        "假别：育儿假；天数：10天；工资：照发",
        heading="第三章 假期 › 3.2 其他假期",
    ),
    _hit(
        "当年未休完的年休假可以顺延至次年3月31日，逾期未休的，公司按国家规定支付未休年休假工资报酬。",
        heading="第三章 假期 › 3.1 年休假",
        rank=2,
    ),
    _hit("滤网为耗材，建议使用清岚原装滤网（型号QL-F300）。", heading="滤网更换", rank=3),
]


def test_the_terms_leave_out_the_words_that_ask_and_amounts_but_keep_numbered_names() -> None:
    assert set(question_terms("云溪地铁4号线走哪里")) >= {"4号线", "地铁"}
    assert "4" not in question_terms("云溪地铁4号线走哪里")
    # 十二年 is a condition a bracket answers; 几天 asks.
    terms = question_terms("工龄十二年有几天年假")
    assert "工龄" in terms and not any("十二" in t or "几" in t or t == "天" for t in terms)
    assert set(question_terms("公积金缴纳比例是多少")) == {"公积金", "公积", "积金", "缴纳"}
    # The rarer a term among the background passages, the more it weighs.
    assert term_weight("公积金") > term_weight("公司") > term_weight("中国")


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("原装滤网多少钱一个", "money"),
        ("行政助理一个月工资多少", "money"),
        ("公积金缴纳比例是多少", "share"),
        ("年假没休完公司赔几倍工资", "multiple"),
        ("产假有几天", "number 天"),
        ("工伤一级伤残补助金是几个月工资", "number 月"),
        ("调休多久过期", "number duration"),
        ("一株稻穗开多少朵花", "number"),
        ("稻米是什么时候传到日本的", "time"),
        ("末班车几点", "time"),
        ("翼尖小翼是谁发明的", "name"),
        ("痛风饮食要注意哪几条原则", None),
        ("婚假可以分开休吗", None),
    ],
)
def test_the_kind_of_answer_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asked_kind(question) == kind


@pytest.mark.parametrize(
    ("kind", "line", "holds"),
    [
        ("money", "单程票价4元", True),
        ("money", "费用比国产的贵一倍", False),
        ("share", "按本人工资的80%发放", True),
        ("multiple", "费用比国产的贵一倍", True),
        ("multiple", "按国家规定支付未休年休假工资报酬", False),
        ("number", "秧苗长高约八公分时插秧", True),
        ("number", "他是一个好人", False),
        ("number 月", "停工留薪期一般不超过12个月", True),
        ("number 月", "一次性伤残补助金，7天内提交", False),
        ("number 本", "硕士生可借30册", True),
        ("number duration", "高峰时段15分钟一班", True),
        ("name", "直接上级是人事行政经理或主管", True),
        ("name", "翼尖小翼可以降低油耗", False),
        ("time", "大约是在公元前3500年", True),
        ("time", "稻米是主要的粮食作物", False),
        ("name", "翼尖小翼由理查德·惠特科姆提出", True),
        (None, "任何一行", True),
    ],
)
def test_a_line_holds_the_kind_of_answer_or_not(kind: str | None, line: str, holds: bool) -> None:
    assert holds_kind(kind, line) is holds


def test_a_thing_no_line_names_is_unheld() -> None:
    # 陪产假 and 阿里巴巴 are in no line; 产假 and 年假 are.
    named = line_evidence("产假有几天", HANDBOOK)
    missing = line_evidence("陪产假有几天", HANDBOOK)
    other = line_evidence("阿里巴巴的产假有几天", HANDBOOK)
    assert named is not None and missing is not None and other is not None
    assert named[0] == 0.0 and missing[0] > 0.3 and other[0] > 0.5
    assert named[1] == 1.0 > missing[1]


def test_a_table_row_is_one_line_read_with_its_heading() -> None:
    # 育儿假 and its 10天 are in one row; the heading gives 假期.
    evidence = line_evidence("育儿假有几天", HANDBOOK)
    assert evidence is not None and evidence[1] == evidence[2] == 1.0


def test_the_answer_line_needs_the_kind_of_answer_asked() -> None:
    # The line that names 年休假 and 工资 holds no multiple, so the answer line falls away
    # from the line coverage; asked for a time, the same line holds one (3月31日).
    multiple = line_evidence("年休假没休完公司赔几倍工资", HANDBOOK)
    assert multiple is not None and multiple[1] > 0.5 and multiple[2] == 0.0
    when = line_evidence("没休完的年休假什么时候过期", HANDBOOK)
    assert when is not None and when[2] == when[1] > 0.5
    price = line_evidence("原装QL-F300滤网多少钱一个", HANDBOOK)
    assert price is not None and price[0] == 0.0 and price[1] == 1.0 and price[2] == 0.0


def test_a_question_without_terms_or_chinese_has_no_line_evidence() -> None:
    assert line_evidence("是多少", HANDBOOK) is None
    vector = np.array([1.0, 0.0], dtype=np.float32)
    background = np.array([[c, np.sqrt(1 - c * c)] for c in np.linspace(0.95, 0.05, 19)])
    english = gather_evidence(
        "How long is maternity leave?", _candidates(vector, [0.9]), HANDBOOK, background
    )
    assert english.unheld is english.line_coverage is english.answer_line is None


@pytest.mark.model
@pytest.mark.parametrize(
    ("answerable", "unanswerable"),
    [
        # The corpus gives the report's day, and not how many copies.
        ("行政助理的考勤报表什么时候交", "行政助理的考勤报表一次交几份"),
        # It names the director's superior, and gives no salary.
        ("办公室主任的直接上级是谁", "办公室主任一个月工资多少钱"),
    ],
)
def test_a_question_about_what_the_corpus_does_not_say_is_refused_and_its_twin_answered(
    real_retriever: Retriever, answerable: str, unanswerable: str
) -> None:
    answered = real_retriever.ask(answerable)
    assert answered.found, (answered.confidence, answered.answer)
    refused = real_retriever.ask(unanswerable)
    assert not refused.found, (refused.confidence, refused.answer)
    assert refused.confidence < answered.confidence


def test_a_list_items_number_is_no_amount() -> None:
    # "1、" numbers the item; the line gives no number of copies.
    items = [
        _hit("1、负责员工的考勤,于次月第一个工作日提供考勤报表并存档;", heading="行政助理的职责")
    ]
    evidence = line_evidence("行政助理的考勤报表一次交几份", items)
    assert evidence is not None and evidence[1] > 0.5 and evidence[2] == 0.0
    # A number after the marker still counts.
    items = [_hit("2、考勤报表一式两份,交人事部;", heading="行政助理的职责")]
    evidence = line_evidence("行政助理的考勤报表一次交几份", items)
    assert evidence is not None and evidence[2] == evidence[1] > 0.5
