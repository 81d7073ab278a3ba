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

from retriever import QuestionError
from retriever.bases import DEFAULT, BaseError, BaseExists, NoSuchBase
from retriever.config import MAX_QUESTION_CHARS
from retriever.followup import MAX_HISTORY
from web.access import Access, Identity, Role
from web.browser_uploads import BrowserUploads, browser_of
from web.feedback import AnswerLog
from web.libraries import Libraries, base_error, check_allowed
from web.library import BuildState, Library, NotIndexed, Outcome
from web.limits import QuestionLimit
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

# Gradio sees a Progress default and passes each event its own tracker in its place.
PROGRESS = gr.Progress()
EDITORS_ONLY = "只有编辑者可以修改文档库。"
MANAGERS_ONLY = "只有能使用所有知识库的编辑者可以新建、改名、删除或恢复知识库。"
# Who is let into no base: a caller that is not logged in.
NOBODY = Identity("", Role.READER, frozenset())
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
        libraries: Libraries,
        access: Access,
        limit: QuestionLimit,
        uploads: BrowserUploads,
        answers: AnswerLog | None = None,
        examples: list[str] | None = None,
    ) -> None:
        self.libraries = libraries
        self.access = access
        self.limit = limit
        self.uploads = uploads
        # Answers remembered for 👍/👎 (web/feedback.py); without it, answers have no buttons.
        self.answers = answers
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
        identity = self._identity(request)
        if identity is None:
            return error_html("请先登录。")
        try:
            library = self._library(base, identity)
        except BaseError as error:
            if isinstance(error, NoSuchBase):
                return error_html(gone_message(str(base)))
            return error_html(base_error(error, str(base)))
        problem = question_problem(message)
        if problem:
            return error_html(problem)
        wait = self.limit.wait(request.client.host if request.client else "unknown")
        if wait:
            return error_html(self.limit.message(wait))
        try:
            answer = library.retriever.ask(message, earlier=earlier_questions(history))
        except NotIndexed:
            running = library.state.running
            why = "正在建立索引，请稍后再问" if running else "还没有索引：请先上传文档"
            return error_html(f"知识库「{library.name}」{why}")
        except QuestionError:
            # Not reached while web/questions.py refuses all the engine refuses; should the
            # engine come to refuse more, its English reason is for the API, not the page.
            return error_html("无法搜索这个问题，请换个说法再问")
        asked = message if answer.question != message else None
        answer_id = None
        if self.answers is not None:
            answer_id = self.answers.remember(answer, index=library.name, asked=asked)
        return answer_html(answer, asked=asked, answer_id=answer_id, base=library.name)

    def ask(self, question: str, request: gr.Request, base: str = DEFAULT) -> str:
        """One question asked of knowledge base `base`, without a conversation: the answer's
        HTML, as the chat shows it (Gradio's `/ask`, for gradio_client)."""
        return self.respond(question, [], base, request)

    def index_line(self, base: str, request: gr.Request) -> tuple[str, gr.Timer]:
        """The line under the title (the chosen base's index, and how far a rebuild is, if
        one runs), and when the page should ask for it again: the page's timer asks every few
        seconds, so that the line follows a rebuild whoever started it."""
        try:
            library = self._library(base, self._identity(request))
        except BaseError as error:
            return self._base_problem(error, base), gr.Timer(WATCH_IDLE_SECONDS)
        state = library.state
        again = WATCH_BUILD_SECONDS if state.running else WATCH_IDLE_SECONDS
        return _info(library), gr.Timer(again)

    def document_list(self, base: str, request: gr.Request) -> Any:
        """The chosen base's documents, for the page's timer: a rebuild's new files show (正在
        建立索引) while it runs, whoever started it, and as indexed once it is over."""
        try:
            library = self._library(base, self._identity(request))
        except BaseError:
            return gr.skip()  # the index line says why
        return documents_html(library.documents())

    def watch_rebuild(self) -> gr.Timer:
        """The page's timer, asking often: for an editing button, whose rebuild is starting."""
        return gr.Timer(WATCH_BUILD_SECONDS)

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
        identity = self._identity(request)
        if identity is None:
            return []
        return [base.name for base in self.libraries.list() if identity.role_in(base.name)]

    def state(self, base: str, request: gr.Request) -> tuple[Any, ...]:
        """The chosen base's index line, documents, removal choices, trash and its choices,
        the deleted bases, and whether the editing controls show (to editors only)."""
        identity = self._identity(request)
        try:
            library = self._library(base, identity)
        except BaseError as error:
            if isinstance(error, NoSuchBase):
                # Gone (a conversation of a deleted or renamed base): said, and nothing else
                # is chosen in its place. A manager may restore it from here.
                manager = identity is not None and identity.manages_bases
                *side, _, adding, editing, _ = _nothing()
                deleted = self.libraries.trash() if manager else []
                return (
                    self._base_problem(error, base),
                    *side,
                    gr.Dropdown(
                        choices=[(base_trash_label(entry), entry.id) for entry in deleted],
                        value=None,
                    ),
                    adding,
                    editing,
                    gr.Accordion(visible=manager),
                )
            gr.Warning(base_error(error, str(base)))
            usable = self._usable(request)
            if not usable:
                return (error_html(base_error(error, str(base))), *_nothing())
            library, base = self._library(usable[0], identity), usable[0]
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
        try:
            if self._role(request, base) != Role.EDITOR:
                return (outcomes_html([], EDITORS_ONLY), *self.state(base, request), None)
            if not claimed:
                return (
                    outcomes_html([], "请先选择要上传的文件。"),
                    *self.state(base, request),
                    None,
                )
            try:
                library = self._library(base, self._identity(request))
            except BaseError as error:
                message = base_error(error, str(base))
                return (outcomes_html([], message), *self.state(base, request), None)
            outcomes = [
                library.add([(file, file.name)])[0] if file else _not_uploaded(path)
                for path, file in claimed
            ]
        finally:
            for _, file in claimed:
                if file:
                    self.uploads.discard(file)
        if any(outcome.ok for outcome in outcomes):
            note = self._rebuild(library, progress, "新加入的内容现在可以提问了。")
        else:
            note = "没有文件被加入。"
        return (outcomes_html(outcomes, note), *self.state(base, request), None)

    def remove_document(
        self,
        name: str | None,
        base: str,
        request: gr.Request,
        progress: gr.Progress = PROGRESS,
    ) -> tuple[Any, ...]:
        """Move one document of the chosen base to its trash and rebuild its index."""
        return self._change_document(
            base,
            request,
            progress,
            chosen=name,
            missing="请先选择要删除的文档。",
            change=lambda library: library.remove(name),
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
        return self._change_document(
            base,
            request,
            progress,
            chosen=entry_id,
            missing="请先选择要恢复的文件。",
            change=lambda library: library.restore(entry_id),
            done="{} 又可以提问了。",
        )

    def _change_document(
        self,
        base: str,
        request: gr.Request,
        progress: gr.Progress,
        *,
        chosen: str | None,
        missing: str,
        change: Callable[[Library], Outcome],
        done: str,
    ) -> tuple[Any, ...]:
        """An editor's change to one document of the chosen base (`chosen`, or the message
        `missing` without one), then the rebuild; `done` names the document once it is in."""
        if self._role(request, base) != Role.EDITOR:
            return (outcomes_html([], EDITORS_ONLY), *self.state(base, request))
        if not chosen:
            return (outcomes_html([], missing), *self.state(base, request))
        try:
            library = self._library(base, self._identity(request))
        except BaseError as error:
            return (outcomes_html([], base_error(error, str(base))), *self.state(base, request))
        outcome = change(library)
        note = self._rebuild(library, progress, done.format(outcome.name)) if outcome.ok else ""
        return (outcomes_html([outcome], note), *self.state(base, request))

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
        if identity is None or not identity.manages_bases:
            return outcomes_html([], MANAGERS_ONLY), self.bases(request, base)
        name = (name or "").strip()
        try:
            if action == "restore":
                if not entry_id:
                    message = "请先选择要恢复的知识库。"
                    return outcomes_html([], message), self.bases(request, base)
                restored = self.libraries.restore(entry_id, name or None).name
                message = f"知识库「{restored}」已恢复，可以提问了。"
                return outcomes_html([], message), self.bases(request, restored)
            if action == "create":
                created = self.libraries.create(name).name
                message = f"已新建知识库「{created}」：上传文档后就可以提问了。"
                return outcomes_html([], message), self.bases(request, created)
            if action == "rename":
                renamed = self.libraries.rename(base, name).name
                message = f"知识库「{base}」已改名为「{renamed}」。"
                return outcomes_html([], message), self.bases(request, renamed)
            self.libraries.delete(base)
            message = f"知识库「{base}」已移到知识库回收站，可以在下面恢复。"
            return outcomes_html([], message), self.bases(request, DEFAULT)
        except BaseError as error:
            named = base if action == "delete" or isinstance(error, NoSuchBase) else name
            if action == "restore" and not name:
                named = next((e.name for e in self.libraries.trash() if e.id == entry_id), "")
            message = base_error(error, named)
            if action == "restore" and isinstance(error, BaseExists):
                message += "；或在名称框里填一个新名称再恢复"
            return outcomes_html([], message), self.bases(request, base)

    def _base_problem(self, error: BaseError, base: object) -> str:
        """The index line for a base that cannot be used."""
        if isinstance(error, NoSuchBase):
            return error_html(gone_message(str(base)))
        return error_html(base_error(error, str(base)))

    def _library(self, base: str | None, identity: Identity | None) -> Library:
        """The Library of the chosen base; raises a BaseError (retriever.bases,
        web.libraries) for a name that is not one, or one the caller may not use."""
        name = base if isinstance(base, str) and base else DEFAULT
        check_allowed(identity or NOBODY, name)
        return self.libraries.get(name)

    def _rebuild(self, library: Library, progress: gr.Progress, done: str) -> str:
        """Rebuild the index, moving the progress bar until the new index is served; then
        say how it went, with `done` (what the change means for questions) if it worked."""

        def show(state: BuildState) -> None:
            progress(state.fraction, desc=f"正在重建索引：{state.stage}")

        ticket = library.rebuild()
        show(library.state)  # at once: the library reports no sooner than its interval
        state = library.wait(ticket, show)
        if state.error:
            return f"重建索引失败，仍在使用原来的索引：{build_error(state.error)}"
        return f"索引已重建，{done}"


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


def _not_uploaded(path: str) -> Outcome:
    name = Path(path).name
    return Outcome(name, False, f"{name} 不是这个浏览器刚上传的文件，没有读取（请重新上传）")
