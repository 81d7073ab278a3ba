"""Every setting of the web app, read from the environment in one place.

| variable | default | what |
| --- | --- | --- |
| RETRIEVER_HOST | 127.0.0.1 | address to listen on; others need users or tokens |
| RETRIEVER_PORT | 7860 | port |
| RETRIEVER_CORPUS | corpus | the documents |
| RETRIEVER_INDEX | index | the index built from them |
| RETRIEVER_BASES | bases, beside the index | the other knowledge bases (retriever.bases) |
| RETRIEVER_MAX_BASES | 100 | knowledge bases besides the default |
| RETRIEVER_CACHE | .cache | the model cache |
| RETRIEVER_ACCESS_FILE | (none) | TOML file of users and API tokens (web/access.py) |
| RETRIEVER_MAX_REQUEST_KB | 2048 | body of any request but an upload |
| RETRIEVER_MAX_UPLOAD_MB | 200 | an upload request; also uploads not yet added, per user |
| RETRIEVER_MAX_HELD_UPLOADS_MB | 1024 | uploads not yet added, of all users together |
| RETRIEVER_MAX_DOCUMENTS | 1000 | documents in the corpus (of each knowledge base) |
| RETRIEVER_MAX_CORPUS_MB | 1024 | total size of the corpus's documents (of each base) |
| RETRIEVER_QUESTIONS_PER_MINUTE | 30; 0 on loopback without a proxy | per client; 0: no limit |
| RETRIEVER_TRUSTED_PROXIES | (none) | proxies whose X-Forwarded-For names the client |
| RETRIEVER_FEEDBACK | feedback, beside the index | folder of the 👍/👎 log (web/feedback.py) |
| RETRIEVER_FEEDBACK_PER_MINUTE | 20 | 👍/👎 per client; 0: no limit |
| RETRIEVER_MAX_FEEDBACK_MB | 100 | size of the 👍/👎 log; past it, feedback is refused |
| RETRIEVER_GENERATE_URL, … | (none) | model server of generated answers (docs/generation.md) |

docs/SECURITY.md explains each limit and how to serve behind a reverse proxy.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from retriever.config import Environment
from retriever.generation import GenerationSettings
from retriever.search import DEFAULT_CACHE

KB = 1024
MB = 1024 * 1024
# On a loopback address without a proxy, one person at this machine asks: no limit. Served
# to a network, 30 questions a minute is far above what a person types.
NETWORK_QUESTIONS_PER_MINUTE = 30
# A person rates an answer and may add a comment: two entries. Twenty a minute is far above
# that, and bounds how fast one client can grow the log.
FEEDBACK_PER_MINUTE = 20
# Each base holds up to the corpus quota, and its index stays in memory once opened, so the
# number of bases is bounded too.
MAX_BASES = 100


@dataclass(frozen=True)
class Quota:
    """How much the corpus may hold: documents, and their total size (the trash apart)."""

    max_documents: int = 1000
    max_bytes: int = 1024 * MB


DEFAULT_QUOTA = Quota()


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it takes."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    corpus: Path = Path("corpus")
    index: Path = Path("index")
    cache: Path = Path(DEFAULT_CACHE)
    access_file: Path | None = None
    # A request body is refused past these sizes before it is read (web/limits.py). Chat
    # requests carry the conversation's earlier answers, some kilobytes each, hence 2 MB.
    max_request_bytes: int = 2048 * KB
    max_upload_bytes: int = 200 * MB
    max_held_upload_bytes: int = 1024 * MB
    quota: Quota = DEFAULT_QUOTA
    questions_per_minute: int = 0
    # Addresses or networks (comma-separated) of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto headers are believed; empty: none, the peer address is the client.
    trusted_proxies: str = ""
    # The 👍/👎 log: its folder (None: "feedback" beside the index folder), the entries a
    # client may add a minute, and the log's size past which feedback is refused.
    feedback: Path | None = None
    feedback_per_minute: int = FEEDBACK_PER_MINUTE
    max_feedback_bytes: int = 100 * MB
    # The knowledge bases besides the default one (None: "bases" beside the index folder),
    # and how many there may be.
    bases: Path | None = None
    max_bases: int = MAX_BASES
    # The model server that writes generated answers (RETRIEVER_GENERATE_*, in
    # retriever/generation.py); None: answers are extractive only.
    generation: GenerationSettings | None = None

    @property
    def feedback_folder(self) -> Path:
        return self.feedback or self.index.parent / "feedback"

    @property
    def bases_folder(self) -> Path:
        return self.bases or self.index.parent / "bases"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        host = environ.get("RETRIEVER_HOST", cls.host)
        access = environ.get("RETRIEVER_ACCESS_FILE", "").strip()
        trusted = environ.get("RETRIEVER_TRUSTED_PROXIES", "").strip()
        alone = is_loopback(host) and not trusted  # one person, at this machine
        default_rate = 0 if alone else NETWORK_QUESTIONS_PER_MINUTE
        for address in filter(None, (part.strip() for part in trusted.split(","))):
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise SettingsError(
                    f"RETRIEVER_TRUSTED_PROXIES: {address!r} is not an IP address or network"
                ) from None
        index = Path(environ.get("RETRIEVER_INDEX", str(cls.index)))
        corpus = Path(environ.get("RETRIEVER_CORPUS", str(cls.corpus)))
        feedback = environ.get("RETRIEVER_FEEDBACK", "").strip()
        feedback_folder = Path(feedback) if feedback else index.parent / "feedback"
        _check_own_folder("RETRIEVER_FEEDBACK", feedback_folder, corpus=corpus, index=index)
        engine = Environment.read(environ)  # the variables the engine reads too
        bases_folder = engine.bases or index.parent / "bases"
        _check_own_folder("RETRIEVER_BASES", bases_folder, corpus=corpus, index=index)
        try:
            generation = GenerationSettings.from_env(environ)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        return cls(
            host=host,
            port=_number(environ, "RETRIEVER_PORT", cls.port, minimum=1),
            corpus=corpus,
            index=index,
            cache=engine.cache,
            access_file=Path(access) if access else None,
            max_request_bytes=_size(environ, "RETRIEVER_MAX_REQUEST_KB", cls.max_request_bytes, KB),
            max_upload_bytes=_size(environ, "RETRIEVER_MAX_UPLOAD_MB", cls.max_upload_bytes, MB),
            max_held_upload_bytes=_size(
                environ, "RETRIEVER_MAX_HELD_UPLOADS_MB", cls.max_held_upload_bytes, MB
            ),
            quota=Quota(
                max_documents=_number(environ, "RETRIEVER_MAX_DOCUMENTS", Quota.max_documents),
                max_bytes=_size(environ, "RETRIEVER_MAX_CORPUS_MB", Quota.max_bytes, MB),
            ),
            questions_per_minute=_number(
                environ, "RETRIEVER_QUESTIONS_PER_MINUTE", default_rate, minimum=0
            ),
            trusted_proxies=trusted,
            feedback=feedback_folder,
            feedback_per_minute=_number(
                environ, "RETRIEVER_FEEDBACK_PER_MINUTE", FEEDBACK_PER_MINUTE, minimum=0
            ),
            max_feedback_bytes=_size(
                environ, "RETRIEVER_MAX_FEEDBACK_MB", cls.max_feedback_bytes, MB
            ),
            bases=bases_folder,
            max_bases=_number(environ, "RETRIEVER_MAX_BASES", MAX_BASES, minimum=0),
            generation=generation,
        )


def _check_own_folder(variable: str, folder: Path, *, corpus: Path, index: Path) -> None:
    """The feedback log and the knowledge bases must live apart: inside the corpus a build
    would index them (a .jsonl is a record file), inside the index folder a rebuild would
    replace them."""
    where = folder.resolve()
    for name, other in (("RETRIEVER_CORPUS", corpus), ("RETRIEVER_INDEX", index)):
        if where.is_relative_to(other.resolve()):
            raise SettingsError(
                f"{variable}={str(folder)!r} is inside {name}={str(other)!r}: choose a "
                f"folder of its own, such as {folder.name or 'one'}/ beside the index"
            )
    if where.exists() and not where.is_dir():
        raise SettingsError(f"{variable}={str(folder)!r} exists and is not a folder")


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the app to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def _size(environ: Mapping[str, str], name: str, default: int, unit: int) -> int:
    """A size in bytes, set in `unit`s (KB or MB)."""
    return _number(environ, name, default // unit) * unit


def _number(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: expected a whole number") from None
    if number < minimum:
        raise SettingsError(f"{name}={value!r}: expected a number of at least {minimum}")
    return number
