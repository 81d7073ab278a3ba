"""Whether the corpus answers a question: two small logistic models over relative evidence.

One absolute cosine does not carry across corpora: on a Wikipedia corpus the questions of a
web-forum set reached the cosines of the corpus's own questions, and English questions about
Chinese text sit far below both. So every piece of evidence is relative:

- lift: the nearest passage's cosine less the question's cosine to unrelated text (its
  BACKGROUND_RANK-th best cosine to ~1,300 general Chinese passages, retriever/data). A
  question is measured against its own baseline: one in English, or one so generic that it
  is near everything, starts from a different level, and the lift removes it.
- standout: the nearest cosine less the STANDOUT_RANK-th best in this corpus: how far the best
  passage stands out from the rest of the corpus (in a corpus of fewer passages, the
  background passages make up the ones it lacks).
- coverage: the share of the question's content words that the top passage holds, and that
  the top three hold together. A question with no Chinese characters cannot share words with
  Chinese text, so its coverage is unknown and the fitting data's mean stands in for it.

And three pieces read line by line (each sentence of the top LINE_PASSAGES passages, or each
table row `列：值；列：值`, read with its passage's title and heading), because a passage
about the right subject often lacks the one thing asked: the leave type, the city, the price.
The question's terms are its content words less the words that ask (多少, 几天, 什么时候, 谁),
a number that names something kept whole (4号线, 一级), a number that is an amount left out
(工龄十二年: a bracket answers it); each weighs its inverse document frequency among the
background passages, and a line holds a term when its text contains it (characters, not
words, so jieba's cuts of question and line need not agree).

- unheld: the weighted share of the question's terms that no line holds: the thing named is
  usually its rarest term (陪产假, 阿里巴巴, 公积金).
- line coverage: the weighted share the best single line holds.
- answer line: the same for the best line that holds the kind of answer asked (an amount for
  多少钱, a share for 比例, a multiple for 几倍, a number with the unit asked for 几个月 or
  多久, any number for 多少/几, a time for 什么时候, a name or role for 谁); the line
  coverage when the question asks for none.

The confidence is the product of two probabilities: the topic part's over the passage
evidence (is the corpus about what is asked?) and the line part's over the line evidence
(does a line hold it?), so that either can refuse. The weights, the scaling and the cut are
fitted per model by bench/fit_answerability.py (its
docstring gives the protocol: what was fitted on what, what was held out) and stored in
retriever/data/answerability.json. For a model without fitted values the confidence is the
nearest passage's cosine, and every question counts as answered unless a minimum is given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from retriever.answer_rules import asks_list, is_row
from retriever.background import BACKGROUND_TEXT, background_passages
from retriever.chunking import split_sentences
from retriever.embedding import Embedder
from retriever.models import canonical_model_name
from retriever.searcher import Candidates, Hit
from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.text import normalize
from retriever.words import content_words, load_jieba

logger = logging.getLogger(__name__)

FITTED = BACKGROUND_TEXT.parent / "answerability.json"
# The question's baseline is its 10th-best background cosine, not its best: one background
# passage that happens to be about the same thing as the user's corpus must not decide.
BACKGROUND_RANK = 10
STANDOUT_RANK = 50
# The lines of this many of the top passages are read, as many as the answer quotes from
# (retriever.answer.PASSAGES_CONSIDERED).
LINE_PASSAGES = 5
_CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Evidence:
    """What the decision looks at, for one question (see the module docstring)."""

    lift: float
    standout: float
    coverage: float | None  # None: the question has no Chinese characters
    coverage_top3: float | None
    # None as well when the question has no terms (only words that ask) or there are no hits.
    unheld: float | None = None
    line_coverage: float | None = None
    answer_line: float | None = None


@dataclass(frozen=True)
class Judgement:
    found: bool
    confidence: float  # the fitted probability that the corpus answers, 0–1


# The Evidence a fitted model may weigh, in the order its weights are stored.
FEATURES = (
    "lift",
    "standout",
    "coverage",
    "coverage_top3",
    "unheld",
    "line_coverage",
    "answer_line",
)


@dataclass(frozen=True)
class Logistic:
    """One logistic model over some of the Evidence: each piece scaled, weighed, summed."""

    names: tuple[str, ...]  # the pieces of evidence weighed, in the weights' order
    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, values: dict[str, float]) -> float:
        z = (np.array([values[name] for name in self.names]) - self.means) / self.scales
        return float(1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias))))


@dataclass(frozen=True)
class FittedModel:
    """The answer check as bench/fit_answerability.py stores it: the product of its parts'
    probabilities (the corpus is about the question, and a line holds what it asks)."""

    parts: tuple[Logistic, ...]
    threshold: float  # the probability at which a question counts as answered
    # The fitting data's mean of each piece of evidence that may be unknown (a question
    # without Chinese characters), standing in for it.
    priors: dict[str, float]

    def probability(self, evidence: Evidence) -> float:
        values = self.features(evidence)
        return float(np.prod([part.probability(values) for part in self.parts]))

    def features(self, evidence: Evidence) -> dict[str, float]:
        """Each piece of evidence the parts weigh, its prior where it is unknown."""
        values = {name: getattr(evidence, name) for part in self.parts for name in part.names}
        return {
            name: self.priors[name] if value is None else value for name, value in values.items()
        }


def load_fitted(model: str, path: Path = FITTED) -> FittedModel | None:
    """The fitted values for `model`, or None if it has none."""
    if not path.is_file():
        return None
    fitted = json.loads(path.read_text("utf-8"))["models"].get(canonical_model_name(model))
    if fitted is None:
        return None
    if "parts" not in fitted:  # fitted before the line evidence: one part, the first four
        coverage, top3 = fitted["coverage_prior"]
        part = {key: fitted[key] for key in ("means", "scales", "weights", "bias")}
        fitted = {
            "parts": [{"names": FEATURES[:4], **part}],
            "threshold": fitted["threshold"],
            "priors": {"coverage": coverage, "coverage_top3": top3},
        }
    parts = tuple(
        Logistic(
            names=tuple(part["names"]),
            means=tuple(part["means"]),
            scales=tuple(part["scales"]),
            weights=tuple(part["weights"]),
            bias=part["bias"],
        )
        for part in fitted["parts"]
    )
    return FittedModel(parts, fitted["threshold"], dict(fitted["priors"]))


def background_vectors(embedder: Embedder, cache_dir: Path | None) -> np.ndarray:
    """The background passages embedded by `embedder`: computed once per model and kernel,
    kept in `cache_dir` (about 10 s for the default model on 2 cores), or in memory without
    one."""
    text = BACKGROUND_TEXT.read_bytes()
    digest = hashlib.sha256(text + f"{embedder.name} {embedder.kernel}".encode()).hexdigest()[:16]
    cached = None if cache_dir is None else Path(cache_dir) / "background" / f"{digest}.npy"
    if cached is not None and cached.is_file():
        vectors = np.load(cached)
        if vectors.shape[1:] == (embedder.dim,):
            return vectors
    logger.info("embedding the answer check's background passages for %s (once)", embedder.name)
    vectors = embedder.encode_passages(background_passages()).astype(np.float32)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial.npy")
        np.save(partial, vectors)
        partial.replace(cached)
    return vectors


# The line evidence (module docstring). A number in a question with a unit of amount is a
# condition (工龄十二年, 一天吃多少), answered by a bracket (满10年不满20年) as often as by the
# same number, so it is no term; with a unit that names (4号线, B31路, 一级) it is one.
_AMOUNT_UNITS = (
    r"个月|个小时|小时|钟头|分钟|星期|公里|千米|厘米|毫米|公分|公斤|千克|平方米|平米|"
    r"[年岁天日月周秒次倍元块万亿米克斤吨度人个本册张件瓶杯碗片粒份顿%㎡]"
)
_NUMERAL = r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十半][零〇一二两三四五六七八九十百千万]*)"
_AMOUNT = re.compile(rf"{_NUMERAL}\s*个?半?\s*(?:{_AMOUNT_UNITS})")
_NAMING = re.compile(
    r"(?:\d+|[一二三四五六七八九十]+)\s*(?:号线|号楼|[号路级型代期届楼栋章条款版])"
)
# The words that ask (多少, 几天, 多久, 什么时候, 谁, 比例) are not terms: they say what kind
# of answer is wanted, which answer_line looks for.
_ASKING = re.compile(
    rf"哪?(?:多少|几(?!乎|何))\s*个?(?:{_AMOUNT_UNITS}|钱|[\u4e00-\u9fff])?|"
    r"多[大高长重远久宽深厚快](?:时间)?|什么时候|什么时间|何时|哪一?年|哪一?天|谁|哪位|何人|"
    r"比例|比率|占比|百分比"
)
# Words that phrase a question without naming anything, beyond the stop words.
_PHRASING = frozenset(
    {
        *("为啥", "啥时候", "啥意思", "是啥", "干啥", "咋办", "怎么回事", "回事", "区别"),
        *("大概", "差不多", "算不算", "不算", "能不能", "有没有", "会不会", "可不可以"),
        *("好不好", "哪个", "哪种", "一个"),
    }
)
_NOT_TERMS = STOPWORDS_ZH | _PHRASING
# What a question asks for, first match wins (几点 is a time, not a number).
_ASKS = (
    ("time", re.compile(r"什么时候|什么时间|何时|哪一?年|哪一?天|几月|几号|几点|几时")),
    ("name", re.compile(r"谁|哪位|何人")),
    (
        "money",
        re.compile(
            r"多少钱|几块钱|(?:价格|价钱|费用|工资|薪水|薪资|月薪|年薪|票价|收费|花费|电费|钱)"
            r"[^,，。?？]{0,4}(?:多少|几)"
        ),
    ),
    (
        "share",
        re.compile(
            r"(?:比例|比率|占比|百分比|率)[^,，。?？]{0,3}(?:多少|几)|(?:多少|几)的?比例|百分之几|几成"
        ),
    ),
    ("multiple", re.compile(r"几倍|多少倍")),
    ("number", re.compile(r"多少|(?<!哪)几(?!乎|何)|多[大高长重远久宽深厚快]")),
)
# A number asked with its unit (几个月, 多少天, 多久) is answered by a number with that unit.
_UNITS = {
    "天": "天|日|工作日",
    "日": "天|日|工作日",
    "年": "年",
    "月": "月",
    "周": "周|星期|礼拜",
    "星期": "周|星期|礼拜",
    "小时": "小时|钟头|h",
    "分钟": "分钟|分|min",
    "秒": "秒|s",
    "次": "次|回|遍",
    "本": "本|册",
    "册": "本|册",
    "层": "层|楼",
    "级": "级",
    "档": "档",
    "岁": "岁",
    "克": "克|斤|g",
    "公斤": "公斤|千克|斤|kg",
    "斤": "斤|克|公斤|kg|g",
    "米": "米|m",
    "公里": "公里|千米|km",
    "号线": "号线",
}
_DURATION = "年|月|周|星期|天|日|工作日|小时|钟头|分钟|分|秒|h|min"
_ASKED_UNIT = re.compile(r"(?:几|多少)\s*个?\s*(" + "|".join(sorted(_UNITS, key=len)[::-1]) + ")")
_ASKED_DURATION = re.compile(r"多久|多长时间|多少时间")
_CHINESE_AMOUNT = (
    rf"(?:[二两三四五六七八九十半〇]|一[零〇一二两三四五六七八九十百千万])[零〇一二两三四五六七八九十百千万]*"
    rf"\s*个?(?:{_AMOUNT_UNITS}|[种层级项条档成])"
)
_HOLDS = {
    "number": re.compile(rf"\d|{_CHINESE_AMOUNT}"),
    "money": re.compile(
        r"\d\s*(?:元|块|万|亿|角|美元|欧元|港币|日元)|[¥$]\s*\d|"
        r"[一二两三四五六七八九十百千万]\s*(?:元|块钱|万元)|%|百分之"
    ),
    "share": re.compile(r"%|百分之|分之|\d\s*成|[一二三四五六七八九]成"),
    "multiple": re.compile(r"倍"),
    "time": re.compile(
        r"\d\s*(?:年|月|日|号|世纪|点|时)|\d{1,2}:\d\d|[〇零一二三四五六七八九十百千]+\s*(?:年|月|日|世纪)|"
        r"世纪|年代|公元|[夏商周秦汉晋隋唐宋元明清][朝代]|时代|时期|年间|"
        r"[次每本上下当]月|[次每本上下当]周|[次每当]年|[次当]日|[月年]底|[月年]初|工作日|"
        r"周[一二三四五六日末]|星期[一二三四五六日天]|[上下中]午|早上|晚上|凌晨|节假日|期间"
    ),
    # Who: a name (a common surname and one or two more characters, a transliterated or a
    # Latin one), a role (上级是谁: 人事行政经理, 驾驶人) or an organisation. Cheap and generous: a
    # line it passes may name no one, but one that names someone passes.
    "name": re.compile(
        r"·|[a-z]{3,}|[王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董"
        r"袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛闫段"
        r"雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤][\u4e00-\u9fff]{1,2}|"
        r"经理|主管|主任|总监|秘书|助理|董事|主席|总裁|总统|皇帝|国王|首相|教授|博士|医生|"
        r"先生|女士|老师|部长|局长|处长|院长|校长|厂长|公司|集团|部门|政府|大学|学院|协会|"
        r"委员会|机构|组织|银行|医院|[员人]"
    ),
}


# A list item's number (1、 2. (3) 四、) is no amount: left out before a line's kind is read.
_ITEM_MARK = re.compile(
    r"^\s*(?:\d{1,2}\s*[、.)](?!\d)|\(\s*[\d一二三四五六七八九十]{1,3}\s*\)|[一二三四五六七八九十]{1,3}\s*、)"
)


def asked_kind(question: str) -> str | None:
    """The kind of answer a Chinese question asks for: "time", "name", "money", "share",
    "multiple", "number" (a number with the unit asked: "number 月" for 几个月, "number
    duration" for 多久), or None (any, or a list: retriever.answer_rules.asks_list)."""
    text = normalize(question)
    kind = next((kind for kind, pattern in _ASKS if pattern.search(text)), None)
    if kind == "number" and asks_list(text):  # 分几层, 哪几种: a list, numbered or not
        return None
    if kind == "number":
        if unit := _ASKED_UNIT.search(text):
            return f"number {unit.group(1)}"
        if _ASKED_DURATION.search(text):
            return "number duration"
    return kind


def holds_kind(kind: str | None, line: str) -> bool:
    """Whether a normalised line holds an answer of that kind (any line does for None)."""
    if kind is None:
        return True
    if kind.startswith("number "):
        unit = kind.split(" ", 1)[1]
        units = _DURATION if unit == "duration" else _UNITS[unit]
        return bool(_unit_amount(units).search(line))
    return bool(_HOLDS[kind].search(line))


@lru_cache(maxsize=64)
def _unit_amount(units: str) -> re.Pattern[str]:
    return re.compile(rf"(?:\d|[零〇一二两三四五六七八九十百千万半])\s*(?:个|余|多)?\s*(?:{units})")


@lru_cache(maxsize=1)
def _background_index() -> tuple[list[str], dict[str, np.ndarray]]:
    """The background passages, case and width folded (they are simplified Chinese), and for
    each character the passages that hold it."""
    passages = [unicodedata.normalize("NFKC", p).lower() for p in background_passages()]
    holding: dict[str, list[int]] = {}
    for number, passage in enumerate(passages):
        for char in set(passage):
            holding.setdefault(char, []).append(number)
    return passages, {char: np.array(at) for char, at in holding.items()}


@lru_cache(maxsize=65536)
def term_weight(term: str) -> float:
    """A term's inverse document frequency among the background passages (characters, as
    lines are matched): log((N + 1) / (df + 1))."""
    passages, holding = _background_index()
    at: np.ndarray | None = None
    for char in set(term):
        these = holding.get(char)
        if these is None:
            at = np.array([], dtype=int)
            break
        at = these if at is None else np.intersect1d(at, these, assume_unique=True)
    df = 0 if at is None else sum(term in passages[i] for i in at)
    return math.log((len(passages) + 1) / (df + 1))


def _words(text: str) -> set[str]:
    """jieba's words of the text, without its guesses at unknown words, which join a word to
    the next character (盐能, 内去); and for a run of characters it knows only one by one (a
    name it has never seen: 六耳铃), the run's pairs of characters (六耳, 耳铃), so that a
    name no line holds is missed as a name, not found character by character."""
    jieba = load_jieba()
    words = {w for w in jieba.lcut_for_search(text, HMM=False) if any(c.isalnum() for c in w)}
    run = ""
    for word in [*jieba.lcut(text, HMM=False), ""]:
        if len(word) == 1 and _CHINESE.match(word) and word not in _NOT_TERMS:
            run += word
            continue
        words.update(run[i : i + 2] for i in range(len(run) - 1))
        run = ""
    return words


def question_terms(question: str) -> dict[str, float]:
    """The question's terms (module docstring), each with its weight."""
    text = _ASKING.sub(" ", normalize(question))
    names = {match.group().replace(" ", "") for match in _NAMING.finditer(text)}
    text = _AMOUNT.sub(" ", _NAMING.sub(" ", text))
    words = _words(text)
    terms = (words - _NOT_TERMS) | names
    return {term: term_weight(term) for term in terms}


def passage_lines(hit: Hit) -> tuple[str, list[str]]:
    """A passage's title and heading, and its lines, normalised: each table row whole, each
    other line cut into sentences."""
    lines = []
    for line in hit.text.split("\n"):
        if is_row(line.strip()):
            lines.append(normalize(line.strip()))
        else:
            lines.extend(normalize(line[s.start : s.end]) for s in split_sentences(line))
    return normalize(f"{hit.title}\n{hit.heading}"), lines


def line_evidence(question: str, hits: list[Hit]) -> tuple[float, float, float] | None:
    """(unheld, line coverage, answer line) of the module docstring; None without terms."""
    terms = question_terms(question)
    total = sum(terms.values())
    if not hits or total <= 0:
        return None
    kind = asked_kind(question)
    held_anywhere: set[str] = set()
    best = answer = 0.0
    for hit in hits[:LINE_PASSAGES]:
        context, lines = passage_lines(hit)
        around = {term for term in terms if term in context}
        held_anywhere |= around
        for line in lines:
            held = around | {term for term in terms if term in line}
            held_anywhere |= held
            share = sum(terms[term] for term in held) / total
            best = max(best, share)
            if share > answer and holds_kind(kind, _ITEM_MARK.sub("", line, count=1)):
                answer = share
    unheld = sum(weight for term, weight in terms.items() if term not in held_anywhere) / total
    return unheld, best, answer


def gather_evidence(
    question: str, candidates: Candidates, hits: list[Hit], background: np.ndarray
) -> Evidence:
    """The Evidence of a question from its candidates (stage 1 of the search, which found the
    STANDOUT_RANK best cosines) and its ranked hits."""
    assert candidates.vector is not None, "the answer check needs the question's vector"
    cosines = sorted(candidates.dense.values(), reverse=True)
    nearest = cosines[0] if cosines else 0.0
    baseline = np.sort(background @ candidates.vector)[::-1]
    typical = float(baseline[min(BACKGROUND_RANK, len(baseline)) - 1]) if len(baseline) else 0.0
    deep = cosines[min(STANDOUT_RANK, len(cosines)) - 1] if cosines else 0.0
    if len(cosines) < STANDOUT_RANK:
        # A corpus of fewer passages (a new base of one document) has no STANDOUT_RANK-th:
        # its last passage stands in, and one passage would stand out from itself by 0, so
        # every question of a one-document base would look unanswered. The background
        # passages make up the ones it lacks, as a large corpus's unrelated passages would;
        # they only ever lower the reference (bench/small_corpora.py: chosen on
        # cmrc2018_dev's fitting part, over letting them raise it too).
        padded = np.sort(np.concatenate((cosines, baseline)))[::-1]
        if len(padded):
            deep = min(deep, float(padded[min(STANDOUT_RANK, len(padded)) - 1]))
    words = content_words(question)
    if not _CHINESE.search(question) or not words or not hits:
        coverage = coverage_top3 = None
    else:
        held = [content_words(f"{hit.heading}\n{hit.text}") for hit in hits[:3]]
        coverage = len(words & held[0]) / len(words)
        coverage_top3 = len(words & set().union(*held)) / len(words)
    lines = line_evidence(question, hits) if _CHINESE.search(question) else None
    return Evidence(
        nearest - typical, nearest - deep, coverage, coverage_top3, *(lines or (None,) * 3)
    )


class AnswerCheck:
    """Judges whether a corpus answers a question, with the model fitted for the embedder."""

    def __init__(
        self,
        embedder: Embedder,
        cache_dir: Path | None,
        min_confidence: float | None = None,
    ) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.fitted = load_fitted(embedder.name)
        if self.fitted is None and min_confidence is None:
            logger.warning(
                "the answer check is not fitted for model %r, so every question counts as "
                "answered: give a minimum cosine, or fit it (python -m bench.fit_answerability)",
                embedder.name,
            )
        self.min_confidence = (
            min_confidence
            if min_confidence is not None
            else (self.fitted.threshold if self.fitted is not None else 0.0)
        )
        self._background: np.ndarray | None = None

    @property
    def background(self) -> np.ndarray:
        if self._background is None:
            self._background = background_vectors(self.embedder, self.cache_dir)
        return self._background

    def judge(self, question: str, candidates: Candidates, hits: list[Hit]) -> Judgement:
        if self.fitted is None:
            nearest = round(max(candidates.dense.values(), default=0.0), 4)
            return Judgement(nearest >= self.min_confidence, nearest)
        evidence = gather_evidence(question, candidates, hits, self.background)
        confidence = round(self.fitted.probability(evidence), 4)
        return Judgement(confidence >= self.min_confidence, confidence)
