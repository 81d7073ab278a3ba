"""Why the service (web/service.py) says no: each refusal an HTTP status, which the API
answers with, and a reason in Chinese, which the page shows as it is. One table, so that the
page and the API refuse alike."""

from __future__ import annotations

from retriever.bases import (
    MAX_NAME_CHARS,
    BadBaseName,
    BaseError,
    BaseExists,
    DefaultBase,
    NoSuchBase,
    NoSuchBaseTrashEntry,
    NotABase,
)
from web.libraries import BaseBusy, NotAllowed, TooManyBases
from web.questions import question_problem

EDITORS_ONLY = "只有编辑者可以修改文档库。"
NO_MODEL = "没有配置写回答的模型服务（RETRIEVER_GENERATE_URL 和 RETRIEVER_GENERATE_MODEL）"
MANAGERS_ONLY = "只有能使用所有知识库的编辑者可以新建、改名、删除或恢复知识库。"


class Refused(Exception):
    """A request the service will not carry out: why, in Chinese, and the HTTP status that
    says it (and, for too many questions, how many seconds to wait)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def base_refusal(error: BaseError, name: str, *, max_bases: int) -> Refused:
    """Why a request about base `name` was refused, with its HTTP status."""
    shown = name[:80]
    if isinstance(error, BadBaseName):  # the name is not echoed: it may be anything
        return Refused(
            422,
            "不能作知识库的名称：只能用文字、数字、- 和 _，不以 - 开头，"
            f"最多 {MAX_NAME_CHARS} 个字",
        )
    refusals: list[tuple[type[BaseError], int, str]] = [
        (NoSuchBase, 404, f"没有叫「{shown}」的知识库（也许刚被改名或删除）"),
        (NotAllowed, 403, f"你没有使用知识库「{shown}」的权限"),
        (NotABase, 409, f"「{shown}」这个文件夹不是本程序建的知识库，没有动它"),
        (BaseExists, 409, f"已经有叫「{shown}」的知识库或文件夹了，换个名称吧"),
        (DefaultBase, 409, "默认知识库不能改名或删除"),
        (NoSuchBaseTrashEntry, 404, "知识库回收站里没有这一项（也许刚被恢复）"),
        (BaseBusy, 409, f"知识库「{shown}」正在改名或删除，请稍后再试"),
        (
            TooManyBases,
            409,
            f"除默认知识库外最多只能有 {max_bases} 个知识库，已经满了：请先删除不用的知识库",
        ),
    ]
    for kind, status, message in refusals:
        if isinstance(error, kind):
            return Refused(status, message)
    return Refused(409, f"知识库操作没有完成，程序给出的原因是：{error}")


def question_refusal(question: object) -> str:
    """Why the engine refused to search `question` (its QuestionError is in English, for the
    command line), in Chinese."""
    if not isinstance(question, str) or not question.strip():
        return "问题是空的：请先输入问题"
    return question_problem(question) or "无法搜索这个问题：请换个说法再问"
