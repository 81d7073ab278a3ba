"""Why a question cannot be searched, said in Chinese for the page.

The engine refuses the same questions (`retriever.search.check_question`), in English for the
command line and the JSON API; the page checks first so that its users read Chinese. The page
also refuses a question that shows nothing, which the engine would search.
"""

from __future__ import annotations

import unicodedata

from retriever.config import MAX_QUESTION_CHARS


def is_text(text: str) -> bool:
    """Whether `text` is valid Unicode: JSON and browsers can deliver lone surrogates, which
    no UTF-8 encoder (of a response, a log line, a file name) accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_blank(text: str) -> bool:
    """Whether `text` shows nothing: only white space and invisible format characters
    (zero-width spaces and joiners, byte order marks), which text pasted from web pages or
    documents often carries. The engine searches these; the page refuses them as empty."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def question_problem(question: object) -> str | None:
    """What is wrong with `question`, in Chinese, or None if it can be searched."""
    if not isinstance(question, str) or is_blank(question):
        return "请先输入问题"
    if not is_text(question):
        return "问题里有无效的字符（不是有效的 Unicode 文本），请重新输入"
    if len(question) > MAX_QUESTION_CHARS:
        return (
            f"问题有 {len(question)} 个字，超过了 {MAX_QUESTION_CHARS} 字的上限：请一次只问一件事"
        )
    return None
