"""The chat page and the HTTP API: ask questions of your Chinese documents, get cited answers.

Run with `make run` (builds what is missing first) or `python app.py`; it serves
http://127.0.0.1:7860 (RETRIEVER_HOST, RETRIEVER_PORT), the page at / and the JSON API at
/api/ (see web/api.py). The model and index load once, here at start-up, not per question.
Only the page's layout lives here; what it shows is made in web/.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI

from retriever import IndexLoadError, QuestionError
from retriever.search import DEFAULT_CACHE
from web.api import api_router
from web.followup import complete_followup
from web.library import BuildState, Library
from web.render import answer_html, documents_html, error_html, info_html, outcomes_html
from web.uploads import UPLOAD_SUFFIXES

CORPUS = Path(os.environ.get("RETRIEVER_CORPUS", "corpus"))
INDEX = Path(os.environ.get("RETRIEVER_INDEX", "index"))
CACHE = Path(os.environ.get("RETRIEVER_CACHE", DEFAULT_CACHE))
HOST = os.environ.get("RETRIEVER_HOST", "127.0.0.1")
PORT = int(os.environ.get("RETRIEVER_PORT", "7860"))
EXAMPLES = [
    "办公室主任和行政主管哪个大?",
    "行政助理每天要做哪些事?",
    "办公室主任为什么适合给领导当参谋?",
    "辦公室主任的直接上級是誰？",
]
WEB = Path(__file__).with_name("web")
CSS = (WEB / "page.css").read_text(encoding="utf-8")
JS = (WEB / "page.js").read_text(encoding="utf-8")

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
for name in ("retriever", "web"):  # our own progress lines, without the libraries' chatter
    logging.getLogger(name).setLevel(logging.INFO)
try:
    library = Library.open(CORPUS, INDEX, cache_dir=CACHE)
except IndexLoadError as error:  # its message says how to build the index
    raise SystemExit(str(error)) from None
# jieba's dictionary and the model's kernels load on first use: pay that now, not on the
# first user's question.
library.retriever.ask(EXAMPLES[0])


def _text_of(content: object) -> str:
    """A chat message's text: Gradio passes it as a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def respond(message: str, history: list[dict]) -> str:
    """Answer `message`, completed from the user's earlier messages if it is a follow-up."""
    earlier = [_text_of(turn["content"]) for turn in history if turn["role"] == "user"]
    question = complete_followup(message, earlier)
    try:
        answer = library.retriever.ask(question)
    except QuestionError as error:
        return error_html(str(error))
    return answer_html(answer, asked=message if question != message else None)


def _page_state() -> tuple[str, str, gr.Dropdown]:
    """The index line, the document list and the removal choices, as they are now."""
    rows = library.documents()
    return (
        info_html(library.retriever.info, library.state),
        documents_html(rows),
        gr.Dropdown(choices=[row.name for row in rows], value=None),
    )


# Gradio sees a Progress default and passes each event its own tracker in its place.
PROGRESS = gr.Progress()


def _wait_for_rebuild(progress: gr.Progress) -> str:
    """Rebuild the index, moving the progress bar until the new index is served."""

    def show(state: BuildState) -> None:
        progress(state.fraction, desc=f"正在重建索引：{state.stage}")

    state = library.wait(library.rebuild(), show)
    if state.error:
        return f"重建索引失败，仍在使用原来的索引：{state.error}"
    return "索引已重建，新内容现在可以提问了。"


def add_documents(
    paths: list[str] | None, progress: gr.Progress = PROGRESS
) -> tuple[str, str, str, gr.Dropdown, None]:
    """Add the uploaded files to the corpus and rebuild the index; the upload area empties."""
    if not paths:
        return (outcomes_html([], "请先选择要上传的文件。"), *_page_state(), None)
    outcomes = library.add([(Path(path), Path(path).name) for path in paths])
    note = _wait_for_rebuild(progress) if any(o.ok for o in outcomes) else "没有文件被加入。"
    return (outcomes_html(outcomes, note), *_page_state(), None)


def remove_document(
    name: str | None, progress: gr.Progress = PROGRESS
) -> tuple[str, str, str, gr.Dropdown]:
    """Delete one document from the corpus and rebuild the index."""
    if not name:
        return (outcomes_html([], "请先选择要删除的文档。"), *_page_state())
    outcome = library.remove(name)
    note = _wait_for_rebuild(progress) if outcome.ok else ""
    return (outcomes_html([outcome], note), *_page_state())


with gr.Blocks(title="中文文档问答") as demo:
    gr.HTML("<h1>中文文档问答</h1><p>答案里的每句话都摘自你的文档，并标明出处。</p>")
    info = gr.HTML(elem_id="index-info", js_on_load=None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gr.ChatInterface(
                respond,
                chatbot=gr.Chatbot(
                    height=620,
                    elem_id="chat",
                    label="对话",
                    autoscroll=False,  # web/page.js scrolls to each answer's start instead
                    latex_delimiters=[],  # "$$" in a passage is text, not a formula
                    allow_tags=False,
                    buttons=["copy"],
                    placeholder="用中文提问，或点下面的例子",
                ),
                textbox=gr.Textbox(
                    placeholder="输入问题，按回车发送", submit_btn="提问", elem_id="question"
                ),
                examples=EXAMPLES,
                api_name="ask",
                concurrency_limit=4,
                fill_height=False,
            )
        with gr.Column(scale=2):
            gr.HTML("<h3>我的文档</h3>")
            files = gr.File(
                label=f"上传文档（可多选）：{' '.join(UPLOAD_SUFFIXES)}",
                file_count="multiple",
                elem_id="upload",
            )
            add_button = gr.Button("加入文档库并重建索引", variant="primary", elem_id="add")
            outcome = gr.HTML(elem_id="outcome", js_on_load=None)
            documents = gr.HTML(elem_id="documents", js_on_load=None)
            with gr.Row():
                chosen = gr.Dropdown(label="要删除的文档", elem_id="chosen", scale=3)
                remove_button = gr.Button("删除并重建索引", variant="stop", scale=1)

    page = [info, documents, chosen]
    demo.load(_page_state, outputs=page, api_name="page_state")
    # One queue for both: two rebuilds asked for at once would only wait on each other.
    add_button.click(
        add_documents,
        inputs=files,
        outputs=[outcome, *page, files],
        api_name="add_documents",
        show_progress_on=outcome,
        concurrency_id="corpus",
    )
    remove_button.click(
        remove_document,
        inputs=chosen,
        outputs=[outcome, *page],
        api_name="remove_document",
        show_progress_on=outcome,
        concurrency_id="corpus",
    )

api = FastAPI(title="中文文档问答 API", docs_url="/api/docs", openapi_url="/api/openapi.json")
# Before mounting the page at "/", which would otherwise take every path.
api.include_router(api_router(library))
# Twice the engine's per-file limit: larger files are stopped before they fill the disk,
# smaller ones reach web/uploads.py, which explains the limit on the page.
app = gr.mount_gradio_app(api, demo, path="/", css=CSS, js=JS, max_file_size="100mb")

if __name__ == "__main__":
    uvicorn.run(app, host=HOST, port=PORT)
