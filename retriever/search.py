"""The Retriever: the public face of the engine, as the CLI, the page and the HTTP API use it.

It only wires the stages together: building is retriever.building, the index on disk
retriever.index, searching retriever.searcher, answering retriever.answer. Both rankings are
built once at build time and loaded from the index folder; a question costs one query
embedding and a look-up in each backend, never a rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retriever.answer import Answer, Answerer, Answering
from retriever.answerability import AnswerCheck
from retriever.bases import DEFAULT_ROOT, folders
from retriever.building import BuildReport, build_index
from retriever.comparison import Side, find_sides
from retriever.config import (
    DEFAULT_CACHE,
    BackendSettings,
    ChunkSettings,
    LexicalSettings,
    SearchSettings,
)
from retriever.corpus import file_hashes
from retriever.embedding import DEFAULT_EMBEDDER, Embedder, load_embedder
from retriever.fusion import Mode
from retriever.index import Index, IndexInfo, open_manifest
from retriever.manifest import Manifest
from retriever.models import canonical_model_name
from retriever.query import Query, read_query
from retriever.rerank import Reranker
from retriever.schema import REBUILD_HINT, IndexLoadError
from retriever.searcher import (
    Candidates,
    Hit,
    Searcher,
)
from retriever.store import StoredChunk

logger = logging.getLogger(__name__)


# Imported from here by callers written before the stages had modules of their own.
__all__ = [
    "DEFAULT_CACHE",
    "BuildReport",
    "Hit",
    "IndexInfo",
    "Mode",
    "Retriever",
    "index_is_current",
]


@dataclass(frozen=True)
class Searched:
    """A question searched and ready to be answered: what every answerer takes."""

    query: Query  # the question as read once by the query stage (retriever.query)
    candidates: Candidates
    hits: list[Hit]
    sides: list[Side] | None  # the two sides of a comparison (retriever.comparison)

    @property
    def question(self) -> str:
        """The question searched: completed from the conversation, if it was a follow-up."""
        return self.query.text

    @property
    def shift(self) -> tuple[str, str] | None:
        """The follow-up's old and new subjects (retriever.followup)."""
        return self.query.shift

    @property
    def earlier(self) -> tuple[str, ...]:
        """The conversation's earlier questions, oldest first."""
        return self.query.earlier


class Retriever:
    """Hybrid (dense + BM25) retrieval over an index folder, with cited answers."""

    def __init__(
        self,
        folder: Path,
        index: Index,
        embedder: Embedder,
        settings: SearchSettings = SearchSettings(),
        reranker: Reranker | None = None,
        cache_dir: Path | None = DEFAULT_CACHE,
        answerer: Answering | None = None,
    ) -> None:
        """`answerer` turns a search's passages into the answer (retriever.answer); by
        default the extractive one, with the answer check for `settings.min_confidence`."""
        if answerer is None:
            answerer = Answerer(embedder, AnswerCheck(embedder, cache_dir, settings.min_confidence))
        self.folder = folder
        self.index = index
        self.embedder = embedder
        self.cache_dir = cache_dir
        # With the cut in force filled in, so that callers can read it.
        self.settings = replace(settings, min_confidence=answerer.check.min_confidence)
        self.searcher = Searcher(index, embedder, self.settings, reranker)
        self.answerer = answerer

    @classmethod
    def build(
        cls,
        corpus_dir: Path | str | None = None,
        index_dir: Path | str | None = None,
        *,
        base: str | None = None,
        bases_root: Path | str = DEFAULT_ROOT,
        embedder: Embedder | None = None,
        model: str | None = None,
        kernel: str | None = None,
        chunking: ChunkSettings = ChunkSettings(),
        lexical: LexicalSettings = LexicalSettings(),
        backends: BackendSettings | None = None,
        progress: bool = False,
        cache_dir: Path = DEFAULT_CACHE,
    ) -> BuildReport:
        """Bring the index in `index_dir` up to date with the corpus, and report what it did.

        `base` names a knowledge base in `bases_root` (retriever.bases) instead of the two
        folders: its index is built from its corpus. Neither: `corpus/` into `index/`.
        Only new and changed files are read and embedded; over an unchanged corpus nothing is
        (see retriever.building). Raises IndexFolderError, before reading anything, when
        `index_dir` is not a folder a build may replace (see retriever.staging). `backends`
        None keeps the engines the existing index uses (the defaults for a new one), so a
        rebuild from the page or `make index` never moves a Milvus index to FAISS.
        """
        corpus, index = folders(base, corpus_dir, index_dir, root=bases_root)
        return build_index(
            corpus,
            index,
            embedder=embedder
            or load_embedder(model or DEFAULT_EMBEDDER, cache_dir=cache_dir, kernel=kernel),
            chunking=chunking,
            lexical=lexical,
            backends=backends,
            progress=progress,
        )

    @classmethod
    def load(
        cls,
        index_dir: Path | str | None = None,
        *,
        base: str | None = None,
        bases_root: Path | str = DEFAULT_ROOT,
        embedder: Embedder | None = None,
        model: str | None = None,
        kernel: str | None = None,
        settings: SearchSettings = SearchSettings(),
        reranker: Reranker | None = None,
        cache_dir: Path = DEFAULT_CACHE,
        answerer: Answering | None = None,
    ) -> Retriever:
        """Open a built index: the folder `index_dir` (`index/` by default), or the index of
        knowledge base `base` in `bases_root` (retriever.bases). Raises IndexLoadError, saying
        what to do, if it cannot be used, and a BaseError for a base that does not exist.

        `reranker` and `answerer` are kept as given (an application that serves several
        indexes passes the same ones to each); `cache_dir` holds the model and the answer
        check's background vectors."""
        _, folder = folders(base, None, index_dir, root=bases_root)
        manifest = open_manifest(folder)
        built_with = canonical_model_name(manifest.model_name)
        asked_for = embedder.name if embedder is not None else model
        if asked_for is not None and canonical_model_name(asked_for) != built_with:
            raise IndexLoadError(
                f"index {folder} was built with model {built_with!r}, asked to search with "
                f"{asked_for!r}: rebuild it with `python -m retriever build --model {asked_for}` "
                "or search with the model it was built with"
            )
        index = Index.read(folder, manifest)
        embedder = embedder or load_embedder(built_with, cache_dir=cache_dir, kernel=kernel)
        if embedder.dim != manifest.model_dim:
            raise IndexLoadError(
                f"model {embedder.name!r} gives {embedder.dim}-dim vectors, the index {folder} "
                f"holds {manifest.model_dim}-dim ones: {REBUILD_HINT}"
            )
        return cls(folder, index, embedder, settings, reranker, cache_dir, answerer)

    @property
    def manifest(self) -> Manifest:
        """Typed fields, and a mapping over the JSON for callers that read it so."""
        return self.index.manifest

    @property
    def chunks(self) -> list[StoredChunk]:
        """The indexed passages, in corpus order."""
        return self.index.chunks

    @property
    def info(self) -> IndexInfo:
        return IndexInfo.of(self.folder, self.manifest)

    def with_settings(self, **changes: Any) -> Retriever:
        """The same loaded index, model, reranker and answerer with other search settings,
        without reloading (another answer-check cut needs its own extractive answerer)."""
        settings = replace(self.settings, **changes)
        same_cut = settings.min_confidence == self.settings.min_confidence
        return Retriever(
            self.folder,
            self.index,
            self.embedder,
            settings,
            self.searcher.reranker,
            self.cache_dir,
            self.answerer if same_cut else None,
        )

    def search(self, question: str | Query, k: int = 5, *, mode: Mode = "hybrid") -> list[Hit]:
        """The k passages that best match the question, best first."""
        return self.search_batch([question], k, mode=mode)[0]

    def search_batch(
        self, questions: Sequence[str | Query], k: int = 5, *, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        """search() for many questions, with one embedding call for all of them."""
        return self.searcher.search_batch(questions, k, mode)

    def ask(
        self,
        question: str,
        k: int = 5,
        *,
        earlier: Sequence[str] = (),
        answerer: Answering | None = None,
    ) -> Answer:
        """An answer with [n] citations (retriever.answer). `earlier` are the user's earlier
        questions, oldest first: a follow-up ("那行政助理呢?") is completed from them
        (retriever.query) and answered of its new subject only; `Answer.question` is the
        question as searched. `answerer` answers this question instead of the Retriever's
        own (a generating one, say: retriever.generation)."""
        return self.answer(self.searched(question, k, earlier=earlier), answerer)

    def answer(self, searched: Searched, answerer: Answering | None = None) -> Answer:
        """The answer to a question already searched (`searched`), by `answerer` or the
        Retriever's own."""
        return (answerer or self.answerer).answer(
            searched.query, searched.candidates, searched.hits, searched.sides
        )

    def searched(self, question: str, k: int = 5, *, earlier: Sequence[str] = ()) -> Searched:
        """The question read by the query stage (retriever.query: completed from `earlier` if
        it is a follow-up), and searched: what an answerer takes."""
        query = read_query(question, earlier)
        (candidates,) = self.searcher.candidates([query], k, "hybrid")
        hits = self.searcher.rank(candidates, k, "hybrid")
        return Searched(query, candidates, hits, find_sides(self.index, query))

    def is_stale(self, corpus_dir: Path | str) -> bool:
        """True when the corpus files differ from those the index was built from."""
        # Every supported file counts, skipped ones too: fixing a broken file should rebuild.
        return file_hashes(Path(corpus_dir)) != self.manifest.corpus_hashes


def index_is_current(
    index_dir: Path | str,
    corpus_dir: Path | str,
    model: str | None = None,
    *,
    chunking: ChunkSettings = ChunkSettings(),
    lexical: LexicalSettings = LexicalSettings(),
    backends: BackendSettings | None = None,
) -> bool:
    """True when `index_dir` holds a sound index of exactly the files now in `corpus_dir`,
    built with `model` (if given), these settings and these backends (if given)."""
    try:
        manifest = open_manifest(Path(index_dir))
    except IndexLoadError:
        return False
    built_with = canonical_model_name(manifest.model_name)
    if model is not None and built_with != canonical_model_name(model):
        return False
    if (manifest.chunking, manifest.lexical) != (chunking, lexical):
        return False
    if backends is not None and manifest.backends != backends:
        return False
    return file_hashes(Path(corpus_dir)) == manifest.corpus_hashes
