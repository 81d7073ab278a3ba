"""The line evidence of the answer check (retriever.answerability): three pieces read line by
line (each sentence of the top LINE_PASSAGES passages, or each table row `列：值；列：值`, read
with its passage's title and heading), because a passage about the right subject often lacks
the one thing asked: the leave type, the city, the price.
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
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import numpy as np

from retriever.answer_rules import asks_list, is_row
from retriever.background import background_passages
from retriever.chunking import split_sentences
from retriever.query import Query, as_query
from retriever.searcher import Hit
from retriever.stopwords_zh import STOPWORDS_ZH
from retriever.text import normalize
from retriever.words import load_jieba

# The lines of this many of the top passages are read, as many as the answer quotes from
# (retriever.answer.PASSAGES_CONSIDERED).
LINE_PASSAGES = 5
CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# A number in a question with a unit of amount is a condition (工龄十二年, 一天吃多少),
# answered by a bracket (满10年不满20年) as often as by the same number, so it is no term;
# with a unit that names (4号线, B31路, 一级) it is one.
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
    return _asked_kind(normalize(question))


def _asked_kind(text: str) -> str | None:
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
        if len(word) == 1 and CHINESE.match(word) and word not in _NOT_TERMS:
            run += word
            continue
        words.update(run[i : i + 2] for i in range(len(run) - 1))
        run = ""
    return words


def question_terms(question: str) -> dict[str, float]:
    """The question's terms (module docstring), each with its weight."""
    return _terms(normalize(question))


def _terms(normalized: str) -> dict[str, float]:
    text = _ASKING.sub(" ", normalized)
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


def line_evidence(question: str | Query, hits: list[Hit]) -> tuple[float, float, float] | None:
    """(unheld, line coverage, answer line) of the module docstring; None without terms."""
    query = as_query(question)
    terms = _terms(query.normalized)
    total = sum(terms.values())
    if not hits or total <= 0:
        return None
    kind = _asked_kind(query.normalized)
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
