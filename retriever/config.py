"""Every setting, in one place: those of an index and of a search as frozen dataclasses,
and every RETRIEVER_* variable as a field of a pydantic-settings class: the engine's
(`Environment`), generated answers' (`GenerationSettings`) and the web app's
(`WebSettings`, which web/settings.py names `Settings`). docs/settings.md lists every one
with its default.

Index settings are saved in the manifest: an index is searched with the settings it was
built with. Search settings can change per load without a rebuild.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ValidationError, field_validator
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
    """pydantic-settings' environment source over the mapping given: os.environ, or a test's.
    Set but blank counts as unset: the default."""

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


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


Stripped = BeforeValidator(_strip)


class Environment(FromEnvironment):
    """The engine's RETRIEVER_* variables.

    | variable | default | what |
    | --- | --- | --- |
    | RETRIEVER_CACHE | .cache | models, jieba's dictionary, evaluation indexes |
    | RETRIEVER_BASES | bases | the knowledge bases besides the default (retriever.bases) |
    | RETRIEVER_KERNEL | measured | what runs the default model (retriever.kernels) |
    | RETRIEVER_MILVUS_TOKEN | (none) | a Milvus server's token, for `build`; never saved |
    """

    cache: Path = Field(DEFAULT_CACHE, validation_alias="RETRIEVER_CACHE")
    # None: retriever.bases.DEFAULT_ROOT (the web app: "bases" beside its index)
    bases: Annotated[Path | None, Stripped] = Field(None, validation_alias="RETRIEVER_BASES")
    # None: the kernel measured fastest on this machine
    kernel: Annotated[str | None, Stripped] = Field(None, validation_alias=KERNEL_ENV)
    milvus_token: str = Field("", repr=False, validation_alias=MILVUS_TOKEN_VARIABLE)

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        return cls._read(environ)


GENERATE_URL = "RETRIEVER_GENERATE_URL"
GENERATE_MODEL = "RETRIEVER_GENERATE_MODEL"


class GenerationSettings(FromEnvironment):
    """Where the model server of generated answers is (retriever/generation.py) and how long
    to wait for it. The key is never shown."""

    base_url: Annotated[str, Stripped] = Field(validation_alias=GENERATE_URL)
    model: Annotated[str, Stripped] = Field(validation_alias=GENERATE_MODEL)
    api_key: str = Field("", repr=False, validation_alias="RETRIEVER_GENERATE_KEY")
    # For the whole answer, and for the first piece of the stream and any gap between two.
    timeout: float = Field(60.0, gt=0, lt=1e6, validation_alias="RETRIEVER_GENERATE_TIMEOUT")
    first_token_timeout: float = Field(
        20.0, gt=0, lt=1e6, validation_alias="RETRIEVER_GENERATE_FIRST_TOKEN_TIMEOUT"
    )
    max_tokens: int = Field(512, ge=1, lt=10**6, validation_alias="RETRIEVER_GENERATE_MAX_TOKENS")

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
        """The settings RETRIEVER_GENERATE_* give, or None when no server is configured
        (RETRIEVER_GENERATE_URL and RETRIEVER_GENERATE_MODEL both unset). Raises
        SettingsError (a ValueError) naming the variable that is wrong."""
        given = cls._given(environ)
        missing = [name for name in (GENERATE_URL, GENERATE_MODEL) if name not in given]
        if len(missing) == 2:
            return None
        if missing:
            raise SettingsError(f"{missing[0]} is needed too for generated answers")
        return cls._read(environ)
