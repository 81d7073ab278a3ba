"""The web app as one object: `create_app(settings)` builds the chat page and the HTTP API.

Nothing happens at import. `create_app` checks the settings and the access file, loads the
model and the index (once, not per question), answers a first question so that the first
user does not pay for the model's warm-up, lays out the page (its handlers are web/page.py's,
web/chat.py's and web/citations.py's) and mounts it beside the JSON API (web/api.py), behind
the limits and guards every request passes (web/limits.py, web/browser_uploads.py). app.py
serves what it returns with uvicorn; tests can call it in-process.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import gradio as gr
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from gradio.utils import get_upload_folder
from starlette.routing import Mount

from retriever.bases import DEFAULT
from retriever.config import WebSettings
from retriever.generation import ModelServer
from web import conversations
from web.access import check_host, load_access, page_user
from web.api import api_router
from web.api_docs import api_docs_html
from web.api_models import disk_full, validation_error
from web.browser_uploads import BrowserUploads, keep_gradio_to_uploads
from web.builds import Opener
from web.chat import Generating, chat
from web.citations import Citations
from web.feedback import AnswerLog, Feedback
from web.feedback_log import FeedbackLog
from web.libraries import Libraries
from web.library import Library
from web.limits import BodyLimit, FeedbackLimit, QuestionLimit
from web.locale import LABELS, ChinesePage
from web.page import WATCH_IDLE_SECONDS, Page
from web.page_bases import CONFIRM_SECONDS, DELETE_LABEL, base_label
from web.preview import BasePreviews, Previews
from web.service import Service
from web.upload_guard import UploadGuard
from web.uploads import UPLOAD_SUFFIXES

EXAMPLES = [
    "办公室主任和行政主管哪个大?",
    "行政助理每天要做哪些事?",
    "办公室主任为什么适合给领导当参谋?",
    "辦公室主任的直接上級是誰？",
]
WEB = Path(__file__).parent
CSS = "\n".join((WEB / name).read_text(encoding="utf-8") for name in ("page.css", "layout.css"))
# Gradio runs one function when the page loads; it runs each of ours in turn.
SCRIPTS = [
    (WEB / name).read_text(encoding="utf-8").strip() for name in ("page.js", "conversations.js")
]
JS = "() => {\n" + "\n".join(f"({script})();" for script in SCRIPTS) + "\n}"


def create_app(settings: WebSettings, *, opener: Opener | None = None) -> FastAPI:
    """The app `settings` describe. Raises SettingsError or AccessError (web.access) for
    settings it may not serve with, before the model loads, and IndexLoadError (saying how
    to build one) when the index cannot be used.

    `opener` opens every index with a model (and reranker, answerer) of the caller's; by
    default the one the index was built with.
    """
    access = load_access(settings.access_file)
    check_host(settings.host, access, behind_proxy=bool(settings.trusted_proxies))
    library = Library.open(
        settings.corpus,
        settings.index,
        cache_dir=settings.cache,
        quota=settings.quota,
        opener=opener,
    )
    # jieba's dictionary and the model's kernels load on first use: pay that now, not on the
    # first user's question.
    library.retriever.ask(EXAMPLES[0])

    # Gradio's upload folder, which is also its cache: what a browser uploads waits there to be
    # added, each user (or browser) holding at most one upload's worth (web/browser_uploads.py).
    upload_folder = Path(get_upload_folder())
    uploads = BrowserUploads(
        upload_folder,
        max_held_each=settings.max_upload_bytes,
        max_held=settings.max_held_upload_bytes,
    )
    # Answers are remembered for 👍/👎, which are appended to feedback/ (web/feedback.py);
    # citations open their passage in its document (web/preview.py).
    answers = AnswerLog()
    feedback = Feedback(
        answers,
        FeedbackLog(settings.feedback_folder, max_bytes=settings.max_feedback_bytes),
        FeedbackLimit(settings.feedback_per_minute),
    )
    libraries = Libraries(library, settings.bases_folder, max_bases=settings.max_bases)
    previews = BasePreviews(libraries, Previews(library))
    # What a question, a search or a change does, for the page and the API alike.
    model = ModelServer(settings.generation) if settings.generation else None
    service = Service(libraries, QuestionLimit(settings.questions_per_minute), answers, model=model)
    page = Page(service, access, uploads, examples=EXAMPLES)

    citations = Citations(access, service, previews, feedback)
    demo = _page(page, citations, api_docs=not access.configured)
    # Whatever an event asks, Gradio copies and serves no file outside its upload folder.
    keep_gradio_to_uploads(demo, upload_folder)

    async def login(username: str, password: str) -> bool:
        # PBKDF2 takes a third of a second on purpose: off the event loop that serves everyone.
        return await anyio.to_thread.run_sync(access.login, username, password)

    # The API's schema and its docs page are for those who may use it: with logins configured
    # they are not served at all (the README lists every route), so nobody maps the API unasked.
    # Its docs page is ours (web/api_docs.py): FastAPI's loads Swagger UI from a CDN, and is
    # blank offline.
    api = FastAPI(
        title="中文文档问答 API",
        docs_url=None,
        redoc_url=None,
        openapi_url=None if access.configured else "/api/openapi.json",
        exception_handlers={RequestValidationError: validation_error, OSError: disk_full},
    )
    if not access.configured:

        @api.get("/api/docs", include_in_schema=False)
        def api_docs() -> HTMLResponse:
            return HTMLResponse(api_docs_html(api.openapi()))

    # Before mounting the page at "/", which would otherwise take every path.
    api.include_router(api_router(service, access, previews=previews, feedback=feedback))
    # For the page and the API alike. The middleware added last runs first: BodyLimit caps each
    # body before UploadGuard (or anything else) reads it.
    api.add_middleware(
        UploadGuard,
        uploads=uploads,
        # Called per upload, once the page below is mounted: Gradio knows who is logged in.
        uploader=lambda cookies: access.uploader(page_user(gradio_app, cookies)),
    )
    api.add_middleware(ChinesePage)
    api.add_middleware(
        BodyLimit,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app = gr.mount_gradio_app(
        api,
        demo,
        path="/",
        css=CSS,
        js=JS,
        # Twice the engine's per-file limit: larger files are stopped before they fill the disk,
        # smaller ones reach web/uploads.py, which explains the limit on the page.
        max_file_size="100mb",
        auth=login if access.configured else None,
        auth_message="请用管理员给你的用户名和密码登录。",
        # Run history can connect to a Hugging Face bucket through a route without login.
        run_history=False,
        i18n=LABELS,
        # Not Gradio's "api" link: it opens a panel of Gradio's internal events, in English.
        # The page's own API is described at /api/docs (linked under the title).
        footer_links=["gradio", "settings"],
        # Gradio's own schema of its internal routes: of no use to anyone, and served without
        # login. The page's API is at /api/ (and Gradio's /gradio_api/info, behind its login).
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
    )
    gradio_app = next(route.app for route in app.routes if isinstance(route, Mount))

    return app


def _page(page: Page, citations: Citations, *, api_docs: bool = False) -> gr.Blocks:
    """The page's layout, each component wired to its handler in `page` (web/page.py);
    `api_docs`: whether /api/docs is served, and linked under the title."""
    link = (
        ' <a class="qa-api-docs" href="api/docs" target="_blank">API 说明</a>' if api_docs else ""
    )
    with gr.Blocks(title="中文文档问答") as demo:
        gr.HTML(
            f"<h1>中文文档问答</h1><p>答案里的每句话都摘自你的文档，并标明出处。{link}</p>",
            elem_id="title",
        )
        info = gr.HTML(elem_id="index-info", js_on_load=None)
        # The page is the window's height; the chat takes what the title and the question box
        # leave, the one scroll area of the conversation (web/layout.css).
        with gr.Row(equal_height=False, elem_id="main"):
            with gr.Column(scale=3, elem_id="chat-column"):
                # Custom values, because a Gradio API client has no page load to fill in the
                # choices; every handler checks the name it gets.
                base = gr.Dropdown(
                    [(base_label(DEFAULT), DEFAULT)],
                    value=DEFAULT,
                    label="知识库",
                    elem_id="base",
                    allow_custom_value=True,
                )
                # With a model server only: the answer written by the model, and a button to
                # stop it, shown while it writes (web/generating.py).
                configured = page.service.model is not None
                with gr.Row(elem_id="chat-bar", elem_classes=["qa-model"] if configured else []):
                    conversations.bar()
                    generating = Generating(
                        gr.Checkbox(label="模型撰写", visible=configured, elem_id="generate"),
                        gr.Button("停止生成", visible=False, elem_id="stop", scale=0, size="sm"),
                    )
                talk = chat(page, base, EXAMPLES, generating)
            with gr.Column(scale=2, elem_id="side"):
                conversations.conversation_list()
                # Editors only, like the document controls below.
                with gr.Accordion(
                    "管理知识库", open=False, visible=False, elem_id="bases"
                ) as bases:
                    base_name = gr.Textbox(
                        label="名称（文字、数字、- 和 _）", max_lines=1, elem_id="base-name"
                    )
                    with gr.Row():
                        create_button = gr.Button("新建", elem_id="create-base")
                        # Not for the default base, which is chosen at first (page.base_changed).
                        rename_button = gr.Button(
                            "把当前知识库改成这个名称", elem_id="rename-base", interactive=False
                        )
                        delete_button = gr.Button(
                            DELETE_LABEL, variant="stop", elem_id="delete-base", interactive=False
                        )
                    # A rename's old and new names, for the conversations kept in the browser;
                    # the base the delete button's first click asked about, and when.
                    renamed = gr.Textbox(visible=False)
                    armed = gr.State(None)
                    with gr.Row():
                        # Custom values, like the document choices below: page.restore_base
                        # checks the id it gets.
                        deleted_bases = gr.Dropdown(
                            label="已删除的知识库（恢复为原名，或上面填的名称）",
                            elem_id="deleted-bases",
                            scale=3,
                            allow_custom_value=True,
                        )
                        restore_base_button = gr.Button("恢复", elem_id="restore-base", scale=1)
                    base_outcome = gr.HTML(elem_id="base-outcome", js_on_load=None)
                gr.HTML("<h3>我的文档</h3>", elem_id="documents-title")
                # Editors only: page.state hides these columns from readers.
                with gr.Column(visible=False, elem_id="adding") as adding:
                    files = gr.File(
                        label=f"上传文档（可多选）：{' '.join(UPLOAD_SUFFIXES)}",
                        file_count="multiple",
                        elem_id="upload",
                    )
                    add_button = gr.Button("加入文档库并重建索引", variant="primary", elem_id="add")
                    outcome = gr.HTML(elem_id="outcome", js_on_load=None)
                documents = gr.HTML(elem_id="documents", js_on_load=None)
                with gr.Column(visible=False, elem_id="editing") as editing:
                    # Custom values, because a Gradio API client has no page load to fill in the
                    # choices; page.remove_document and page.restore_document check every value.
                    with gr.Row():
                        chosen = gr.Dropdown(
                            label="要删除的文档", elem_id="chosen", scale=3, allow_custom_value=True
                        )
                        remove_button = gr.Button("删除并重建索引", variant="stop", scale=1)
                    gr.HTML("<h4>回收站</h4><p>删除或被同名上传替换的文件都在这里，可以恢复。</p>")
                    trash = gr.HTML(elem_id="trash", js_on_load=None)
                    with gr.Row():
                        trashed = gr.Dropdown(
                            label="要恢复的文件",
                            elem_id="trashed",
                            scale=3,
                            allow_custom_value=True,
                        )
                        restore_button = gr.Button("恢复并重建索引", elem_id="restore", scale=1)

        # The source preview and the 👍/👎 messenger: small, and laid out wherever (a dialog).
        citations.render()
        state = [info, documents, chosen, trash, trashed, deleted_bases, adding, editing, bases]
        # On load, and when a conversation is opened from the list, the picker gets the
        # conversation's base (web/conversations.py): checked against the bases there are, then
        # the side shows that base's documents.
        loaded, switched = conversations.keep_in_browser(demo, talk, base)
        loaded.then(page.bases, inputs=base, outputs=base, api_name="bases").then(
            page.state, inputs=base, outputs=state, api_name="page_state"
        )
        switched.then(page.bases, inputs=base, outputs=base, api_visibility="private").then(
            page.state, inputs=base, outputs=state, api_visibility="private"
        )
        quietly = {"queue": False, "show_progress": "hidden", "api_visibility": "private"}
        # Whatever chose the base: the examples (the default base's only), and the rename and
        # delete buttons (not for the default base) follow it.
        base.change(
            page.base_changed,
            inputs=base,
            outputs=[talk.chatbot, rename_button, delete_button],
            **quietly,
        )
        # A base chosen, created, renamed or deleted: the side shows that base's documents.
        base.input(page.state, inputs=base, outputs=state, api_visibility="private")
        for button, handler, inputs in (
            (create_button, page.create_base, [base_name]),
            (restore_base_button, page.restore_base, [deleted_bases, base_name, base]),
        ):
            button.click(
                handler, inputs=inputs, outputs=[base_outcome, base], concurrency_id="bases"
            ).then(page.state, inputs=base, outputs=state, api_visibility="private")
        # A rename: the conversations kept in this browser follow the base to its new name.
        rename_button.click(
            page.rename_base,
            inputs=[base, base_name],
            outputs=[base_outcome, base, renamed],
            concurrency_id="bases",
        ).then(None, inputs=renamed, js="(r) => qaConversations.renamed(r)", **quietly).then(
            page.state, inputs=base, outputs=state, api_visibility="private"
        )
        # A deletion takes a second click within a few seconds; the button says so meanwhile.
        delete_button.click(
            page.delete_base,
            inputs=[base, armed],
            outputs=[base_outcome, base, armed, delete_button],
            concurrency_id="bases",
        ).then(page.state, inputs=base, outputs=state, api_visibility="private").then(
            None,
            js=f"() => new Promise((done) => setTimeout(done, {CONFIRM_SECONDS * 1000 + 200:.0f}))",
            **quietly,
        ).then(page.disarm, inputs=armed, outputs=[armed, delete_button], **quietly)
        # The index line follows a rebuild as it runs (web/page.py says how often it is asked
        # for). Outside the queue: small requests, never waiting behind questions or rebuilds.
        watch = gr.Timer(WATCH_IDLE_SECONDS)
        # From an editing button's click until its handler returns, this page awaits a rebuild
        # and the timer stays fast, even before the rebuild has started.
        awaiting = gr.State(False)
        watch.tick(page.index_line, inputs=[base, awaiting], outputs=[info, watch], **quietly)
        watch.tick(page.document_list, inputs=base, outputs=documents, **quietly)
        # One queue for the three editing buttons: two rebuilds asked for at once would only
        # wait on each other.
        for button, handler, inputs, outputs in (
            (add_button, page.add_documents, [files, base], [outcome, *state, files]),
            (remove_button, page.remove_document, [chosen, base], [outcome, *state]),
            (restore_button, page.restore_document, [trashed, base], [outcome, *state]),
        ):
            button.click(page.watch_rebuild, outputs=[watch, awaiting], **quietly).then(
                handler,
                inputs=inputs,
                outputs=outputs,
                api_name=handler.__name__,
                show_progress_on=outcome,
                concurrency_id="corpus",
            ).then(lambda: False, outputs=awaiting, **quietly)

    return demo
