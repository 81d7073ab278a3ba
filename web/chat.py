"""The chat: a question box, the conversation, and example questions, wired so that no chat
message ever comes from the client.

Gradio's ChatInterface sends the conversation back and forth as chat messages, and a chat
message may hold files (server paths) or components (with constructor arguments): Gradio
opens, builds and copies into its cache whatever such a message names, before any handler
of ours could look at it. So the chat here is built from parts instead, and no event takes
the Chatbot as an input:

- the conversation the server answers from is a gr.State, which lives on the server, and
  holds only text messages the server wrote (the questions as typed, the answers' HTML);
- a conversation put back from the browser's storage (web/conversations.py) reaches the
  server as a JSON string, which `text_messages` reduces to text before it is kept;
- an example is asked by its number, never by the value the browser sends with the click.

What the chat says, and how it answers, is web/page.py's: `Page.check_question` and
`Page.respond`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from web.generating import streamed_reply
from web.page import Page, text_of

# Messages kept of a conversation put back from the browser: more than anyone reads, few
# enough that the server's copy stays small (the request's own cap bounds each message).
MAX_MESSAGES = 400
# Steps that change only what the page shows: never wait behind questions or rebuilds.
_QUIETLY: dict[str, Any] = {"queue": False, "show_progress": "hidden", "api_visibility": "private"}


def text_messages(value: object) -> list[dict[str, str]]:
    """A conversation from the browser, as the server may keep it: user and assistant
    messages whose content is text, the text of each; anything else is dropped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return []
    if not isinstance(value, list):
        return []
    messages = [
        {"role": message["role"], "content": text_of(message.get("content"))}
        for message in value
        if isinstance(message, dict) and message.get("role") in ("user", "assistant")
    ]
    return messages[-MAX_MESSAGES:]


@dataclass
class Generating:
    """The switch that has the model write the answer (shown only when one is configured),
    and the button that stops it (shown while it writes)."""

    switch: gr.Checkbox
    stop: gr.Button


@dataclass
class Chat:
    """The chat's components: what web/conversations.py and the page's layout wire to."""

    chatbot: gr.Chatbot
    textbox: gr.Textbox
    history: gr.State  # the conversation as the server keeps it: text messages
    restored: gr.Textbox  # hidden: a conversation put back from the browser, as JSON

    def restore(self, trigger: gr.events.Dependency) -> gr.events.Dependency:
        """After `trigger` has put a stored conversation in the chat and its JSON in
        `restored`, keep that conversation's text as the one the next answer goes on from."""
        return trigger.then(text_messages, inputs=self.restored, outputs=self.history, **_QUIETLY)


def chat(page: Page, base: gr.Dropdown, examples: list[str], generating: Generating) -> Chat:
    """Lay out the chat inside the gr.Blocks being built, answering from the base chosen in
    `base`, and wire its events."""
    chatbot = gr.Chatbot(
        height="100%",  # of what web/layout.css gives it
        elem_id="chat",
        label="对话",
        autoscroll=False,  # web/page.js scrolls to each answer's start instead
        latex_delimiters=[],  # "$$" in a passage is text, not a formula
        allow_tags=False,
        # Gradio's copy button would copy an answer's HTML: each answer has its own, which
        # copies it as text (web/render.py).
        buttons=[],
        placeholder="用中文提问，或点下面的例子",
        examples=[{"text": example} for example in examples],
    )
    textbox = gr.Textbox(
        placeholder="输入问题，按回车发送",
        submit_btn="提问",
        elem_id="question",
        label="问题",  # shown over a refusal of the validator
        show_label=False,
        lines=1,
        max_lines=4,  # and web/layout.css caps its height: the chat keeps the window
    )
    history = gr.State([])
    asked = gr.State("")  # the question on its way, the box emptied meanwhile
    restored = gr.Textbox(visible=False)

    def take(message: str) -> tuple[Any, str]:
        return gr.Textbox(value="", interactive=False), message

    def take_example(event: gr.SelectData) -> tuple[Any, str]:
        # The number only: the value a click sends is the client's, and may be anything.
        index = event.index
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(examples):
            return take(examples[index])
        return gr.Textbox(interactive=True), ""

    def show(message: str, shown: list[dict[str, str]]) -> tuple[list, list]:
        if not message:
            return shown, shown
        messages = [*shown, {"role": "user", "content": message}]
        return messages, messages

    def answer(
        message: str,
        shown: list[dict[str, str]],
        chosen: str,
        write: bool,
        request: gr.Request,
    ) -> Iterator[tuple[list, list]]:
        if not message:
            yield shown, shown
            return
        # `shown` ends with the question itself: the earlier messages come before it.
        if write is True and page.service.model is not None:
            replies = streamed_reply(page, message, shown[:-1], chosen, request)
        else:
            replies = iter([page.respond(message, shown[:-1], chosen, request)])
        for reply in replies:
            messages = [*shown, {"role": "assistant", "content": reply}]
            yield messages, messages

    answering: list[gr.events.Dependency] = []

    configured = page.service.model is not None

    def stoppable(switch: bool) -> tuple[Any, Any]:
        # While the model writes, its stop button takes the switch's place (on a phone the
        # bar has room for one of them).
        writing = switch is True and configured
        return gr.Button(visible=writing), gr.Checkbox(visible=configured and not writing)

    def done() -> tuple[Any, Any, Any]:
        switch = gr.Checkbox(visible=configured)
        return gr.Textbox(interactive=True), gr.Button(visible=False), switch

    def asking(trigger: gr.events.Dependency) -> None:
        answered = (
            trigger.then(show, inputs=[asked, history], outputs=[chatbot, history], **_QUIETLY)
            .then(
                stoppable,
                inputs=generating.switch,
                outputs=[generating.stop, generating.switch],
                **_QUIETLY,
            )
            .then(
                answer,
                inputs=[asked, history, base, generating.switch],
                outputs=[chatbot, history],
                api_visibility="private",
                concurrency_limit=4,
                show_progress="minimal",
            )
        )
        answering.append(answered)
        answered.then(done, outputs=[textbox, generating.stop, generating.switch], **_QUIETLY)

    asking(
        textbox.submit(
            take,
            inputs=textbox,
            outputs=[textbox, asked],
            validator=page.check_question,
            api_visibility="private",
            show_progress="hidden",
        )
    )
    asking(chatbot.example_select(take_example, outputs=[textbox, asked], **_QUIETLY))
    # Stopped, what was shown stays (the extractive answer, the draft marked unchecked).
    generating.stop.click(
        done,
        outputs=[textbox, generating.stop, generating.switch],
        cancels=answering,
        **_QUIETLY,
    )
    # The chat's 清空对话 empties what the page shows; the next question starts afresh.
    chatbot.clear(lambda: [], outputs=history, **_QUIETLY)
    # For Gradio API clients (gradio_client's predict(question, base, api_name="/ask")): the
    # answer's HTML, as the page shows it.
    gr.api(page.ask, api_name="ask", concurrency_limit=4)
    return Chat(chatbot, textbox, history, restored)
