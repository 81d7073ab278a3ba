"""Every setting, in one place: those of an index and of a search as frozen dataclasses,
and every RETRIEVER_* variable as a field of a pydantic-settings class: the engine's
(`Environment`), generated answers' (`GenerationSettings`) and the web app's
(`WebSettings`). docs/settings.md lists every one with its default.

Index settings are saved in the manifest: an index is searched with the settings it was
built with. Search settings can change per load without a rebuild.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

# Models, evaluation indexes and jieba's dictionary are kept here (RETRIEVER_CACHE moves it).
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache"
# The variables whose names the command line's help and errors say.
KERNEL_ENV = "RETRIEVER_KERNEL"
MILVUS_TOKEN_VARIABLE = "RETRIEVER_MILVUS_TOKEN"


@dataclass(frozen=True)
class ChunkSettings:
    """How text is cut into passages."""

    max_chars: int = 300
    heading_max_chars: int = 40

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError(f"max_chars must be at least 20, got {self.max_chars}")


@dataclass(frozen=True)
class LexicalSettings:
    """BM25 parameters and jieba's mode (search mode also emits the words inside compounds)."""

    k1: float = 1.5
    b: float = 0.75
    search_mode: bool = True


@dataclass(frozen=True)
class BackendSettings:
    """Which engine holds each side of an index, by the names retriever.backends registers.

    Saved in the manifest, so an index is always searched by the engines that built it.
    """

    dense: str = "faiss"
    lexical: str = "bm25s"


@dataclass(frozen=True)
class FusionWeights:
    """How a hybrid score is made from a candidate's evidence, in units of cosine similarity:
    its cosine, plus `bm25` times its BM25 score over the best candidate's, plus `lead` times
    the best BM25 match's lead over the runner-up (over the best score), plus `coverage`
    times the share of the question's content words its text holds, plus `title` times the
    share its document's title holds (retriever.fusion).

    These defaults are the rule for a model without a fit; the default model's weights are
    fitted on evaluation splits by bench.fit_fusion and shipped in retriever/data/fusion.json.
    """

    bm25: float = 0.015
    lead: float = 0.04
    coverage: float = 0.0
    title: float = 0.0


@dataclass(frozen=True)
class SearchSettings:
    """How the dense and BM25 rankings are fused, and when an answer counts as found."""

    candidates: int = 50
    # None: the weights fitted for the index's model (retriever/data/fusion.json), or
    # FusionWeights() for a model without a fit.
    fusion: FusionWeights | None = None
    # The confidence (retriever.answerability) at which the corpus counts as answering a
    # question. None: the cut fitted for the index's model.
    min_confidence: float | None = None


MAX_QUESTION_CHARS = 1000


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it takes."""


# What a pydantic error type says, after the variable and its value.
_SAYS = {
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "greater_than_equal": "expected a number of at least {ge}",
    "greater_than": "expected a number above {gt:g}",
    "less_than": "expected a number below {lt:g}",
}


def _named(error: ValidationError) -> str:
    """Every wrong value, named by its variable (a field's loc is its RETRIEVER_* name)."""
    said = []
    for problem in error.errors(include_url=False):
        context = problem.get("ctx", {})
        if "error" in context:  # a ValueError of a validator below, which says what is wrong
            what = str(context["error"])
        else:
            what = _SAYS.get(problem["type"], problem["msg"]).format(**context)
        if problem["loc"]:
            what = f"{problem['loc'][0]}={problem['input']!r}: {what}"
        said.append(what)
    return "; ".join(said)


class _Given(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping given (os.environ, or a
    test's), its RETRIEVER_* variables only; set but blank counts as unset: the default."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name: value
            for name, value in self._environ.items()
            if name.startswith("RETRIEVER_") and value.strip()
        }


class FromEnvironment(BaseSettings):
    """Settings whose fields are RETRIEVER_* variables, each named by its validation_alias.
    Made with keywords, they hold those and the defaults: no hidden read of os.environ.
    `_read` reads the mapping it is given and raises SettingsError naming each wrong value."""

    model_config = SettingsConfigDict(case_sensitive=True, frozen=True, populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, **_: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)

    @classmethod
    def _given(cls, environ: Mapping[str, str]) -> dict[str, Any]:
        return _Given(cls, environ)()

    @classmethod
    def _read(cls, environ: Mapping[str, str], **more: Any) -> Self:
        try:
            return cls.model_validate({**cls._given(environ), **more})
        except ValidationError as error:
            raise SettingsError(_named(error)) from None


Stripped = BeforeValidator(lambda value: value.strip() if isinstance(value, str) else value)


def _env(name: str, default: Any, **limits: Any) -> Any:
    """A field read from the variable `name`, with pydantic's limits (ge=1: at least 1)."""
    return Field(default, validation_alias=name, **limits)


class Environment(FromEnvironment):
    """The engine's RETRIEVER_* variables: the cache of models, jieba's dictionary and
    evaluation indexes, the other knowledge bases, the kernel and a Milvus server's token."""

    cache: Path = _env("RETRIEVER_CACHE", DEFAULT_CACHE)
    bases: Annotated[Path | None, Stripped] = _env("RETRIEVER_BASES", None)  # None: DEFAULT_ROOT
    kernel: Annotated[str | None, Stripped] = _env(KERNEL_ENV, None)  # None: the fastest here
    milvus_token: str = _env(MILVUS_TOKEN_VARIABLE, "", repr=False)

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        return cls._read(environ)


GENERATE_URL = "RETRIEVER_GENERATE_URL"
GENERATE_MODEL = "RETRIEVER_GENERATE_MODEL"


class GenerationSettings(FromEnvironment):
    """Where the model server of generated answers is (retriever/generation.py) and how long
    to wait for it. The key is never shown."""

    base_url: Annotated[str, Stripped] = _env(GENERATE_URL, ...)
    model: Annotated[str, Stripped] = _env(GENERATE_MODEL, ...)
    api_key: str = _env("RETRIEVER_GENERATE_KEY", "", repr=False)
    # For the whole answer, and for the first piece of the stream and any gap between two.
    timeout: float = _env("RETRIEVER_GENERATE_TIMEOUT", 60.0, gt=0, lt=1e6)
    first_token_timeout: float = _env("RETRIEVER_GENERATE_FIRST_TOKEN_TIMEOUT", 20.0, gt=0, lt=1e6)
    max_tokens: int = _env("RETRIEVER_GENERATE_MAX_TOKENS", 512, ge=1, lt=10**6)

    def __init__(self, *args: str, **values: Any) -> None:
        # Also as the dataclass it was: GenerationSettings(url, model, api_key=...).
        super().__init__(**dict(zip(("base_url", "model"), args, strict=False)), **values)

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GenerationSettings | None:
        """The settings RETRIEVER_GENERATE_* give, or None when neither the URL nor the
        model is set. Raises SettingsError (a ValueError) naming each wrong variable."""
        given = cls._given(environ)
        missing = [name for name in (GENERATE_URL, GENERATE_MODEL) if name not in given]
        if len(missing) == 2:
            return None
        if missing:
            raise SettingsError(f"{missing[0]} is needed too for generated answers")
        return cls._read(environ)


KB = 1024
MB = 1024 * 1024
# Served to a network, far above what a person types (on loopback without a proxy: no limit).
NETWORK_QUESTIONS_PER_MINUTE = 30
# A rating and a comment are two entries; this bounds how fast one client grows the log.
FEEDBACK_PER_MINUTE = 20
# Each base holds up to the corpus quota and its index stays in memory once opened.
MAX_BASES = 100


@dataclass(frozen=True)
class Quota:
    """How much the corpus may hold: documents, and their total size (the trash apart)."""

    max_documents: int = 1000
    max_bytes: int = 1024 * MB


DEFAULT_QUOTA = Quota()


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the app to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


class WebSettings(FromEnvironment):
    """The web app's RETRIEVER_* variables, with the engine's and generated answers'.
    Sizes are set in KB or MB; docs/SECURITY.md explains each."""

    host: str = _env("RETRIEVER_HOST", "127.0.0.1")
    port: int = _env("RETRIEVER_PORT", 7860, ge=1)
    corpus: Path = _env("RETRIEVER_CORPUS", Path("corpus"))
    index: Path = _env("RETRIEVER_INDEX", Path("index"))
    access_file: Annotated[Path | None, Stripped] = _env("RETRIEVER_ACCESS_FILE", None)
    # A request body is refused past these sizes before it is read (web/limits.py). Chat
    # requests carry the conversation's earlier answers, some kilobytes each, hence 2 MB.
    max_request_kb: int = _env("RETRIEVER_MAX_REQUEST_KB", 2048, ge=1)
    max_upload_mb: int = _env("RETRIEVER_MAX_UPLOAD_MB", 200, ge=1)
    max_held_uploads_mb: int = _env("RETRIEVER_MAX_HELD_UPLOADS_MB", 1024, ge=1)
    max_documents: int = _env("RETRIEVER_MAX_DOCUMENTS", Quota.max_documents, ge=1)
    max_corpus_mb: int = _env("RETRIEVER_MAX_CORPUS_MB", Quota.max_bytes // MB, ge=1)
    # None: 0 (no limit) on a loopback host without trusted proxies, else 30.
    question_rate: int | None = _env("RETRIEVER_QUESTIONS_PER_MINUTE", None, ge=0)
    # Addresses or networks (comma-separated) of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto headers are believed; empty: none, the peer address is the client.
    trusted_proxies: Annotated[str, Stripped] = _env("RETRIEVER_TRUSTED_PROXIES", "")
    # The 👍/👎 log: its folder (None: "feedback" beside the index), entries a client may
    # add a minute, and the log's size past which feedback is refused.
    feedback: Annotated[Path | None, Stripped] = _env("RETRIEVER_FEEDBACK", None)
    feedback_per_minute: int = _env("RETRIEVER_FEEDBACK_PER_MINUTE", FEEDBACK_PER_MINUTE, ge=0)
    max_feedback_mb: int = _env("RETRIEVER_MAX_FEEDBACK_MB", 100, ge=1)
    max_bases: int = _env("RETRIEVER_MAX_BASES", MAX_BASES, ge=0)
    # Environment's RETRIEVER_CACHE and RETRIEVER_BASES (None: "bases" beside the index
    # folder), and generated answers' server (None: answers are extractive only).
    cache: Path = DEFAULT_CACHE
    bases: Path | None = None
    generation: GenerationSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WebSettings:
        engine = Environment.read(environ)
        generation = GenerationSettings.from_env(environ)
        return cls._read(environ, cache=engine.cache, bases=engine.bases, generation=generation)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, proxies: str) -> str:
        for address in filter(None, (part.strip() for part in proxies.split(","))):
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or network") from None
        return proxies

    @model_validator(mode="after")
    def _own_folders(self) -> Self:
        """The feedback log and the bases live apart: a build would index them inside the
        corpus (a .jsonl is a record file), a rebuild replace them inside the index."""
        for variable, folder in (
            ("RETRIEVER_FEEDBACK", self.feedback_folder),
            ("RETRIEVER_BASES", self.bases_folder),
        ):
            where = folder.resolve()
            for name, other in (("RETRIEVER_CORPUS", self.corpus), ("RETRIEVER_INDEX", self.index)):
                if where.is_relative_to(other.resolve()):
                    raise ValueError(
                        f"{variable}={str(folder)!r} is inside {name}={str(other)!r}: choose "
                        f"a folder of its own, such as {folder.name or 'one'}/ beside the index"
                    )
            if where.exists() and not where.is_dir():
                raise ValueError(f"{variable}={str(folder)!r} exists and is not a folder")
        return self

    @property
    def questions_per_minute(self) -> int:
        if self.question_rate is not None:
            return self.question_rate
        alone = is_loopback(self.host) and not self.trusted_proxies  # one person, here
        return 0 if alone else NETWORK_QUESTIONS_PER_MINUTE

    max_request_bytes = property(lambda self: self.max_request_kb * KB)
    max_upload_bytes = property(lambda self: self.max_upload_mb * MB)
    max_held_upload_bytes = property(lambda self: self.max_held_uploads_mb * MB)
    max_feedback_bytes = property(lambda self: self.max_feedback_mb * MB)

    @property
    def quota(self) -> Quota:
        return Quota(max_documents=self.max_documents, max_bytes=self.max_corpus_mb * MB)

    @property
    def feedback_folder(self) -> Path:
        return self.feedback or self.index.parent / "feedback"

    @property
    def bases_folder(self) -> Path:
        return self.bases or self.index.parent / "bases"
