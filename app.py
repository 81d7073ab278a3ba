"""The chat page: ask questions of the corpus in Chinese, get answers with cited passages.

Run with `make run` (builds what is missing first) or `python app.py`; it serves
http://127.0.0.1:7860. The model and index load once, here at start-up, not per question.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import gradio as gr

from retriever import Answer, QuestionError, Retriever

INDEX = Path(os.environ.get("RETRIEVER_INDEX", "index"))
HOST = os.environ.get("RETRIEVER_HOST", "127.0.0.1")
PORT = int(os.environ.get("RETRIEVER_PORT", "7860"))
EXAMPLES = [
    "办公室主任和行政主管哪个大?",
    "行政助理每天要做哪些事?",
    "办公室主任为什么适合给领导当参谋?",
    "辦公室主任的直接上級是誰？",
]

retriever = Retriever.load(INDEX)


def _text(text: str) -> str:
    """Passage text shown as text: HTML escaped, Markdown syntax neutralised, lines kept."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", escaped)
    return escaped.replace("\n", "<br>")


def _passage(citation) -> str:
    """A cited passage with its answering sentences in bold."""
    hit = citation.hit
    pieces, cursor = [], hit.start
    for quote in sorted(citation.quotes, key=lambda q: q.start):
        pieces.append(_text(hit.text[cursor - hit.start : quote.start - hit.start]))
        pieces.append(f"**{_text(quote.text)}**")
        cursor = quote.end
    pieces.append(_text(hit.text[cursor - hit.start :]))
    return "".join(pieces)


def render(answer: Answer) -> str:
    """The answer first, then the numbered sources its [n] markers point to."""
    lines = [_text(answer.answer).replace("\\[", "[").replace("\\]", "]"), ""]
    lines.append("**来源**" if answer.found else "**最接近的段落**")
    for citation in answer.citations:
        hit = citation.hit
        heading = f" · {_text(hit.heading)}" if hit.heading else ""
        lines.append(
            f"\n[{citation.number}] `{html.escape(hit.source)}`{heading}"
            f" · 第 {hit.start}–{hit.end} 字"
        )
        lines.append(f"> {_passage(citation)}")
    return "\n".join(lines)


def respond(message: str, history: list[dict]) -> str:
    try:
        return render(retriever.ask(message))
    except QuestionError as error:
        return f"无法搜索这个问题：{error}"


info = retriever.info
demo = gr.ChatInterface(
    respond,
    title="中文文档问答",
    description=(
        f"在 {info.documents} 篇文档（{info.chunks} 个段落）中查找答案，每句话都注明出处。"
        f"模型 {info.model}，索引建于 {info.created_at}。"
    ),
    examples=EXAMPLES,
    api_name="ask",
)

if __name__ == "__main__":
    demo.launch(server_name=HOST, server_port=PORT)
