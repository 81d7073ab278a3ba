"""The search engines an index can be held by, by the names the manifest records.

To add one: write a module here with a subclass of `DenseBackend` or `LexicalBackend`
(retriever.backends.base), register its name below, and add it to the contract tests'
parameters (tests/retriever/test_backends.py). Nothing in searching or answering changes: they see
only the interface. Modules are imported when their backend is first used, so an engine's
library is needed only by the indexes that use it.
"""

from __future__ import annotations

from importlib import import_module

from retriever.backends.base import DenseBackend, LexicalBackend

# name → "module:class"
DENSE_BACKENDS = {
    "faiss": "retriever.backends.faiss_dense:FaissDense",
    "milvus": "retriever.backends.milvus_dense:MilvusDense",  # Lite, or a server: its module
}
LEXICAL_BACKENDS = {
    "bm25s": "retriever.backends.bm25s_lexical:Bm25sLexical",
    "milvus": "retriever.backends.milvus_lexical:MilvusLexical",  # Milvus Lite's BM25
}


class UnknownBackendError(ValueError):
    """A backend name that is not registered; the message lists those that are."""


def dense_backend(name: str) -> type[DenseBackend]:
    """The dense backend registered as `name`."""
    return _load(name, DENSE_BACKENDS, "dense")


def lexical_backend(name: str) -> type[LexicalBackend]:
    """The lexical backend registered as `name`."""
    return _load(name, LEXICAL_BACKENDS, "lexical")


def _load(name: str, registry: dict[str, str], side: str):
    if name not in registry:
        raise UnknownBackendError(
            f"no {side} backend named {name!r}: this installation has {', '.join(registry)}"
        )
    module, cls = registry[name].split(":")
    return getattr(import_module(module), cls)
