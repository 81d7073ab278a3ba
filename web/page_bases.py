"""The page's handlers of the knowledge bases: the picker, and creating, renaming, deleting
and restoring bases. `BaseHandlers` is a base class of web/page.py's `Page`, and checks who
asks as every handler there does."""

from __future__ import annotations

import json
import time
from typing import Any

import gradio as gr

from retriever.bases import DEFAULT
from web.access import Access, Identity
from web.libraries import Libraries
from web.refusals import Refused
from web.render_library import outcomes_html
from web.service import Service

# The delete button of the bases, and what it says while it waits for a second click.
DELETE_LABEL = "删除当前知识库"
CONFIRM_LABEL = "确定删除？再点一次"
CONFIRM_SECONDS = 5.0


def base_label(name: str) -> str:
    """A base as the picker shows it: the default one by what it is."""
    return "默认知识库" if name == DEFAULT else name


class BaseHandlers:
    """The knowledge-base handlers of the page, over its service and access rules."""

    service: Service
    libraries: Libraries
    access: Access
    examples: list[str]

    def identity(self, request: gr.Request) -> Identity | None:
        return self.access.user(request.username)

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
        return [base.name for base in self.service.usable(self.identity(request))]

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
        identity = self.identity(request)
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
        identity = self.identity(request)
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
