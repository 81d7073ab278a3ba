"""Where a new Milvus index goes (MilvusSettings), and how the settings reach the backend:
`configured(settings)` around a build (the CLI does it for `build --backend milvus
--milvus-uri http://host:19530`). The process environment is read in one case only: the
token of a loaded index's server outside any `configured` block (`token_for`).

The engine's build calls the backend's `create(dim)` with no room for options, so the
settings come in through a context variable rather than as arguments. A loaded index takes
its server from the index folder (retriever.backends.milvus_collections); only the token,
which is never saved, comes from the settings of the same server, or from
RETRIEVER_MILVUS_TOKEN where nothing is configured (the page and the API).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

STRONG = "Strong"
CONSISTENCY_LEVELS = (STRONG, "Bounded", "Session", "Eventually")


@dataclass(frozen=True)
class MilvusSettings:
    """Where a new Milvus index goes. `uri` None: Milvus Lite in the index folder; else a
    server's URI (http://host:19530). `token` ("user:password" or an API key) is never
    saved; `database` "" is the server's default one; `consistency` is the level reads use
    (Bounded or Session do not wait for the server's time tick; Strong does)."""

    uri: str | None = None
    token: str = field(default="", repr=False)
    database: str = ""
    consistency: str = "Bounded"

    def __post_init__(self) -> None:
        if self.consistency not in CONSISTENCY_LEVELS:
            raise ValueError(
                f"Milvus consistency must be one of {', '.join(CONSISTENCY_LEVELS)}, "
                f"got {self.consistency!r}"
            )
        if self.uri is not None and not self.uri.startswith(("http://", "https://", "tcp://")):
            raise ValueError(
                f"a Milvus server's URI starts with http://, https:// or tcp://, got {self.uri!r}"
            )


_CONFIGURED: ContextVar[MilvusSettings | None] = ContextVar("milvus_settings", default=None)


def current_settings() -> MilvusSettings:
    """The settings `configured` gave this context; the defaults (Milvus Lite) outside it."""
    return _CONFIGURED.get() or MilvusSettings()


@contextmanager
def configured(settings: MilvusSettings) -> Iterator[MilvusSettings]:
    """Within the block, new Milvus indexes go where `settings` say, and loads of an index on
    `settings.uri` use its token."""
    token = _CONFIGURED.set(settings)
    try:
        yield settings
    finally:
        _CONFIGURED.reset(token)


def token_for(uri: str) -> str:
    """The token for the server at `uri` that a loaded index names: the one `configured` gave
    for that server, or for no server in particular (the CLI's build without --milvus-uri);
    "" inside a block for another server. Outside any block (the page, the API, the CLI's
    search and ask, a rebuild in the page's background thread), RETRIEVER_MILVUS_TOKEN, read
    through retriever.config.Environment."""
    settings = _CONFIGURED.get()
    if settings is None:
        from retriever.config import Environment

        return Environment.read().milvus_token
    return settings.token if settings.uri in (None, uri) else ""


def connect(uri: str, token: str, database: str) -> Any:
    """A pymilvus client of the server at `uri` (token and database "" for none)."""
    from pymilvus import MilvusClient

    options: dict[str, Any] = {"uri": uri}
    if token:
        options["token"] = token
    if database:
        options["db_name"] = database
    return MilvusClient(**options)


def saved_server(record: dict[str, Any]) -> MilvusSettings:
    """The server a saved index side's `milvus.json` names (`record`), with its token, which
    is never saved (`token_for`)."""
    return MilvusSettings(
        uri=record["uri"],
        token=token_for(record["uri"]),
        database=record.get("database", ""),
        consistency=record.get("consistency", STRONG),
    )
