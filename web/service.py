"""What the product does for a caller, whatever they call from: ask, search, change documents
and knowledge bases. The page (web/page.py) and the HTTP API (web/api.py) are two faces of
this one service, so the same request gets the same answer, and the same refusal, from both.

Each method checks who asks (an Identity of web/access.py) before acting, and says no by
raising `Refused`: an HTTP status (which the API answers with) and the reason in Chinese
(which the page shows as it is). How a caller is identified (a login, a token) and how the
answer is shown stay with each face.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from retriever import Answer, QuestionError, Retriever
from retriever.bases import (
    DEFAULT,
    Base,
    BaseError,
    BaseExists,
    BaseTrashEntry,
    NoSuchBase,
    NotABase,
)
from retriever.generation import (
    Extracted,
    GeneratingAnswerer,
    ModelServer,
    Piece,
    Settled,
)
from retriever.search import Hit, Searched
from web.access import Identity, Role
from web.builds import BuildState
from web.feedback import AnswerLog
from web.libraries import BaseBusy, Libraries, check_allowed
from web.library import Library, NotIndexed
from web.limits import QuestionLimit
from web.outcomes import DISK_FULL, Outcome
from web.questions import is_text, question_problem
from web.refusals import (
    EDITORS_ONLY,
    MANAGERS_ONLY,
    NO_MODEL,
    Refused,
    base_refusal,
    question_refusal,
)


@dataclass(frozen=True)
class Asked:
    """An answer, and what the page and the API say beside it."""

    answer: Answer
    base: str
    answer_id: str | None  # what a rating names it by (None: ratings are off)
    asked: str | None  # the question as typed, when a follow-up was completed into another


class Service:
    """Ask, search and change the knowledge bases of `libraries`, within the question
    `limit`; answers are remembered in `answers` for ratings."""

    def __init__(
        self,
        libraries: Libraries,
        limit: QuestionLimit,
        answers: AnswerLog | None = None,
        *,
        model: ModelServer | None = None,
    ) -> None:
        self.libraries = libraries
        self.limit = limit
        self.answers = answers
        self.model = model  # writes generated answers (retriever.generation); None: off

    # ------------------------------------------------------------------------ questions

    def ask(
        self,
        identity: Identity,
        base: str,
        question: str,
        *,
        client: str,
        earlier: Iterable[str] = (),
        k: int | None = None,
        generate: bool = False,
    ) -> Asked:
        """The answer to `question` from base `base`, completed from the `earlier`
        questions of the conversation if it is a follow-up; `client` (an address) is who
        the question limit counts. With `generate`, the configured model writes it."""
        if generate:  # the streamed answer's last event, which carries the conversation too
            *_, asked = self.ask_streamed(
                identity, base, question, client=client, earlier=earlier, k=k
            )
            assert isinstance(asked, Asked)
            return asked
        library, retriever, searched = self._searched(
            identity, base, question, client, earlier, k, generate=False
        )
        return self._asked(library, question, retriever.answer(searched))

    def ask_streamed(
        self,
        identity: Identity,
        base: str,
        question: str,
        *,
        client: str,
        earlier: Iterable[str] = (),
        k: int | None = None,
    ) -> Iterator[Extracted | Piece | Asked]:
        """A generated answer as it is made: the extractive answer at once, the model's text
        piece by piece, then the answer to show (last). Everything `ask` refuses is refused
        here before the first event."""
        library, retriever, searched = self._searched(
            identity, base, question, client, earlier, k, generate=True
        )
        generating = GeneratingAnswerer(retriever.answerer, self.model)
        return self._settling(library, question, generating.events(searched))

    def _searched(
        self,
        identity: Identity,
        base: str,
        question: str,
        client: str,
        earlier: Iterable[str],
        k: int | None,
        *,
        generate: bool,
    ) -> tuple[Library, Retriever, Searched]:
        """The base asked, its Retriever and the question searched, once every check
        passed (with `generate`, that a model is configured)."""
        library = self._asking(identity, base, question, client)
        retriever = self.retriever(library)
        if generate and self.model is None:
            raise Refused(409, NO_MODEL)
        try:
            return library, retriever, retriever.searched(question, earlier=list(earlier), **_k(k))
        except QuestionError:
            raise Refused(422, question_refusal(question)) from None

    def _settling(
        self, library: Library, question: str, events: Iterator[Extracted | Piece | Settled]
    ) -> Iterator[Extracted | Piece | Asked]:
        with closing(events):  # a client gone mid-answer stops the generation
            for event in events:
                if isinstance(event, Settled):
                    yield self._asked(library, question, event.answer)
                else:
                    yield event

    def _asked(self, library: Library, question: str, answer: Answer) -> Asked:
        """The answer, remembered for ratings."""
        asked = question if answer.question != question else None
        answer_id = None
        if self.answers is not None:
            answer_id = self.answers.remember(answer, index=library.name, asked=asked)
        return Asked(answer, library.name, answer_id, asked)

    def search(
        self, identity: Identity, base: str, question: str, k: int, *, client: str
    ) -> list[Hit]:
        """The `k` passages of base `base` that best match `question`, best first."""
        retriever = self.retriever(self._asking(identity, base, question, client))
        try:
            return retriever.search(question, k)
        except QuestionError:
            raise Refused(422, question_refusal(question)) from None

    def _asking(self, identity: Identity, base: str, question: object, client: str) -> Library:
        """The base a question may be asked of, once the question and the limit allow it."""
        if isinstance(question, str) and not is_text(question):
            raise Refused(400, question_refusal(question))
        library = self.library(identity, base)
        if not isinstance(question, str) or question_problem(question):
            raise Refused(422, question_refusal(question))
        wait = self.limit.wait(client)
        if wait:
            raise Refused(429, self.limit.message(wait), retry_after=wait)
        return library

    # --------------------------------------------------------------------- the bases

    def library(self, identity: Identity | None, base: str | None) -> Library:
        """The Library of base `base` (the default one when empty), if `identity` may use
        it."""
        name = base if isinstance(base, str) and base else DEFAULT
        if identity is None:
            raise Refused(401, "请先登录。")
        try:
            check_allowed(identity, name)
            return self.libraries.get(name)
        except BaseError as error:
            raise self.refusal(error, name) from None

    def retriever(self, library: Library) -> Retriever:
        """The base's served Retriever; 409 while it has no index."""
        try:
            return library.retriever
        except NotIndexed:
            running = library.state.running
            why = "正在建立索引，请稍后再问" if running else "还没有索引：请先上传文档"
            raise Refused(409, f"知识库「{library.name}」{why}") from None

    def usable(self, identity: Identity | None) -> list[Base]:
        """The bases `identity` may use, the default first."""
        if identity is None:
            return []
        return [base for base in self.libraries.list() if identity.role_in(base.name)]

    def create_base(self, identity: Identity | None, name: str) -> Base:
        self._manager(identity)
        try:
            return self.libraries.create(name.strip())
        except BaseError as error:
            raise self.refusal(error, name.strip()) from None

    def rename_base(self, identity: Identity | None, base: str, name: str) -> Base:
        """Rename base `base` to `name`; its documents, index and trash move with it."""
        self._manager(identity)
        try:
            return self.libraries.rename(base, name.strip())
        except BaseError as error:
            named = base if isinstance(error, NoSuchBase | BaseBusy | NotABase) else name.strip()
            raise self.refusal(error, named) from None

    def delete_base(self, identity: Identity | None, base: str) -> BaseTrashEntry:
        """Move base `base` to the bases' trash: the entry that restores it."""
        self._manager(identity)
        try:
            return self.libraries.delete(base)
        except BaseError as error:
            raise self.refusal(error, base) from None

    def restore_base(self, identity: Identity | None, entry_id: str, name: str | None) -> Base:
        """Put a deleted base back, under `name` if given, else its old name."""
        self._manager(identity)
        name = (name or "").strip() or None
        try:
            return self.libraries.restore(entry_id, name)
        except BaseError as error:
            old = next((e.name for e in self.libraries.trash() if e.id == entry_id), entry_id)
            refusal = self.refusal(error, name or old)
            if isinstance(error, BaseExists):
                refusal = Refused(409, f"{refusal.message}；或给它一个新名称再恢复")
            raise refusal from None

    def _manager(self, identity: Identity | None) -> None:
        if identity is None or not identity.manages_bases:
            raise Refused(403, MANAGERS_ONLY)

    def refusal(self, error: BaseError, name: str) -> Refused:
        """Why a request about base `name` was refused, with its HTTP status."""
        return base_refusal(error, name, max_bases=self.libraries.max_bases)

    # ---------------------------------------------------------------------- documents

    def add_documents(
        self, identity: Identity | None, base: str, uploads: list[tuple[Path | None, str]]
    ) -> tuple[Library, list[Outcome]]:
        """Add the uploaded files (a saved file and the name its sender gave it; None for
        one that never arrived) to base `base`'s documents; each file's outcome."""
        library = self.editing(identity, base)
        if not uploads:
            raise Refused(422, "请先选择要上传的文件。")
        outcomes = [
            library.add([(path, name)])[0] if path else _not_uploaded(name)
            for path, name in uploads
        ]
        return library, outcomes

    def remove_document(
        self, identity: Identity | None, base: str, name: str | None
    ) -> tuple[Library, Outcome]:
        """Move document `name` of base `base` to its trash."""
        library = self.editing(identity, base)
        if not name:
            raise Refused(422, "请先选择要删除的文档。")
        if name not in {row.name for row in library.documents()}:
            raise Refused(404, f"文档库里没有 {name}")
        return library, library.remove(name)

    def restore_document(
        self, identity: Identity | None, base: str, entry_id: str | None
    ) -> tuple[Library, Outcome]:
        """Put entry `entry_id` of base `base`'s trash back among its documents."""
        library = self.editing(identity, base)
        if not entry_id:
            raise Refused(422, "请先选择要恢复的文件。")
        if entry_id not in {entry.id for entry in library.trash()}:
            raise Refused(404, "回收站里没有这一项")
        return library, library.restore(entry_id)

    def rebuilt(
        self,
        library: Library,
        outcomes: list[Outcome],
        show: Callable[[BuildState], None] | None = None,
    ) -> BuildState | None:
        """Rebuild the base's index if any file changed, and wait until the new index is
        served (`show` follows its steps): how the build ended, None when nothing changed.
        507 when nothing changed and the disk being full is why."""
        if any(outcome.ok for outcome in outcomes):
            ticket = library.rebuild()
            if show is not None:
                show(library.state)  # at once: the library reports no sooner than its interval
            return library.wait(ticket, show)
        if any(outcome.disk_full for outcome in outcomes):
            raise Refused(507, DISK_FULL)
        return None

    def editing(self, identity: Identity | None, base: str) -> Library:
        """The Library of base `base`, if `identity` may change its documents."""
        library = self.library(identity, base)  # who may not use the base is told so first
        if identity is None or identity.role_in(library.name) != Role.EDITOR:
            raise Refused(403, EDITORS_ONLY)
        return library


def _k(k: int | None) -> dict[str, int]:
    """How many passages to search for, if the caller says: else the Retriever's default."""
    return {} if k is None else {"k": k}


def _not_uploaded(name: str) -> Outcome:
    return Outcome(name, False, f"{name} 不是这个浏览器刚上传的文件，没有读取（请重新上传）")
