"""Question answering over Chinese documents, with the passages that prove each answer.

from retriever import Retriever
retriever = Retriever.load("index")
hits = retriever.search("办公室主任和行政主管哪个大?", k=5)
answer = retriever.ask("办公室主任和行政主管哪个大?")
hr = Retriever.load(base="hr")  # a knowledge base in bases/ (retriever.bases)
"""

from retriever.answer import Answer, Citation
from retriever.bases import Base, BaseError, Bases
from retriever.building import BuildReport
from retriever.config import BackendSettings, ChunkSettings, LexicalSettings, SearchSettings
from retriever.index import IndexInfo
from retriever.query import QuestionError
from retriever.quoting import Quote
from retriever.rerank import Candidate, Reranker
from retriever.schema import IndexLoadError
from retriever.search import Retriever
from retriever.searcher import Hit
from retriever.staging import IndexFolderError

__all__ = [
    "Answer",
    "BackendSettings",
    "Base",
    "BaseError",
    "Bases",
    "BuildReport",
    "Candidate",
    "ChunkSettings",
    "Citation",
    "Hit",
    "IndexFolderError",
    "IndexInfo",
    "IndexLoadError",
    "LexicalSettings",
    "QuestionError",
    "Quote",
    "Reranker",
    "Retriever",
    "SearchSettings",
]
