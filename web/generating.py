"""The chat's generated answers (retriever/generation.py), shown as they are written: the
extractive answer at once, under it the model's draft as it streams in (marked as not yet
checked), then the checked answer in their place, or the extractive one with why.

Only when a model server is configured (RETRIEVER_GENERATE_*); the page's switch for it is
shown only then (web/chat.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from retriever.generation import Extracted, Piece
from web.page import Page, earlier_questions, gone_message
from web.refusals import Refused
from web.render import answer_html, error_html, html_text


def draft_html(extracted: str, draft: str) -> str:
    """The extractive answer with the model's unchecked draft under it."""
    return (
        f"{extracted}"
        '<div class="qa-draft"><p class="qa-kind">模型正在撰写（写完后逐句核对，'
        "通不过核对就用上面的原句）：</p>"
        f"<p>{html_text(draft) or '…'}</p></div>"
    )


def streamed_reply(
    page: Page, message: str, history: Any, base: str, request: gr.Request
) -> Iterator[str]:
    """The reply's HTML, again each time more of it is written."""
    try:
        events = page.service.ask_streamed(
            page.identity(request),
            base,
            message,
            client=request.client.host if request.client else "unknown",
            earlier=earlier_questions(history),
        )
        extracted, draft = "", ""
        for event in events:
            if isinstance(event, Extracted):
                extracted = answer_html(event.answer, base=base)
                yield draft_html(extracted, draft)
            elif isinstance(event, Piece):
                draft += event.text
                yield draft_html(extracted, draft)
            else:
                yield answer_html(
                    event.answer, asked=event.asked, answer_id=event.answer_id, base=event.base
                )
    except Refused as refusal:
        if refusal.status == 404:  # the conversation's base is gone: never another's
            yield error_html(gone_message(str(base)))
        else:
            yield error_html(refusal.message)
