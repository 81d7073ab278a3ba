"""Conversations that survive a reload: kept in the browser, listed beside the chat.

The conversations live in the browser's localStorage, written and read by
web/conversations.js; the server keeps none of them, so nothing of one browser shows in
another. Not in gr.BrowserState: that sends the whole store to the server with every event
that reads it, each tab writes its own copy over the other tabs' conversations, and with its
default key (made when the server starts) a restart leaves what was stored unreadable.

What is here: the two pieces of the page that show them (the list, and the bar that opens it
on a narrow screen, web/layout.css), and the Gradio events that connect the script to the
chat. A conversation put in the chat (on load, or picked from the list) is handed to the
server as JSON too, reduced there to its text (web/chat.py): that is the history the next
answer is appended to and the earlier questions a follow-up is completed from
(retriever/followup.py). Each conversation keeps
the knowledge base it was last asked in, and brings it back to the picker.
"""

from __future__ import annotations

import gradio as gr

from web.chat import Chat

# The buttons are handled by web/conversations.js, which also fills the list.
BAR = (
    '<button class="qa-new-conversation">＋ 新对话</button>'
    '<button class="qa-show-conversations">对话记录</button>'
    '<button class="qa-show-documents">我的文档</button>'
)
LIST = (
    '<button class="qa-close-panel">← 返回对话</button>'
    '<div class="qa-conversations-head"><h3>对话记录</h3>'
    '<button class="qa-new-conversation">＋ 新对话</button></div>'
    '<p class="qa-conversations-empty">还没有对话。对话只保存在这个浏览器里。</p>'
    '<ol class="qa-conversations"></ol>'
)
# In the browser only, or a small copy of the chat to the server: neither waits in the queue.
_QUIETLY = {"queue": False, "show_progress": "hidden", "api_visibility": "private"}


def bar() -> gr.HTML:
    """The bar over the chat: a new conversation, and on a narrow screen the side panel."""
    return gr.HTML(BAR, elem_id="conversation-bar")


def conversation_list() -> gr.HTML:
    """The list of this browser's conversations, newest first, each with its time."""
    return gr.HTML(LIST, elem_id="conversations")


def keep_in_browser(demo: gr.Blocks, chat: Chat, base: gr.Dropdown) -> list[gr.events.Dependency]:
    """Save each change of the chat in the browser, with the knowledge base chosen in `base`,
    and put a conversation back in the chat and its base in the picker: on load (the one
    this tab showed before a reload) and from the list.

    Returns the events that put one back, for the page to check the base and show its side
    panel after them (app.py).
    """
    chat.chatbot.change(
        None, inputs=[chat.chatbot, base], js="(m, b) => qaConversations.save(m, b)"
    )
    # The list's buttons click this hidden one: a Gradio event is the way into the chat.
    switch = gr.Button("切换对话", elem_id="switch-conversation", elem_classes="qa-hidden")
    outputs = [chat.chatbot, base, chat.restored]
    shown = [
        demo.load(
            None, inputs=base, outputs=outputs, js="(b) => qaConversations.restore(b)", **_QUIETLY
        ),
        switch.click(
            None,
            inputs=[chat.chatbot, base],
            outputs=outputs,
            js="(m, b) => qaConversations.switched(m, b)",
            **_QUIETLY,
        ),
    ]
    return [chat.restore(event) for event in shown]
