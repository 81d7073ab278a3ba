"""The page's source preview and its 👍/👎: two small HTML components and their handlers.

`Citations.render()` is called inside the page's gr.Blocks (app.py). It adds:

- `#source-preview`, the preview of a cited passage in its document. web/sources.js (its
  js_on_load) opens it when an answer's [n] marker or a source's 查看原文 is clicked, by
  triggering the component's `open_source` event with the button's value; the handler
  answers with the window of text around the passage (web/preview.py, web/render.py).
- `#feedback-result`, which carries what became of a 👍 or 👎: web/feedback.js triggers its
  `rate` event with the answer's id, the rating and an optional comment, and shows the
  handler's answer under the rated answer (web/feedback.py stores it).

Both events are Gradio events, so they take the page's login like every other, and each
handler checks again who asks and everything the browser sent: a crafted call may send any
event data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from retriever.bases import BaseError
from web.access import Access
from web.feedback import Feedback
from web.feedback_log import FeedbackError
from web.libraries import check_allowed
from web.preview import BasePreviews, PreviewError, parse_spec
from web.render import feedback_html, preview_error_html, preview_html
from web.service import Service

WEB = Path(__file__).parent
SOURCES_JS = (WEB / "sources.js").read_text(encoding="utf-8")
FEEDBACK_JS = (WEB / "feedback.js").read_text(encoding="utf-8")
# A preview request is a small JSON object; anything longer is not from the page.
MAX_SPEC_CHARS = 10_000


class Citations:
    """The handlers behind the source preview and the 👍/👎 buttons."""

    def __init__(
        self, access: Access, service: Service, previews: BasePreviews, feedback: Feedback
    ) -> None:
        self.access = access
        self.service = service  # which says why a base cannot be used
        self.previews = previews
        self.feedback = feedback

    def render(self) -> None:
        """Add the preview and the rating's carrier to the gr.Blocks being laid out."""
        quietly: dict[str, Any] = {
            "queue": False,
            "show_progress": "hidden",
            "api_visibility": "private",
        }
        preview = gr.HTML("", elem_id="source-preview", js_on_load=SOURCES_JS)
        preview.open_source(self.open_source, outputs=preview, **quietly)
        result = gr.HTML("", elem_id="feedback-result", js_on_load=FEEDBACK_JS)
        result.rate(self.rate, outputs=result, **quietly)

    def open_source(self, event: gr.EventData, request: gr.Request) -> str:
        """The preview of the passage the clicked button names ({"spec": its value})."""
        identity = self.access.user(request.username)
        if identity is None:
            return preview_error_html("请先登录。")
        spec = _data(event).get("spec")
        try:
            if not isinstance(spec, str) or len(spec) > MAX_SPEC_CHARS:
                raise PreviewError(422, "预览请求不完整")
            try:
                parsed = json.loads(spec)
            except (ValueError, RecursionError):
                raise PreviewError(422, "预览请求不完整") from None
            base, doc_id, start, end, marks = parse_spec(parsed)
            check_allowed(identity, base)
            previews = self.previews.named(base)
            return preview_html(previews.preview(doc_id, start, end, marks))
        except PreviewError as error:
            return preview_error_html(str(error))
        except BaseError as error:
            return preview_error_html(self.service.refusal(error, base).message)

    def rate(self, event: gr.EventData, request: gr.Request) -> str:
        """Store a 👍 or 👎 ({"answer", "rating", "comment"}); say how it went."""
        data = _data(event)
        answer_id, rating, comment = data.get("answer"), data.get("rating"), data.get("comment")
        shown_id = answer_id if isinstance(answer_id, str) else ""
        shown_rating = rating if isinstance(rating, str) else ""
        identity = self.access.user(request.username)
        if identity is None:
            return feedback_html(shown_id, shown_rating, "请先登录。", ok=False, commented=False)
        comment = "" if comment is None else comment
        client = request.client.host if request.client else "unknown"
        try:
            # The identity, not its name: Feedback.rate checks its bases against the answer's.
            entry = self.feedback.rate(answer_id, rating, comment, user=identity, client=client)
        except FeedbackError as error:
            return feedback_html(shown_id, shown_rating, str(error), ok=False, commented=False)
        if entry["comment"]:
            message = "说明已记录，谢谢。"
        else:
            message = "已记录，谢谢！" + ("" if rating == "good" else "可以说说哪里不对：")
        return feedback_html(
            entry["answer_id"], entry["rating"], message, ok=True, commented=bool(entry["comment"])
        )


def _data(event: gr.EventData) -> dict[str, Any]:
    """The data the browser sent with an event: a dict, or nothing usable."""
    data = getattr(event, "_data", None)
    return data if isinstance(data, dict) else {}
