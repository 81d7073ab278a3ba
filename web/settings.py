"""The web app's settings: `Settings` is retriever.config's `WebSettings`, the one place
every RETRIEVER_* variable is read (with pydantic-settings), together with the engine's and
generated answers'. docs/settings.md lists every variable with its default, and
docs/SECURITY.md explains each limit and how to serve behind a reverse proxy.

`Settings.from_env(environ)` reads them once at start-up; a wrong value stops the app with
a SettingsError that names each wrong variable.
"""

from __future__ import annotations

from retriever.config import (
    DEFAULT_QUOTA,
    FEEDBACK_PER_MINUTE,
    KB,
    MAX_BASES,
    MB,
    NETWORK_QUESTIONS_PER_MINUTE,
    Quota,
    SettingsError,
    is_loopback,
)
from retriever.config import WebSettings as Settings

__all__ = [
    "DEFAULT_QUOTA",
    "FEEDBACK_PER_MINUTE",
    "KB",
    "MAX_BASES",
    "MB",
    "NETWORK_QUESTIONS_PER_MINUTE",
    "Quota",
    "Settings",
    "SettingsError",
    "is_loopback",
]
