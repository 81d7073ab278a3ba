"""Word's automatic list numbers (numbering.xml), as Word shows them: "1.", "（一）", "②", and the
reading of Word's XML properties that the document reader (word.py) shares."""

from __future__ import annotations

import re
from typing import NamedTuple

# Word's XML, read through lxml's own find(): python-docx's properties cost a second per
# 20,000 paragraphs, more than reading the text.
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
VALUE = f"{W}val"
_LIST = f"{W}pPr/{W}numPr"  # a paragraph's or a style's list: numId and ilvl


def list_of(element) -> tuple[str | None, str | None]:
    """The numId and ilvl a paragraph's or a style's properties set, None where unset."""
    return value_of(element, f"{_LIST}/{W}numId"), value_of(element, f"{_LIST}/{W}ilvl")


def value_of(element, path: str) -> str | None:
    """The value (w:val) of the property at `path` under `element`; None where it is unset."""
    found = element.find(path)
    return None if found is None else found.get(VALUE)


def whole_number(value: str | None, default: int) -> int:
    """A number from Word's XML; a missing or damaged one is the default."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _Level(NamedTuple):
    """One level of a Word list (w:lvl)."""

    start: int
    format: str  # w:numFmt: decimal, chineseCounting, bullet, ...
    text: str  # w:lvlText: "%1." "（%1）" "%1.%2", %N being level N's number
    space: str  # what follows the number: Word's tab or space is one space here


class Numbering:
    """Word's automatic numbers (numbering.xml), counted as paragraphs come, as Word counts:
    per list (numId) and level, a level starting again when one above it goes on."""

    def __init__(self, root, styles: dict) -> None:
        self._definitions = {
            e.get(f"{W}abstractNumId"): e for e in root.iterchildren(f"{W}abstractNum")
        }
        self._lists = {e.get(f"{W}numId"): e for e in root.iterchildren(f"{W}num")}
        self._styles = styles
        self._levels: dict[str, dict[int, _Level]] = {}
        self._counters: dict[str, dict[int, int]] = {}

    def label(self, list_id: str, level: int) -> str:
        """The number or bullet of the next item of list `list_id` at `level`, with the space
        after it; "" where the file defines no such list."""
        if list_id not in self._levels:
            self._levels[list_id] = self._read(list_id)
        levels = self._levels[list_id]
        if level not in levels:
            return ""
        counters = self._counters.setdefault(list_id, {})
        counters[level] = counters[level] + 1 if level in counters else levels[level].start
        for deeper in [other for other in counters if other > level]:
            del counters[deeper]
        if levels[level].format == "bullet":
            return "• "  # whatever the symbol font's character: Word's are private-use code points

        def number(reference: re.Match[str]) -> str:
            # A level above that has no item yet shows its start, as in Word.
            shown = levels.get(int(reference[1]) - 1, _Level(1, "decimal", "", ""))
            return list_number(counters.get(int(reference[1]) - 1, shown.start), shown.format)

        label = re.sub(r"%([1-9])", number, levels[level].text)
        return label + levels[level].space if label else ""

    def _read(self, list_id: str) -> dict[int, _Level]:
        """The levels of a list: its definition's, with the list's own overrides."""
        found = self._lists.get(list_id)
        if found is None:
            return {}
        definition = self._definitions.get(value_of(found, f"{W}abstractNumId"))
        # A definition that links to a list style (w:numStyleLink) is that style's list's.
        link = None if definition is None else value_of(definition, f"{W}numStyleLink")
        style = None if link is None else self._styles.get(link)
        if style is not None:
            linked = self._lists.get(list_of(style.element)[0])
            definition = None
            if linked is not None:
                definition = self._definitions.get(value_of(linked, f"{W}abstractNumId"))
        levels = {}
        for level in () if definition is None else definition.iterchildren(f"{W}lvl"):
            levels[whole_number(level.get(f"{W}ilvl"), 0)] = _list_level(level)
        for override in found.iterchildren(f"{W}lvlOverride"):
            number = whole_number(override.get(f"{W}ilvl"), 0)
            replaced = override.find(f"{W}lvl")
            if replaced is not None:
                levels[number] = _list_level(replaced)
            start = value_of(override, f"{W}startOverride")
            if start is not None and number in levels:
                levels[number] = levels[number]._replace(start=whole_number(start, 0))
        return levels


def _list_level(element) -> _Level:
    return _Level(
        whole_number(value_of(element, f"{W}start"), 0),  # Word's default: no start counts from 0
        value_of(element, f"{W}numFmt") or "decimal",
        value_of(element, f"{W}lvlText") or "",
        "" if value_of(element, f"{W}suff") == "nothing" else " ",
    )


_CHINESE_DIGITS, _LEGAL_DIGITS = "零一二三四五六七八九", "零壹贰叁肆伍陆柒捌玖"
_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"))
_ROMAN += ((40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


def list_number(value: int, format: str) -> str:
    """A list number in Word's number format (w:numFmt); decimal for formats not known here."""
    if format in ("chineseCounting", "chineseCountingThousand", "taiwaneseCounting"):
        return _chinese_number(value, _CHINESE_DIGITS, "十百千")
    if format == "chineseLegalSimplified":
        return _chinese_number(value, _LEGAL_DIGITS, "拾佰仟")
    if format == "ideographTraditional" and value > 0:
        return "甲乙丙丁戊己庚辛壬癸"[(value - 1) % 10]
    if format in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese") and 0 < value <= 20:
        return chr(0x2460 + value - 1)  # ① to ⑳
    if format in ("upperLetter", "lowerLetter") and value > 0:
        letter = chr(ord("a") + (value - 1) % 26) * ((value - 1) // 26 + 1)  # z, then aa
        return letter.upper() if format == "upperLetter" else letter
    if format in ("upperRoman", "lowerRoman") and 0 < value < 4000:
        roman = ""
        for worth, letters in _ROMAN:
            count, value = divmod(value, worth)
            roman += letters * count
        return roman.upper() if format == "upperRoman" else roman
    if format == "decimalZero":
        return f"{value:02d}"
    return "" if format == "none" else str(value)


def _chinese_number(value: int, digits: str, units: str) -> str:
    """A number in Chinese numerals, as Word counts: 十一, 一百零五, 二千零一十; from 10,000
    up in digits. `units` are those of ten, a hundred and a thousand."""
    if not 0 < value < 10_000:
        return str(value)
    out, zero = "", False
    for power, unit in ((1000, units[2]), (100, units[1]), (10, units[0]), (1, "")):
        digit = value // power % 10
        if digit:
            out += (digits[0] if zero else "") + digits[digit] + unit
            zero = False
        elif out:
            zero = True  # written only if a digit follows: 一百零五, but 二百
    # 十一, not 一十一; the legal form keeps its 壹拾壹.
    return out[1:] if 10 <= value < 20 and digits == _CHINESE_DIGITS else out
