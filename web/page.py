"""What the chat page does: its Gradio event handlers, each checking who asks before acting.

app.py lays the page out and wires these to its components. Every handler is also reachable
as a Gradio API call, so none trusts the page: each looks up the caller's role (the logged-in
user, or everyone an editor without access control), the chat counts questions per client,
and an upload is read only if this browser uploaded it (web/browser_uploads.py). What they
say is said in Chinese.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from retriever.bases import DEFAULT
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import MAX_HISTORY
from web.access import Access, Identity, Role
from web.browser_uploads import BrowserUploads, browser_of
from web.builds import BuildState
from web.library import Library, NotIndexed
from web.outcomes import Outcome
from web.page_bases import BaseHandlers
from web.questions import question_problem
from web.reasons import build_error
from web.refusals import Refused
from web.render import answer_html, error_html
from web.render_library import (
    base_trash_label,
    documents_html,
    info_html,
    outcomes_html,
    trash_html,
    trash_label,
)
from web.service import Service

# Gradio sees a Progress default and passes each event its own tracker in its place.
PROGRESS = gr.Progress()
# How often the page asks for the index line: often while a rebuild runs, so that the line
# follows its steps; seldom otherwise, which is enough to notice a rebuild someone else
# started, without a request every second from every open page.
WATCH_BUILD_SECONDS = 1.0
WATCH_IDLE_SECONDS = 10.0


def gone_message(name: str) -> str:
    """Said of a base that is not there any more, where a conversation of it is shown."""
    return (
        f"知识库「{name[:80]}」已不存在（也许被删除，或被改了名）："
        "这个对话不会转去问别的知识库；请在上面的「知识库」里选一个，再继续提问。"
    )


def earlier_questions(history: Any) -> list[str]:
    """The user's earlier messages in a chat history, oldest first, for follow-ups.

    The history comes from the client, so anything malformed is passed over, and so are
    messages too long to have been searched; only the last MAX_HISTORY count.
    """
    if not isinstance(history, list):
        return []
    texts = [
        text_of(turn.get("content"))
        for turn in history
        if isinstance(turn, dict) and turn.get("role") == "user"
    ]
    return [text for text in texts if len(text) <= MAX_QUESTION_CHARS][-MAX_HISTORY:]


def text_of(content: object) -> str:
    """A chat message's text: Gradio passes it as a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


class Page(BaseHandlers):
    """The page's handlers, around the knowledge bases, the access rules and the limits.

    Each handler gets the knowledge base the page has chosen (its name, from the page's
    picker); the default base is always there.
    """

    def __init__(
        self,
        service: Service,
        access: Access,
        uploads: BrowserUploads,
        examples: list[str] | None = None,
    ) -> None:
        self.service = service
        self.libraries = service.libraries
        self.access = access
        self.uploads = uploads
        # The example questions under the empty chat: about the starting (default) documents.
        self.examples = list(examples or [])

    def _role(self, request: gr.Request, base: str | None) -> Role | None:
        """The caller's role in the chosen base: None when logged out or not let in."""
        identity = self.identity(request)
        return identity.role_in(base or DEFAULT) if identity else None

    def check_question(self, message: str) -> dict[str, Any]:
        """The chat box's validator: an unsearchable question is refused before it is shown."""
        problem = question_problem(message)
        return gr.validate(problem is None, problem or "")

    def respond(self, message: str, history: list[dict], base: str, request: gr.Request) -> str:
        """Answer `message` from knowledge base `base`, completed from the user's earlier
        messages if it is a follow-up."""
        try:
            asked = self.service.ask(
                self.identity(request),
                base,
                message,
                client=request.client.host if request.client else "unknown",
                earlier=earlier_questions(history),
            )
        except Refused as refusal:
            if refusal.status == 404:  # the conversation's base is gone: never another's
                return error_html(gone_message(str(base)))
            return error_html(refusal.message)
        return answer_html(
            asked.answer, asked=asked.asked, answer_id=asked.answer_id, base=asked.base
        )

    def ask(self, question: str, request: gr.Request, base: str = DEFAULT) -> str:
        """One question asked of knowledge base `base`, without a conversation: the answer's
        HTML, as the chat shows it (Gradio's `/ask`, for gradio_client)."""
        return self.respond(question, [], base, request)

    def index_line(
        self, base: str, request: gr.Request, awaiting: bool = False
    ) -> tuple[str, gr.Timer]:
        """The line under the title (the chosen base's index, and how far a rebuild is, if
        one runs), and when the page should ask for it again: the page's timer asks every few
        seconds, so that the line follows a rebuild whoever started it, and every second while
        one runs or while this page `awaiting` the rebuild its button asked for (which may
        not have started yet: slowing down then would miss it)."""
        try:
            library = self.service.library(self.identity(request), base)
        except Refused as refusal:
            return self._base_problem(refusal, base), gr.Timer(WATCH_IDLE_SECONDS)
        fast = library.state.running or awaiting
        return _info(library), gr.Timer(WATCH_BUILD_SECONDS if fast else WATCH_IDLE_SECONDS)

    def document_list(self, base: str, request: gr.Request) -> Any:
        """The chosen base's documents, for the page's timer: a rebuild's new files show (正在
        建立索引) while it runs, whoever started it, and as indexed once it is over."""
        try:
            library = self.service.library(self.identity(request), base)
        except Refused:
            return gr.skip()  # the index line says why
        return documents_html(library.documents())

    def watch_rebuild(self) -> tuple[gr.Timer, bool]:
        """The page's timer asking often, and this page awaiting a rebuild: for an editing
        button, whose rebuild is starting."""
        return gr.Timer(WATCH_BUILD_SECONDS), True

    def state(self, base: str, request: gr.Request) -> tuple[Any, ...]:
        """The chosen base's index line, documents, removal choices, trash and its choices,
        the deleted bases, and whether the editing controls show (to editors only)."""
        identity = self.identity(request)
        try:
            library = self.service.library(identity, base)
        except Refused as refusal:
            if refusal.status == 404:
                # Gone (a conversation of a deleted or renamed base): said, and nothing else
                # is chosen in its place. A manager may restore it from here.
                manager = identity is not None and identity.manages_bases
                *side, _, adding, editing, _ = _nothing()
                deleted = self.libraries.trash() if manager else []
                return (
                    self._base_problem(refusal, base),
                    *side,
                    gr.Dropdown(
                        choices=[(base_trash_label(entry), entry.id) for entry in deleted],
                        value=None,
                    ),
                    adding,
                    editing,
                    gr.Accordion(visible=manager),
                )
            gr.Warning(refusal.message)
            usable = self._usable(request)
            if not usable:
                return (error_html(refusal.message), *_nothing())
            library, base = self.service.library(identity, usable[0]), usable[0]
        editor = self._role(request, base) == Role.EDITOR
        rows = library.documents()
        trash = library.trash() if editor else []
        manager = identity is not None and identity.manages_bases
        deleted_bases = self.libraries.trash() if manager else []
        return (
            _info(library),
            documents_html(rows),
            gr.Dropdown(choices=[row.name for row in rows], value=None),
            trash_html(trash),
            gr.Dropdown(
                choices=[(f"{entry.name}（{trash_label(entry)}）", entry.id) for entry in trash],
                value=None,
            ),
            gr.Dropdown(
                choices=[(base_trash_label(entry), entry.id) for entry in deleted_bases],
                value=None,
            ),
            gr.Column(visible=editor),
            gr.Column(visible=editor),
            gr.Accordion(visible=manager),
        )

    def add_documents(
        self,
        paths: list[str] | None,
        base: str,
        request: gr.Request,
        progress: gr.Progress = PROGRESS,
    ) -> tuple[Any, ...]:
        """Add the uploaded files to the chosen base's documents and rebuild its index; the
        upload area empties.

        Only files this browser uploaded are read; each of Gradio's copies is deleted after,
        whatever became of it.
        """
        browser = browser_of(request.cookies)
        claimed = [(path, self.uploads.claim(browser, path)) for path in paths or []]
        uploads = [(file, file.name) if file else (None, Path(path).name) for path, file in claimed]
        try:
            return (
                *self._change_documents(
                    request,
                    base,
                    progress,
                    lambda identity: self.service.add_documents(identity, base, uploads),
                    done="新加入的内容现在可以提问了。",
                    nothing="没有文件被加入。",
                ),
                None,
            )
        finally:
            for _, file in claimed:
                if file:
                    self.uploads.discard(file)

    def remove_document(
        self,
        name: str | None,
        base: str,
        request: gr.Request,
        progress: gr.Progress = PROGRESS,
    ) -> tuple[Any, ...]:
        """Move one document of the chosen base to its trash and rebuild its index."""
        return self._change_documents(
            request,
            base,
            progress,
            lambda identity: self.service.remove_document(identity, base, name),
            done="{} 的内容不会再出现在答案里。",
        )

    def restore_document(
        self,
        entry_id: str | None,
        base: str,
        request: gr.Request,
        progress: gr.Progress = PROGRESS,
    ) -> tuple[Any, ...]:
        """Put a file of the chosen base's trash back and rebuild its index."""
        return self._change_documents(
            request,
            base,
            progress,
            lambda identity: self.service.restore_document(identity, base, entry_id),
            done="{} 又可以提问了。",
        )

    def _change_documents(
        self,
        request: gr.Request,
        base: str,
        progress: gr.Progress,
        change: Callable[[Identity | None], tuple[Library, Outcome | list[Outcome]]],
        *,
        done: str,
        nothing: str = "",
    ) -> tuple[Any, ...]:
        """An editor's `change` to the chosen base's documents, then the rebuild, with the
        progress bar following it; `done` says what the change means for questions (naming
        the document, for one), `nothing` that no file changed."""
        try:
            library, changed = change(self.identity(request))
        except Refused as refusal:
            return (outcomes_html([], refusal.message), *self.state(base, request))
        outcomes = changed if isinstance(changed, list) else [changed]

        def show(state: BuildState) -> None:
            progress(state.fraction, desc=f"正在重建索引：{state.stage}")

        try:
            state = self.service.rebuilt(library, outcomes, show)
        except Refused:  # the disk is full: each file's outcome says so
            state = None
        if state is None:
            note = nothing
        elif state.error:
            note = f"重建索引失败，仍在使用原来的索引：{build_error(state.error)}"
        else:
            note = f"索引已重建，{done.format(outcomes[0].name)}"
        return (outcomes_html(outcomes, note), *self.state(base, request))

    def _base_problem(self, refusal: Refused, base: object) -> str:
        """The index line for a base that cannot be used."""
        if refusal.status == 404:
            return error_html(gone_message(str(base)))
        return error_html(refusal.message)


def _nothing() -> tuple[Any, ...]:
    """The side when the caller may use no base: no documents, no choices, no editing
    controls."""
    return (
        documents_html([]),
        gr.Dropdown(choices=[], value=None),
        trash_html([]),
        gr.Dropdown(choices=[], value=None),
        gr.Dropdown(choices=[], value=None),
        gr.Column(visible=False),
        gr.Column(visible=False),
        gr.Accordion(visible=False),
    )


def _info(library: Library) -> str:
    """The index line of a base, which may have no index yet."""
    try:
        info = library.retriever.info
    except NotIndexed:
        info = None
    return info_html(info, library.state, library.name)
