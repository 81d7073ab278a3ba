"""Question answering over Chinese documents, with the passages that prove each answer.

from retriever import Retriever
retriever = Retriever.load("index")
hits = retriever.search("办公室主任和行政主管哪个大?", k=5)
answer = retriever.ask("办公室主任和行政主管哪个大?")
"""

from retriever.answer import Answer, Citation, Quote
from retriever.config import ChunkSettings, LexicalSettings, SearchSettings
from retriever.search import BuildReport, Hit, IndexInfo, QuestionError, Retriever
from retriever.store import IndexLoadError

__all__ = [
    "Answer",
    "BuildReport",
    "ChunkSettings",
    "Citation",
    "Hit",
    "IndexInfo",
    "IndexLoadError",
    "LexicalSettings",
    "QuestionError",
    "Quote",
    "Retriever",
    "SearchSettings",
]
