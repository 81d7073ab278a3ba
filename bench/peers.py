"""The systems the benchmarks compare: this project and the peers a user would set up instead.

Every system answers the same two calls, so that one loop scores and times them all:

    system.build(records)          index a list of Records (id, title, text)
    system.search(question, k)     the ids of the k best passages, best first

and `save(folder)` / `load(folder, model_path)` so that a built index is cached and a fresh
process can be timed from start to first answer.

The peers are configured as their own projects do it for Chinese, with the project's default
embedding model (the same local folder) and its E5 prefixes ("query: " / "passage: "):

* `LangChainPeer`, a Langchain-Chatchat-style stack: RecursiveCharacterTextSplitter with
  Chinese separators, a FAISS store of normalised vectors searched by inner product, BM25
  (rank_bm25) over jieba tokens, and an EnsembleRetriever of the two with Chatchat's weights.
* `TxtaiPeer`: txtai Embeddings with `hybrid=True`, `content=True`, and txtai's defaults
  for everything else (BM25 scoring with its Unicode tokenizer, convex fusion, FAISS backend).

Each peer indexes a passage as "title\\ntext", the same information the project's chunks carry.

Whole documents (the user-style set) go through each peer's own reading and splitting, as its
documentation sets them up, and are searched for passage texts rather than ids:

    Peer.read_documents(folder)    the folder's files as the Records the peer's build takes
    system.passages(question, k)   the texts of the k best passages, best first
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from retriever.evaluation import Dataset, passage_id

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO / "bench" / "datasets"
CACHE = REPO / ".cache"
BENCH_CACHE = CACHE / "bench"
SETS = ("cmrc2018_dev", "dureader_demo")
PEER_PACKAGES = (
    "langchain_community",
    "langchain_classic",
    "langchain_text_splitters",
    "docx2txt",
    "rank_bm25",
    "txtai",
    "matplotlib",
    "psutil",
)
INSTALL_HINT = "install the benchmark requirements: .venv/bin/pip install -r requirements-bench.txt"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


class PeersMissingError(RuntimeError):
    """A peer package is not installed; the message names it and the command that fixes it."""


def check_peer_packages() -> None:
    """Raise PeersMissingError naming every benchmark package that cannot be imported."""
    import importlib.util

    missing = [name for name in PEER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise PeersMissingError(f"missing {', '.join(missing)}: {INSTALL_HINT}")


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Record:
    """One passage of an evaluation corpus."""

    id: str
    title: str
    text: str

    @property
    def content(self) -> str:
        """What a peer indexes: the title gives a short passage its context, as in the project."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def read_records(corpus: Path) -> list[Record]:
    """The passages of a corpus.jsonl file, in file order."""
    records = []
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                records.append(Record(str(row["id"]), row.get("title") or "", row["text"]))
    return records


def write_records(records: list[Record], corpus: Path) -> None:
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with corpus.open("w", encoding="utf-8") as handle:
        for record in records:
            row = {"id": record.id, "title": record.title, "text": record.text}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def take_slice(
    dataset: Dataset,
    *,
    limit: int | None,
    corpus_limit: int | None,
    workdir: Path,
) -> tuple[Dataset, list[Record]]:
    """The dataset cut to at most `limit` questions and `corpus_limit` passages.

    The passages are the gold ones of the kept questions first (so that every kept question
    can be answered), then distractors in file order. The cut corpus is written under
    `workdir` and gets its own name, so its indexes never replace the full set's in a cache.
    """
    records = read_records(dataset.corpus)
    question_ids = list(dataset.questions)[:limit] if limit else list(dataset.questions)
    if not corpus_limit or corpus_limit >= len(records):
        kept = {qid: dataset.questions[qid] for qid in question_ids}
        gold = {qid: dataset.gold[qid] for qid in kept}
        return Dataset(dataset.name, dataset.corpus, kept, gold), records
    by_id = {record.id: record for record in records}
    chosen: dict[str, None] = {}
    questions: list[str] = []
    for qid in question_ids:
        gold = [pid for pid in sorted(dataset.gold[qid]) if pid in by_id]
        if not gold or len(chosen) + len(gold) > corpus_limit:
            continue
        chosen.update(dict.fromkeys(gold))
        questions.append(qid)
    for record in records:
        if len(chosen) >= corpus_limit:
            break
        chosen.setdefault(record.id)
    sliced = [record for record in records if record.id in chosen]
    name = f"{dataset.name}-q{len(questions)}-c{len(sliced)}"
    corpus = workdir / name / "corpus.jsonl"
    write_records(sliced, corpus)
    return (
        Dataset(
            name,
            corpus,
            {qid: dataset.questions[qid] for qid in questions},
            {qid: dataset.gold[qid] & set(chosen) for qid in questions},
        ),
        sliced,
    )


def default_model_path() -> Path:
    """The local folder of the project's default model, built offline once."""
    from retriever.modelbuild.default_model import ensure_default_model

    return ensure_default_model(CACHE)


def pack_lines(lines: list[str], size: int) -> list[str]:
    """Consecutive lines joined (by newlines) into passages of at most `size` characters.

    A line longer than `size` is cut at sentence ends first, and a sentence longer than
    `size` every `size` characters, so that no passage is over the size and no text is lost.
    """
    pieces: list[str] = []
    for line in lines:
        if len(line) <= size:
            pieces.append(line)
            continue
        sentences = [
            sentence[start : start + size]
            for sentence in _SENTENCE_END.split(line)
            if sentence
            for start in range(0, len(sentence), size)
        ]
        pieces.extend(_pack(sentences, size, ""))
    return _pack([piece for piece in pieces if piece.strip()], size, "\n")


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")


def _pack(parts: list[str], size: int, joiner: str) -> list[str]:
    packed: list[str] = []
    current = ""
    for part in parts:
        if current and len(current) + len(joiner) + len(part) > size:
            packed.append(current)
            current = part
        else:
            current = f"{current}{joiner}{part}" if current else part
    if current:
        packed.append(current)
    return packed


def document_files(folder: Path) -> list[Path]:
    """The files of a documents folder, in name order (hidden files left out)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def passage_ids(ranked: list[str], k: int) -> list[str]:
    """The first k distinct passage ids of a ranking of chunks (a passage's best chunk wins)."""
    seen: dict[str, None] = {}
    for pid in ranked:
        seen.setdefault(pid)
        if len(seen) == k:
            break
    return list(seen)


# ------------------------------------------------------------------------- systems


class System(Protocol):
    """What the benchmarks need of a retrieval system."""

    name: str

    def build(self, records: list[Record]) -> None: ...

    def save(self, folder: Path) -> None: ...

    def search(self, question: str, k: int) -> list[str]: ...


class ProjectSystem:
    """This project's Retriever in hybrid mode, behind the benchmarks' interface.

    `build` writes the records as a corpus.jsonl and runs Retriever.build on it, the path a
    user takes; the index is written straight into the folder given to `save`.
    """

    name = "project"

    def __init__(self, model_path: Path, *, index_dir: Path, embedder: Any = None) -> None:
        from retriever.embedding import load_embedder

        del model_path  # the project resolves its default model itself
        self.index_dir = index_dir
        self.embedder = embedder or load_embedder(cache_dir=CACHE)
        self.retriever: Any = None
        self.chunks = 0

    def build(self, records: list[Record]) -> None:
        from retriever import Retriever

        corpus = self.index_dir.parent / f".{self.index_dir.name}.corpus" / "corpus.jsonl"
        write_records(records, corpus)
        report = Retriever.build(corpus, self.index_dir, embedder=self.embedder)
        if report.reused:  # vectors taken from an earlier index would make the timing a lie
            raise RuntimeError(f"{self.index_dir} reused {report.reused} vectors")
        self.chunks = report.index.chunks
        self.retriever = Retriever.load(self.index_dir, embedder=self.embedder)

    def save(self, folder: Path) -> None:
        if folder.resolve() != self.index_dir.resolve():
            raise ValueError(f"the project index lives in {self.index_dir}, not {folder}")

    @classmethod
    def load(cls, folder: Path, model_path: Path, *, embedder: Any = None) -> ProjectSystem:
        from retriever import Retriever

        system = cls(model_path, index_dir=folder, embedder=embedder)
        system.retriever = Retriever.load(folder, embedder=system.embedder)
        system.chunks = len(system.retriever.chunks)
        return system

    def search(self, question: str, k: int) -> list[str]:
        hits = self.retriever.search(question, k=k)
        return passage_ids([passage_id(hit.doc_id) for hit in hits], k)

    def ask(self, question: str) -> None:
        """A whole answer, as the page and `/api/ask` give it (the peers have no such step)."""
        self.retriever.ask(question)


class LangChainPeer:
    """A Langchain-Chatchat-style hybrid retriever.

    Settings and why:

    * chunks of 250 characters with 50 of overlap: Chatchat 0.2's defaults (CHUNK_SIZE,
      OVERLAP_SIZE), which come to ~300 characters with the overlap, like the project's 300;
    * a passage's title goes in front of each chunk of its text, as the project's chunks carry
      their document's title. Splitting "title\\ntext" whole cuts the title off as a chunk of
      its own whenever the text is longer than a chunk; every paragraph of one article then
      has the same title chunk, and the EnsembleRetriever, which merges documents by their
      text, adds all their votes into one, which then ranks first: LangChain's R@1 on
      drcd_test was 0.555 that way and is 0.912 with the title before each chunk. A user's
      files hold a title once, so this is an artefact of indexing an article paragraph by
      paragraph, not the peer's;
    * separators from paragraph down to comma, Chinese punctuation first, kept at the end of
      the piece they close, as Chatchat's ChineseRecursiveTextSplitter does;
    * FAISS searched by inner product over normalised vectors, as Chatchat's FAISS pool creates
      it (Chatchat also passes normalize_L2, which LangChain ignores for inner product with a
      warning; the vectors are normalised by the model already);
    * BM25Retriever (rank_bm25's BM25Okapi) over `jieba.lcut_for_search` tokens: the tokeniser
      Chatchat's EnsembleRetrieverService passes (search mode also yields the words inside
      compounds, so it is the stronger of jieba's modes for retrieval);
    * EnsembleRetriever weights [0.5, 0.5] (BM25, FAISS): Chatchat's, with LangChain's
      weighted reciprocal-rank fusion (c=60);
    * each side returns 50 chunks: the project's own candidate depth (SearchSettings), so both
      fuse equally deep lists. Chatchat also applies a score threshold to the FAISS side; it
      only removes candidates, so it is left off to give the peer its best recall.
    * HuggingFaceBgeEmbeddings is langchain-community's sentence-transformers wrapper that
      prefixes queries and documents separately (plain HuggingFaceEmbeddings encodes both the
      same way, so it cannot apply E5's two prefixes); Chatchat uses it for BGE models.
    """

    name = "langchain"
    CHUNK_SIZE: ClassVar[int] = 250
    CHUNK_OVERLAP: ClassVar[int] = 50
    SEPARATORS: ClassVar[list[str]] = ["\n\n", "\n", "。", "！", "？", "；", "，", ""]
    WEIGHTS: ClassVar[list[float]] = [0.5, 0.5]
    CANDIDATES: ClassVar[int] = 50

    def __init__(self, model_path: Path) -> None:
        import warnings

        from langchain_community.embeddings import HuggingFaceBgeEmbeddings

        with warnings.catch_warnings():
            # It points to langchain-huggingface, which cannot be installed here (see the
            # class docstring); the class itself works and is what Chatchat uses.
            warnings.filterwarnings("ignore", message=".*HuggingFaceBgeEmbeddings.*deprecated")
            self.embeddings = HuggingFaceBgeEmbeddings(
                model_name=str(model_path),
                model_kwargs={"device": "cpu"},
                encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
                query_instruction=QUERY_PREFIX,
                embed_instruction=PASSAGE_PREFIX,
            )
        self.store: Any = None
        self.ensemble: Any = None
        self.chunks = 0

    @staticmethod
    def read_documents(folder: Path) -> list[Record]:
        """The folder's files as LangChain's document loaders read them, one Record a file
        (`build` splits them).

        Chatchat reads .txt, .md and .html with unstructured's loaders, which are not
        installed here (unstructured is large and nothing else needs it). The LangChain
        loaders that need only what is installed stand in and give the same plain text:
        TextLoader for .txt and .md (the Markdown kept as written), BSHTMLLoader for .html
        with its elements one to a paragraph, as unstructured joins its elements with a
        blank line (BSHTMLLoader alone leaves runs of blank lines from the markup's layout).
        Word and PDF files go through LangChain's usual loaders for them: Docx2txtLoader
        (docx2txt: paragraphs and table cells, each cell on lines of its own) and PyPDFLoader
        (pypdf, one document a page, joined here).
        """
        from langchain_community.document_loaders import (
            BSHTMLLoader,
            Docx2txtLoader,
            PyPDFLoader,
            TextLoader,
        )

        records = []
        for path in document_files(folder):
            suffix = path.suffix.lower()
            if suffix in (".txt", ".md"):
                loader: Any = TextLoader(str(path), encoding="utf-8", autodetect_encoding=True)
            elif suffix in (".html", ".htm"):
                loader = BSHTMLLoader(str(path), open_encoding="utf-8", get_text_separator="\n")
            elif suffix == ".docx":
                loader = Docx2txtLoader(str(path))
            elif suffix == ".pdf":
                loader = PyPDFLoader(str(path))
            else:
                raise ValueError(
                    f"{path}: the LangChain peer reads .txt, .md, .html, .docx and .pdf only"
                )
            text = "\n".join(document.page_content for document in loader.load())
            if suffix in (".html", ".htm"):
                text = "\n\n".join(line.strip() for line in text.splitlines() if line.strip())
            records.append(Record(path.name, "", text))
        return records

    @classmethod
    def index_settings(cls) -> dict[str, Any]:
        """What an index depends on beyond its corpus; a cached index built otherwise is
        rebuilt (ensure_built)."""
        return {
            "chunk_size": cls.CHUNK_SIZE,
            "chunk_overlap": cls.CHUNK_OVERLAP,
            "separators": cls.SEPARATORS,
            "title": "before each chunk",
        }

    def split(self, records: list[Record]) -> list[Any]:
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            separators=self.SEPARATORS,
            chunk_size=self.CHUNK_SIZE,
            chunk_overlap=self.CHUNK_OVERLAP,
            keep_separator="end",
        )
        return [
            Document(
                page_content=f"{record.title}\n{chunk}" if record.title else chunk,
                metadata={"pid": record.id},
            )
            for record in records
            for chunk in splitter.split_text(record.text)
        ]

    def build(self, records: list[Record]) -> None:
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        documents = self.split(records)
        self.store = FAISS.from_documents(
            documents,
            self.embeddings,
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        self._assemble()

    def _assemble(self) -> None:
        """BM25 over the store's documents and the ensemble; LangChain does not persist BM25."""
        import jieba
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever

        jieba.setLogLevel(logging.WARNING)
        documents = list(self.store.docstore._dict.values())
        self.chunks = len(documents)
        bm25 = BM25Retriever.from_documents(documents, preprocess_func=jieba.lcut_for_search)
        bm25.k = self.CANDIDATES
        dense = self.store.as_retriever(search_kwargs={"k": self.CANDIDATES})
        self.ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=self.WEIGHTS)

    def save(self, folder: Path) -> None:
        # LangChain's own format (index.faiss + a pickled docstore), as a user would save it.
        self.store.save_local(str(folder))

    @classmethod
    def load(cls, folder: Path, model_path: Path) -> LangChainPeer:
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        peer = cls(model_path)
        peer.store = FAISS.load_local(
            str(folder),
            peer.embeddings,
            allow_dangerous_deserialization=True,  # our own cache, written by save()
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        peer._assemble()
        return peer

    def search(self, question: str, k: int) -> list[str]:
        documents = self.ensemble.invoke(question)
        return passage_ids([document.metadata["pid"] for document in documents], k)

    def passages(self, question: str, k: int) -> list[str]:
        return [document.page_content for document in self.ensemble.invoke(question)[:k]]


class TxtaiPeer:
    """txtai Embeddings with hybrid search, as txtai's documentation sets it up.

    `hybrid=True` makes txtai add a BM25 index (`{"method": "bm25", "terms": True,
    "normalize": True}`) beside the dense one and fuse the two by a convex combination of
    normalised scores, weight 0.5 each; its default tokenizer segments text by Unicode word
    boundaries (UAX #29), which cuts Chinese into single characters. Passages are indexed
    whole: txtai does not chunk unless a pipeline is put in front of it, and nearly all of
    these passages fit the model's 512 tokens (longer ones are truncated). The FAISS backend
    is txtai's default (IVF above 5,000 vectors).
    """

    name = "txtai"
    PASSAGE_CHARS: ClassVar[int] = 300

    def __init__(self, model_path: Path, embeddings: Any = None) -> None:
        from txtai import Embeddings

        self.model_path = model_path
        # Embeddings(config) loads the model at once; a loaded index brings its own instance.
        self.embeddings = embeddings or Embeddings(self.config(model_path))
        self.chunks = 0

    @classmethod
    def index_settings(cls) -> dict[str, Any]:
        """What an index depends on beyond its corpus (see LangChainPeer.index_settings)."""
        return {key: value for key, value in cls.config(Path()).items() if key != "path"}

    @staticmethod
    def config(model_path: Path) -> dict[str, Any]:
        return {
            "path": str(model_path),
            "content": True,
            "hybrid": True,
            "instructions": {"query": QUERY_PREFIX, "data": PASSAGE_PREFIX},
        }

    @classmethod
    def read_documents(cls, folder: Path) -> list[Record]:
        """The folder's files as txtai's Textractor reads them, in passages of at most
        PASSAGE_CHARS (300, the project's chunk size).

        Textractor turns each file into text (HTML through its HTML-to-Markdown step) and,
        with `lines=True`, into lines: a paragraph of a web page, a list item, a table row.
        Consecutive lines are packed into passages (`pack_lines`). txtai's other units do
        not fit: `paragraphs=True` splits at blank lines only, which leaves the Q&A pages
        whole (up to 4,000 characters, truncated by the model at 512 tokens); `sentences`
        needs NLTK's English sentence splitter; a size-based `chunker` needs Chonkie, which
        is not installed.

        Word and PDF files need one of Textractor's file backends, and none can run here:
        Tika needs Java and a server jar it downloads on first use, Docling a torch model
        stack. So Textractor segments the text the usual Python readers give, docx2txt and
        pypdf (what LangChain's Docx2txtLoader and PyPDFLoader wrap): `office_text`.
        """
        from txtai.pipeline import Textractor

        textractor = Textractor(lines=True)
        return [
            Record(f"{path.name}#{number}", "", text)
            for path in document_files(folder)
            for number, text in enumerate(
                pack_lines(textractor(_textractor_input(path)), cls.PASSAGE_CHARS)
            )
        ]

    def build(self, records: list[Record]) -> None:
        self.embeddings.index((record.id, record.content, None) for record in records)
        self.chunks = len(records)

    def save(self, folder: Path) -> None:
        self.embeddings.save(str(folder))

    @classmethod
    def load(cls, folder: Path, model_path: Path) -> TxtaiPeer:
        from txtai import Embeddings

        # The saved config holds the model path it was built with; passing the path again
        # keeps the cache valid if the repository moves.
        embeddings = Embeddings().load(str(folder), config={"path": str(model_path)})
        peer = cls(model_path, embeddings)
        peer.chunks = embeddings.count()
        return peer

    def search(self, question: str, k: int) -> list[str]:
        results = self.embeddings.search(question, k)
        return passage_ids([str(result["id"]) for result in results], k)

    def passages(self, question: str, k: int) -> list[str]:
        return [result["text"] for result in self.embeddings.search(question, k)]


def office_text(path: Path) -> str:
    """The text of a .docx (docx2txt) or .pdf (pypdf, page by page) file, as the usual Python
    loaders read it."""
    if path.suffix.lower() == ".docx":
        import docx2txt

        return docx2txt.process(str(path))
    import pypdf

    return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)


def _textractor_input(path: Path) -> str:
    """What txtai's Textractor is given for a file: its path, or for Word and PDF its text."""
    return office_text(path) if path.suffix.lower() in (".docx", ".pdf") else str(path)


PEERS: dict[str, type[LangChainPeer] | type[TxtaiPeer]] = {
    LangChainPeer.name: LangChainPeer,
    TxtaiPeer.name: TxtaiPeer,
}
SYSTEMS = (ProjectSystem.name, *PEERS)


# --------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class BuiltIndex:
    """A system's index of one corpus in the cache, and what building it cost."""

    folder: Path
    system: str
    seconds: float | None  # None when it was already cached
    chunks: int
    instance: Any = None  # the system just built, ready to search (None when cached)


def index_folder(cache: Path, system: str, dataset_name: str, corpus: Path) -> Path:
    """Where a system's index of a corpus is cached: named by the corpus's content hash, so
    a changed corpus is rebuilt rather than silently reused."""
    import hashlib

    digest = hashlib.sha256(corpus.read_bytes()).hexdigest()[:12]
    return cache / f"{system}-{dataset_name}-{digest}"


MARKER = "bench_build.json"


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_system(system: str, records: list[Record], folder: Path, model_path: Path) -> BuiltIndex:
    """Build a system's index into `folder` (replacing any), timing the build itself."""
    import time

    staging = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    if system == ProjectSystem.name:
        instance: Any = ProjectSystem(model_path, index_dir=staging / "index")
        instance.build(records)
        seconds = time.perf_counter() - started
    else:
        instance = PEERS[system](model_path)
        instance.build(records)
        instance.save(staging / "index")
        seconds = time.perf_counter() - started
    marker = {"system": system, "seconds": seconds, "passages": len(records)}
    marker["chunks"] = instance.chunks
    marker["settings"] = index_settings(system)
    (staging / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    if system == ProjectSystem.name:  # the staging folder it was loaded from is gone
        instance = ProjectSystem.load(folder / "index", model_path, embedder=instance.embedder)
    return BuiltIndex(folder, system, seconds, instance.chunks, instance)


def index_settings(system: str) -> dict[str, Any]:
    """A system's index settings beyond its corpus, as saved in the cache marker. The
    project's index checks its own settings when it is loaded."""
    peer = PEERS.get(system)
    return peer.index_settings() if peer is not None else {}


def open_system(system: str, folder: Path, model_path: Path) -> Any:
    """Load a cached index of a system."""
    if system == ProjectSystem.name:
        return ProjectSystem.load(folder / "index", model_path)
    return PEERS[system].load(folder / "index", model_path)


def ensure_built(
    system: str, dataset_name: str, corpus: Path, records: list[Record], cache: Path
) -> BuiltIndex:
    """The cached index of a system over a corpus, built once (and again when the system's
    index settings have changed since)."""
    folder = index_folder(cache, system, dataset_name, corpus)
    marker = read_marker(folder)
    if marker is not None and marker.get("settings", {}) == index_settings(system):
        return BuiltIndex(folder, system, None, int(marker["chunks"]))
    logger.warning("building the %s index of %s in %s (once)", system, dataset_name, folder)
    return build_system(system, records, folder, default_model_path())
