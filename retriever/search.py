"""The Retriever: build an index from a corpus folder, load it, search it, answer from it.

Both rankings are built once at build time and loaded from the index folder; a question
costs one query embedding, one FAISS search and one BM25 scoring pass, never a rebuild.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retriever.answer import Answer, compose_answer
from retriever.chunking import chunk_text
from retriever.config import (
    MAX_QUESTION_CHARS,
    ChunkSettings,
    LexicalSettings,
    SearchSettings,
)
from retriever.corpus import (
    SUPPORTED_SUFFIXES,
    Corpus,
    Skipped,
    file_hashes,
    normalize,
    read_corpus,
)
from retriever.embedding import Embedder, thread_limit
from retriever.lexical import LexicalIndex
from retriever.store import (
    BM25_FOLDER,
    REBUILD_HINT,
    VECTORS,
    IndexLoadError,
    Manifest,
    StoredChunk,
    check_index_target,
    read_chunks,
    read_manifest,
    write_index,
)

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache"
# From this many chunks on, vectors go into an HNSW graph (M=32) instead of a flat scan.
# Measured (docs/BENCHMARKS.md, "How cost grows"; 2 cores, one thread per question): exact
# search takes 7.9 ms median at 100k vectors and 76 ms at 1M, growing linearly; HNSW answers
# in 0.2-0.5 ms at any size, with recall@10 against exact search of 1.000 at 100k
# (efSearch 128), and 0.992 / 0.995 at 1M (efSearch 128 / 256).
HNSW_THRESHOLD = 100_000
HNSW_EF_SEARCH = 128
HNSW_EF_SEARCH_LARGE = 256  # above HNSW_LARGE chunks, to keep recall@10 at 0.995
HNSW_LARGE = 500_000


class QuestionError(ValueError):
    """A question that cannot be searched (empty, too long, not text); the message says why."""


@dataclass(frozen=True)
class Hit:
    """One retrieved passage, best first. `text` is source_text[start:end] of file `source`."""

    rank: int
    score: float
    text: str
    source: str
    doc_id: str
    title: str
    heading: str
    start: int
    end: int
    dense_score: float | None
    bm25_score: float | None
    chunk_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds, for display: documents, chunks, model, when built."""

    folder: str
    documents: int
    files: int
    chunks: int
    model: str
    created_at: str
    skipped: list[Skipped]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BuildReport:
    index: IndexInfo
    embedded: int  # passages that went through the model
    reused: int  # passages whose vectors were taken from the previous index


def dense_text(chunk: StoredChunk) -> str:
    """What is embedded for a chunk: its document title and heading give it context."""
    return "\n".join(part for part in (chunk.title, chunk.heading, chunk.text) if part)


def lexical_text(chunk: StoredChunk) -> str:
    """What BM25 indexes for a chunk: its heading and text, without the document title.

    A title is shared by every paragraph of a document, so in BM25 it makes them all match
    its words equally and buries the paragraph that answers: with the title in BM25, hybrid
    Hit@10 on dureader_demo was 0.796, without it 0.852 (cmrc2018_dev: 0.998 either way).
    The dense side keeps the title, where it adds context without that effect.
    """
    return "\n".join(part for part in (chunk.heading, chunk.text) if part)


def _duplicate_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", normalize(text))


def _chunks_of(corpus: Corpus, settings: ChunkSettings) -> list[StoredChunk]:
    """All chunks of the corpus; a passage identical to an earlier one is kept only once."""
    chunks = []
    seen: set[str] = set()
    for document in corpus.documents:
        for chunk in chunk_text(document.text, settings):
            key = _duplicate_key(chunk.heading + chunk.text)
            if key in seen:
                continue
            seen.add(key)
            chunks.append(
                StoredChunk(
                    doc_id=document.doc_id,
                    source=document.source,
                    title=document.title,
                    heading=chunk.heading,
                    start=chunk.start,
                    end=chunk.end,
                    text=chunk.text,
                )
            )
    return chunks


class Retriever:
    """Hybrid (FAISS + BM25) retrieval over an index folder, with cited answers."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        chunks: list[StoredChunk],
        vectors,
        lexical: LexicalIndex,
        embedder: Embedder,
        settings: SearchSettings = SearchSettings(),
    ) -> None:
        self.folder = folder
        self.manifest = manifest  # typed fields, and a mapping over the JSON for old callers
        self.chunks = chunks
        self.vectors = vectors
        self.lexical = lexical
        self.embedder = embedder
        self.settings = settings

    # ----------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        corpus_dir: Path | str,
        index_dir: Path | str,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        chunking: ChunkSettings = ChunkSettings(),
        lexical: LexicalSettings = LexicalSettings(),
        progress: bool = False,
        cache_dir: Path = DEFAULT_CACHE,
    ) -> BuildReport:
        """Read, chunk, embed and index the corpus, and swap the new index into `index_dir`.

        Vectors of passages unchanged since the previous index (same text, same model) are
        reused, so adding one file to a large corpus embeds only that file. Raises
        IndexFolderError, before reading anything, when `index_dir` is not a folder a build
        may replace (see retriever.store).
        """
        import faiss

        corpus_dir, index_dir = Path(corpus_dir), Path(index_dir)
        check_index_target(index_dir, corpus_dir)
        corpus_hashes = file_hashes(corpus_dir)
        corpus = read_corpus(corpus_dir)
        if not corpus.documents:
            problems = "; ".join(s.reason for s in corpus.skipped) or (
                "no files of a supported kind (" + " ".join(SUPPORTED_SUFFIXES) + ")"
            )
            raise ValueError(f"nothing to index in {corpus_dir}: {problems}")
        embedder = embedder or _load_embedder(model, cache_dir)
        chunks = _chunks_of(corpus, chunking)
        texts = [dense_text(chunk) for chunk in chunks]
        logger.info("%d documents, %d chunks", len(corpus.documents), len(chunks))

        previous = _previous_vectors(index_dir, embedder.name)
        missing = [i for i, text in enumerate(texts) if text not in previous]
        vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if text in previous:
                vectors[i] = previous[text]
        if missing:
            vectors[missing] = embedder.encode_passages(
                [normalize(texts[i]) for i in missing], progress=progress
            )
        lexical_index = LexicalIndex.build([lexical_text(chunk) for chunk in chunks], lexical)

        def write_vectors(path: Path) -> None:
            faiss.write_index(_faiss_index(vectors), str(path))

        manifest = {
            "model": {"name": embedder.name, "dim": embedder.dim},
            "settings": {"chunking": asdict(chunking), "lexical": asdict(lexical)},
            "document_count": len(corpus.documents),
            "sources": [asdict(source) for source in corpus.files],
            "skipped": [asdict(skipped) for skipped in corpus.skipped],
            "corpus_hashes": corpus_hashes,
        }
        write_index(
            index_dir,
            manifest=manifest,
            chunks=chunks,
            write_vectors=write_vectors,
            write_bm25=lexical_index.save,
        )
        return BuildReport(
            index=_info(index_dir, read_manifest(index_dir)),
            embedded=len(missing),
            reused=len(texts) - len(missing),
        )

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        index_dir: Path | str = "index",
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: SearchSettings = SearchSettings(),
        cache_dir: Path = DEFAULT_CACHE,
    ) -> Retriever:
        """Open a built index. Raises IndexLoadError, saying what to do, if it cannot be used."""
        import faiss

        folder = Path(index_dir)
        manifest = read_manifest(folder)
        built_with = manifest.model_name
        asked_for = embedder.name if embedder is not None else model
        if asked_for is not None and asked_for != built_with:
            raise IndexLoadError(
                f"index {folder} was built with model {built_with!r}, asked to search with "
                f"{asked_for!r}: rebuild it with `python -m retriever build --model {asked_for}` "
                "or search with the model it was built with"
            )
        chunks = read_chunks(folder)
        try:
            vectors = faiss.read_index(str(folder / VECTORS))
            lexical = LexicalIndex.load(folder / BM25_FOLDER, manifest.lexical)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as error:
            reason = " ".join(str(error).split())  # FAISS's messages can span lines
            raise IndexLoadError(f"{folder} cannot be read ({reason}): {REBUILD_HINT}") from error
        if not (len(chunks) == vectors.ntotal == lexical.size == manifest.chunk_count):
            raise IndexLoadError(
                f"{folder} is inconsistent: its manifest counts {manifest.chunk_count} chunks, "
                f"it holds {len(chunks)} chunks, {vectors.ntotal} vectors and {lexical.size} "
                f"BM25 rows: {REBUILD_HINT}"
            )
        if vectors.d != manifest.model_dim:
            raise IndexLoadError(
                f"{folder} is inconsistent: its manifest says the model gives "
                f"{manifest.model_dim}-dim vectors, {VECTORS} holds {vectors.d}-dim ones: "
                f"{REBUILD_HINT}"
            )
        embedder = embedder or _load_embedder(built_with, cache_dir)
        if embedder.dim != manifest.model_dim:
            raise IndexLoadError(
                f"model {embedder.name!r} gives {embedder.dim}-dim vectors, the index {folder} "
                f"holds {manifest.model_dim}-dim ones: {REBUILD_HINT}"
            )
        settings = _with_thresholds(settings, embedder.name)
        return cls(folder, manifest, chunks, vectors, lexical, embedder, settings)

    @property
    def info(self) -> IndexInfo:
        return _info(self.folder, self.manifest)

    def with_settings(self, **changes: Any) -> Retriever:
        """The same loaded index and model with other search settings, without reloading."""
        return Retriever(
            self.folder,
            self.manifest,
            self.chunks,
            self.vectors,
            self.lexical,
            self.embedder,
            replace(self.settings, **changes),
        )

    # ---------------------------------------------------------------- searching

    def search(self, question: str, k: int = 5, *, mode: Mode = "hybrid") -> list[Hit]:
        """The k passages that best match the question, best first."""
        return self.search_batch([question], k, mode=mode)[0]

    def search_batch(
        self, questions: list[str], k: int = 5, *, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        """search() for many questions, with one embedding call for all of them."""
        _check_k(k)
        normalized = [normalize(check_question(question)) for question in questions]
        vectors = self.embedder.encode_queries(normalized) if mode != "bm25" else None
        return [
            self._search(question, vectors[i] if vectors is not None else None, k, mode)
            for i, question in enumerate(normalized)
        ]

    def _search(self, normalized: str, vector: np.ndarray | None, k: int, mode: Mode) -> list[Hit]:
        depth = max(self.settings.candidates, 2 * k)
        dense, lexical = self.rankings(normalized, vector, depth=depth)
        return self._hits(fuse(dense, lexical, self.settings, mode), dense, lexical, k)

    def rankings(
        self, question: str, query_vector: np.ndarray | None, *, depth: int
    ) -> tuple[dict[int, float], dict[int, float]]:
        """Candidates and both their scores: ({chunk id: cosine}, {chunk id: BM25 score}).

        The candidates are the top `depth` chunks of each ranking; each gets its exact score
        on the other side too, so fusion never guesses a missing score. `question` is
        already normalised; without a query vector the dense side is empty.
        """
        depth = min(depth, len(self.chunks))
        bm25 = self.lexical.scores(question)
        top = np.argpartition(-bm25, depth - 1)[:depth] if depth < len(bm25) else range(len(bm25))
        candidates = {int(i) for i in top if bm25[i] > 0}
        dense: dict[int, float] = {}
        if query_vector is not None:
            import faiss

            query = query_vector.reshape(1, -1).astype(np.float32)
            # Splitting one query across cores cost 16 ms against 0.6 ms on one thread when
            # the cores were busy (11k chunks).
            with thread_limit(faiss.omp_get_max_threads, faiss.omp_set_num_threads, 1):
                scores, ids = self.vectors.search(query, depth)
            dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
            others = sorted(candidates - dense.keys())
            if others:
                vectors = self.vectors.reconstruct_batch(np.array(others, dtype=np.int64))
                dense.update(zip(others, (vectors @ query[0]).tolist(), strict=True))
            candidates |= dense.keys()
        return dense, {i: float(bm25[i]) for i in candidates}

    def _hits(
        self,
        ranked: list[tuple[int, float]],
        dense: dict[int, float],
        lexical: dict[int, float],
        k: int,
    ) -> list[Hit]:
        """Turn fused ids into Hits, dropping passages that repeat one already listed."""
        hits: list[Hit] = []
        kept: list[str] = []
        for chunk_id, score in ranked:
            chunk = self.chunks[chunk_id]
            key = _duplicate_key(chunk.text)
            if any(_repeats(key, other) for other in kept):
                continue
            kept.append(key)
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=round(score, 6),
                    text=chunk.text,
                    source=chunk.source,
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    heading=chunk.heading,
                    start=chunk.start,
                    end=chunk.end,
                    dense_score=dense.get(chunk_id),
                    bm25_score=lexical.get(chunk_id),
                    chunk_id=chunk_id,
                )
            )
            if len(hits) == k:
                break
        return hits

    def ask(self, question: str, k: int = 5) -> Answer:
        """An extractive answer with [n] citations; see retriever.answer."""
        _check_k(k)
        normalized = normalize(check_question(question))
        vector = self.embedder.encode_queries([normalized])[0]
        hits = self._search(normalized, vector, k, "hybrid")
        return compose_answer(question, vector, hits, self)

    def is_stale(self, corpus_dir: Path | str) -> bool:
        """True when the corpus files differ from those the index was built from."""
        return _sources_changed(self.manifest, Path(corpus_dir))


def _repeats(key: str, other: str) -> bool:
    """Same passage, or one a truncated copy of the other (scraped pages repeat summaries)."""
    shorter, longer = sorted((key, other), key=len)
    return shorter == longer or (len(shorter) >= 20 and shorter in longer)


def fuse(
    dense: dict[int, float], lexical: dict[int, float], settings: SearchSettings, mode: Mode
) -> list[tuple[int, float]]:
    """The candidates best first: cosine plus a bonus for BM25 relative to the best match.

    Scores, not ranks, are fused, because the cosine tells how sure the model is: where it
    ranks all passages alike (all within 0.01), a clear keyword match decides; where it is
    sure, BM25 cannot overrule it. Reciprocal-rank fusion throws that away, and on the
    evaluation sets it fell below dense retrieval alone at equal weights (bench/tune.py).

    The best BM25 match gets a further bonus for its lead over the runner-up: a question
    whose words only one passage holds points at that passage, while words that many
    passages share (flat BM25 scores, common on web pages) add little. A larger plain weight
    could not do both: it won the first kind of question and lost the second.
    """
    if mode == "dense":
        return sorted(dense.items(), key=lambda item: -item[1])
    if mode == "bm25":
        return sorted(((i, s) for i, s in lexical.items() if s > 0), key=lambda item: -item[1])
    best, runner_up = ([*sorted(lexical.values(), reverse=True)[:2], 0.0, 0.0])[:2]
    floor = min(dense.values(), default=0.0)
    fused = {i: dense.get(i, floor) for i in dense.keys() | lexical}
    if best > 0:
        for i, bm25 in lexical.items():
            fused[i] += settings.lexical_weight * bm25 / best
            fused[i] += settings.lead_weight * max(bm25 - runner_up, 0.0) / best
    return sorted(fused.items(), key=lambda item: -item[1])


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def check_question(question: str) -> str:
    """Refuse questions that cannot be searched, with a message a user can act on."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is "
            f"{MAX_QUESTION_CHARS}: ask about one thing at a time"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate: JSON's "\ud800" escape, or bytes that are not UTF-8 on a command
        # line (Python keeps them as surrogates). The text libraries downstream fail on it.
        raise QuestionError(
            f"the question is not valid Unicode text (character {error.start + 1} is a lone "
            "surrogate, such as bytes that are not UTF-8 become): send it as UTF-8 text"
        ) from None
    return question.strip()


def _faiss_index(vectors: np.ndarray):
    import faiss

    dim = vectors.shape[1]
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        large = len(vectors) > HNSW_LARGE
        index.hnsw.efSearch = HNSW_EF_SEARCH_LARGE if large else HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


def _previous_vectors(index_dir: Path, model_name: str) -> dict[str, np.ndarray]:
    """Vectors of the index being replaced, by passage text, when built with the same model."""
    import faiss

    try:
        manifest = read_manifest(index_dir)
        if manifest.model_name != model_name:
            return {}
        chunks = read_chunks(index_dir)
        index = faiss.read_index(str(index_dir / VECTORS))
        vectors = index.reconstruct_n(0, index.ntotal)
    except (IndexLoadError, OSError, RuntimeError, KeyError, ValueError, TypeError):
        return {}
    return {dense_text(chunk): vectors[i] for i, chunk in enumerate(chunks)}


def _with_thresholds(settings: SearchSettings, model: str) -> SearchSettings:
    """Fill in the answer thresholds the caller left open."""
    from retriever.embedding import CALIBRATED_THRESHOLDS

    if settings.min_answer_score is not None:
        keyword = settings.min_keyword_answer_score
        return replace(
            settings,
            min_keyword_answer_score=settings.min_answer_score if keyword is None else keyword,
        )
    if model not in CALIBRATED_THRESHOLDS:
        logger.warning(
            "no answer threshold is calibrated for model %r, so every question counts as "
            "answered: pass SearchSettings(min_answer_score=...) (see python -m bench.tune)",
            model,
        )
    sure, with_keywords = CALIBRATED_THRESHOLDS.get(model, (0.0, 0.0))
    keyword = settings.min_keyword_answer_score
    return replace(
        settings,
        min_answer_score=sure,
        min_keyword_answer_score=with_keywords if keyword is None else keyword,
    )


def _load_embedder(model: str | None, cache_dir: Path) -> Embedder:
    from retriever.embedding import DEFAULT_EMBEDDER, load_embedder

    return load_embedder(model or DEFAULT_EMBEDDER, cache_dir=cache_dir)


def _info(folder: Path, manifest: Manifest) -> IndexInfo:
    return IndexInfo(
        folder=str(folder),
        documents=manifest.document_count,
        files=len(manifest.sources),
        chunks=manifest.chunk_count,
        model=manifest.model_name,
        created_at=manifest.created_at,
        skipped=[Skipped(skipped.path, skipped.reason) for skipped in manifest.skipped],
    )


def _sources_changed(manifest: Manifest, corpus_dir: Path) -> bool:
    # Every supported file counts, skipped ones too: fixing a broken file should rebuild.
    return file_hashes(corpus_dir) != manifest.corpus_hashes


def index_is_current(
    index_dir: Path | str,
    corpus_dir: Path | str,
    model: str | None = None,
    *,
    chunking: ChunkSettings = ChunkSettings(),
    lexical: LexicalSettings = LexicalSettings(),
) -> bool:
    """True when `index_dir` holds a sound index of exactly the files now in `corpus_dir`,
    built with `model` (if given) and these settings."""
    try:
        manifest = read_manifest(Path(index_dir))
    except IndexLoadError:
        return False
    if model is not None and manifest.model_name != model:
        return False
    if (manifest.chunking, manifest.lexical) != (chunking, lexical):
        return False
    return not _sources_changed(manifest, Path(corpus_dir))
