"""The API's requests and its errors: the request bodies, the Chinese messages of pydantic's
422s, and the handlers web/server.py installs for a malformed body and a full disk."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from retriever.bases import DEFAULT
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import MAX_HISTORY
from retriever.trash import DISK_FULL_ERRNOS
from web.feedback import MAX_COMMENT_CHARS
from web.outcomes import DISK_FULL
from web.questions import is_text
from web.refusals import Refused

T = TypeVar("T")
# More passages than this is a dump of the corpus, not a search.
MAX_K = 50
# An earlier question is a question, so no longer than one: longer ones cost jieba time.
# (A constrained str, so pydantic also refuses a lone surrogate in it, with a 422.)
EarlierQuestion = Annotated[str, Field(max_length=MAX_QUESTION_CHARS)]

# The knowledge base a request works on: a query parameter, or a field of a JSON body.
BaseParameter = Annotated[str, Query(description="the knowledge base (default: the default one)")]


class SearchRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    base: str = DEFAULT


class AskRequest(BaseModel):
    question: str
    k: int = Field(default=5, ge=1, le=MAX_K)
    base: str = DEFAULT
    # Earlier questions of the same conversation, oldest first, to complete a follow-up
    # such as "那行政助理呢?"; the answer's "question" field shows what was searched.
    history: list[EarlierQuestion] = Field(default_factory=list, max_length=MAX_HISTORY)
    # Have the configured model write the answer (retriever.generation, docs/generation.md);
    # 409 when none is configured.
    generate: bool = False


class FeedbackRequest(BaseModel):
    # The id /api/ask gave the answer; the answer itself is taken from the app's memory,
    # never from the client.
    answer_id: str = Field(max_length=64)
    rating: Literal["good", "bad"]
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


class BaseName(BaseModel):
    name: str


class RestoreBase(BaseModel):
    name: str | None = None  # None: the name it had


def refusing(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """What the service's `action` gives, or the HTTP error its refusal names."""
    try:
        return action(*args, **kwargs)
    except Refused as refusal:
        headers = None
        if refusal.retry_after:
            headers = {"Retry-After": str(math.ceil(refusal.retry_after))}
        raise HTTPException(refusal.status, refusal.message, headers=headers) from None


async def disk_full(request: Request, error: OSError) -> Response:
    """507 for a full disk (or quota) that no route caught, such as while an upload is saved
    before it reaches the corpus, instead of a bare 500; web/server.py installs it for OSError.
    Every other OSError stays the server error it is. The changes to a corpus report a full
    disk themselves, once they have undone what they did (retriever.trash)."""
    if error.errno not in DISK_FULL_ERRNOS:
        raise error
    return JSONResponse({"detail": DISK_FULL}, status_code=507)


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's 422 for a malformed body, safe for any input, each error's `msg` in Chinese
    (its `loc` and `type` as FastAPI gives them).

    Its errors echo the input, and a lone surrogate there (JSON can carry one) would fail
    the UTF-8 encoding of the response, making it a 500; escaped as ASCII it cannot.
    """
    errors = [{**item, "msg": _field_message(item)} for item in error.errors()]
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def check_text(text: str, what: str) -> None:
    """400 for text that is not valid Unicode (a lone surrogate, which JSON can carry)."""
    if not is_text(text):
        raise HTTPException(
            400, f"{what}不是有效的 Unicode 文本（含有单独的代理字符）：请用 UTF-8 发送"
        )


# What pydantic's error types mean, in Chinese; {name} is filled from the error's ctx.
_FIELD_MESSAGES = {
    "missing": "缺少这个字段",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为数组（列表）",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "string_too_short": "至少要有 {min_length} 个字",
    "string_too_long": "最多 {max_length} 个字",
    "too_short": "至少要有 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "literal_error": "只能是 {expected}",
    "enum": "只能是 {expected}",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    "extra_forbidden": "不认识这个字段",
    "string_unicode": "不是有效的 Unicode 文本",
}


def _field_message(error: dict[str, Any]) -> str:
    """A pydantic error's message, in Chinese."""
    template = _FIELD_MESSAGES.get(str(error.get("type", "")))
    if template is None:
        return "这个值无效"
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError, ValueError):
        return template.split("{")[0].rstrip() or "这个值无效"
