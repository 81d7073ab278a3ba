"""What the chat page does: its Gradio event handlers, each checking who asks before acting.

app.py lays the page out and wires these to its components. Every handler is also reachable
as a Gradio API call, so none trusts the page: each looks up the caller's role (the logged-in
user, or everyone an editor without access control), the chat counts questions per client,
and an upload is read only if this browser uploaded it (web/browser_uploads.py). What they
say is said in Chinese.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from retriever.bases import DEFAULT
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import MAX_HISTORY
from web.access import Access, Identity, Role
from web.browser_uploads import BrowserUploads, browser_of
from web.library import BuildState, Library, NotIndexed, Outcome
from web.questions import question_problem
from web.reasons import build_error
from web.render import (
    answer_html,
    base_trash_label,
    documents_html,
    error_html,
    info_html,
    outcomes_html,
    trash_html,
    trash_label,
)
from web.service import Refused, Service

# Gradio sees a Progress default and passes each event its own tracker in its place.
PROGRESS = gr.Progress()
# How often the page asks for the index line: often while a rebuild runs, so that the line
# follows its steps; seldom otherwise, which is enough to notice a rebuild someone else
# started, without a request every second from every open page.
WATCH_BUILD_SECONDS = 1.0
WATCH_IDLE_SECONDS = 10.0
# The delete button of the bases, and what it says while it waits for a second click.
DELETE_LABEL = "删除当前知识库"
CONFIRM_LABEL = "确定删除？再点一次"
CONFIRM_SECONDS = 5.0


def base_label(name: str) -> str:
    """A base as the picker shows it: the default one by what it is."""
    return "默认知识库" if name == DEFAULT else name


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


class Page:
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

    def _identity(self, request: gr.Request) -> Identity | None:
        return self.access.user(request.username)

    def _role(self, request: gr.Request, base: str | None) -> Role | None:
        """The caller's role in the chosen base: None when logged out or not let in."""
        identity = self._identity(request)
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
                self._identity(request),
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
            library = self.service.library(self._identity(request), base)
        except Refused as refusal:
            return self._base_problem(refusal, base), gr.Timer(WATCH_IDLE_SECONDS)
        fast = library.state.running or awaiting
        return _info(library), gr.Timer(WATCH_BUILD_SECONDS if fast else WATCH_IDLE_SECONDS)

    def document_list(self, base: str, request: gr.Request) -> Any:
        """The chosen base's documents, for the page's timer: a rebuild's new files show (正在
        建立索引) while it runs, whoever started it, and as indexed once it is over."""
        try:
            library = self.service.library(self._identity(request), base)
        except Refused:
            return gr.skip()  # the index line says why
        return documents_html(library.documents())

    def watch_rebuild(self) -> tuple[gr.Timer, bool]:
        """The page's timer asking often, and this page awaiting a rebuild: for an editing
        button, whose rebuild is starting."""
        return gr.Timer(WATCH_BUILD_SECONDS), True

    def bases(self, request: gr.Request, chosen: str = DEFAULT) -> Any:
        """The knowledge base picker: every base the caller may use (the default one shown as
        默认知识库), `chosen` selected if it is one of them. A `chosen` that is no base (any
        more: deleted, or renamed elsewhere) stays chosen, so that nothing is asked of another
        base until the user picks one: the index line says it is gone. Else the first."""
        names = self._usable(request)
        choices = [(base_label(name), name) for name in names]
        if chosen in names or self._missing(chosen):
            return gr.Dropdown(choices=choices, value=chosen)
        return gr.Dropdown(choices=choices, value=names[0] if names else None)

    def _missing(self, base: object) -> bool:
        """Whether `base` names a base that does not exist (a stale conversation's)."""
        if not isinstance(base, str) or not base or base == DEFAULT:
            return False
        return base not in {known.name for known in self.libraries.list()}

    def base_changed(self, base: str) -> tuple[Any, Any, Any]:
        """What follows the chosen base: the chat's example questions (the starting
        documents', so in the default base only), and the rename and delete buttons, which
        the default base does not have."""
        default = base == DEFAULT
        deletable = isinstance(base, str) and bool(base) and not default
        return (
            gr.Chatbot(examples=[{"text": q} for q in self.examples] if default else None),
            gr.Button(interactive=deletable),
            gr.Button(value=DELETE_LABEL, interactive=deletable),
        )

    def _usable(self, request: gr.Request) -> list[str]:
        """The names of the bases the caller may use, the default first."""
        return [base.name for base in self.service.usable(self._identity(request))]

    def state(self, base: str, request: gr.Request) -> tuple[Any, ...]:
        """The chosen base's index line, documents, removal choices, trash and its choices,
        the deleted bases, and whether the editing controls show (to editors only)."""
        identity = self._identity(request)
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
            library, changed = change(self._identity(request))
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

    def create_base(self, name: str, request: gr.Request) -> tuple[str, Any]:
        """Create a knowledge base named `name` and choose it; say what happened."""
        return self._change_bases(request, DEFAULT, name, "create")

    def rename_base(self, base: str, name: str, request: gr.Request) -> tuple[str, Any, str]:
        """Rename the chosen base to `name`; with what happened and the picker, the old and
        new names as JSON ({"from": …, "to": …}, or "" when nothing was renamed), for the
        conversations this browser keeps (web/conversations.js) to follow the base."""
        message, picker = self._change_bases(request, base, name, "rename")
        new = (name or "").strip()
        done = new != base and self._missing(base) and not self._missing(new)
        return message, picker, json.dumps({"from": base, "to": new}) if done else ""

    def delete_base(self, base: str, armed: Any, request: gr.Request) -> tuple[str, Any, Any, Any]:
        """Move the chosen base to the bases' trash, and choose the default base: on a second
        click within CONFIRM_SECONDS (`armed` holds the base and the time of the first), the
        first only asks. With what happened and the picker, the next `armed` and the button."""
        now = time.monotonic()
        confirmed = (
            isinstance(armed, list | tuple)
            and len(armed) == 2
            and armed[0] == base
            and isinstance(armed[1], int | float)
            and 0 <= now - armed[1] <= CONFIRM_SECONDS
        )
        identity = self._identity(request)
        manager = identity is not None and identity.manages_bases
        named = isinstance(base, str) and bool(base) and base != DEFAULT
        if not confirmed and manager and named and not self._missing(base):
            message = (
                f"要删除知识库「{str(base)[:80]}」吗？它会移到知识库回收站（可以恢复）。"
                f"{CONFIRM_SECONDS:.0f} 秒内再点一次「确定删除」。"
            )
            return outcomes_html([], message), gr.skip(), [base, now], gr.Button(CONFIRM_LABEL)
        message, picker = self._change_bases(request, base, "", "delete")
        return message, picker, None, gr.Button(DELETE_LABEL)

    def disarm(self, armed: Any) -> tuple[Any, Any]:
        """The delete button as it was, once its second click is no longer awaited."""
        waiting = (
            isinstance(armed, list | tuple)
            and len(armed) == 2
            and isinstance(armed[1], int | float)
            and time.monotonic() - armed[1] < CONFIRM_SECONDS
        )
        if waiting:
            return gr.skip(), gr.skip()  # clicked again meanwhile
        return None, gr.Button(DELETE_LABEL)

    def restore_base(
        self, entry_id: str | None, name: str, base: str, request: gr.Request
    ) -> tuple[str, Any]:
        """Put a deleted base back, under `name` if one is given, else its old name, and
        choose it."""
        return self._change_bases(request, base, name, "restore", entry_id)

    def _change_bases(
        self,
        request: gr.Request,
        base: str,
        name: str,
        action: str,
        entry_id: str | None = None,
    ) -> tuple[str, Any]:
        """What happened, and the picker with the base to show next chosen."""
        identity = self._identity(request)
        name = name or ""
        try:
            if action == "restore":
                if not entry_id:
                    message = "请先选择要恢复的知识库。"
                    return outcomes_html([], message), self.bases(request, base)
                restored = self.service.restore_base(identity, entry_id, name).name
                message = f"知识库「{restored}」已恢复，可以提问了。"
                return outcomes_html([], message), self.bases(request, restored)
            if action == "create":
                created = self.service.create_base(identity, name).name
                message = f"已新建知识库「{created}」：上传文档后就可以提问了。"
                return outcomes_html([], message), self.bases(request, created)
            if action == "rename":
                renamed = self.service.rename_base(identity, base, name).name
                message = f"知识库「{base}」已改名为「{renamed}」。"
                return outcomes_html([], message), self.bases(request, renamed)
            self.service.delete_base(identity, base)
            message = f"知识库「{base}」已移到知识库回收站，可以在下面恢复。"
            return outcomes_html([], message), self.bases(request, DEFAULT)
        except Refused as refusal:
            return outcomes_html([], refusal.message), self.bases(request, base)

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
