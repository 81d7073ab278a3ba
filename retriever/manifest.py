"""manifest.json, the description of an index: its schema, written and read in one place.

Every manifest says `"format": "zh-retriever-index"` and its format version; manifests
written before the mark existed are recognised by their shape (see `is_ours`). Reading
checks the whole schema, key by key, into a typed `Manifest`: the engine reads its fields,
never the JSON. Format 2 (this one) names the backends that hold the index and goes with
chunk ids that stay fixed across updates; an index of format 1 is refused with the advice
to rebuild, which a build does by itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from retriever.config import BackendSettings, ChunkSettings, LexicalSettings
from retriever.corpus import Skipped, SourceFile
from retriever.schema import REBUILD_HINT, Fields, IndexLoadError

FORMAT = "zh-retriever-index"
FORMAT_VERSION = 2
_SOURCE_FIELDS: dict[str, type] = get_type_hints(SourceFile)
_SKIPPED_FIELDS: dict[str, type] = get_type_hints(Skipped)


@dataclass(frozen=True)
class Manifest(Mapping[str, Any]):
    """What an index holds and how it was built, as typed fields.

    It is also a read-only mapping over the JSON it was read from (`raw`), for callers that
    read `manifest["sources"]`. A build makes one with `chunk_count`, `created_at`,
    `checksums` and `raw` still empty; writing the index fills them (retriever.store).
    """

    model_name: str
    model_dim: int
    chunking: ChunkSettings
    lexical: LexicalSettings
    backends: BackendSettings
    sources: tuple[SourceFile, ...]
    skipped: tuple[Skipped, ...]
    corpus_hashes: dict[str, str]
    document_count: int
    chunk_count: int = 0
    # What ran the model for this build (retriever.kernels), on which processor: an index
    # built before kernels were chosen says nothing.
    kernel: str = ""
    cpu: str = ""
    cpu_flags: tuple[str, ...] = ()
    created_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # every other file of the index
    # Where the index keeps data outside its folder: a Milvus server's collections, which
    # the index owns (retriever.backends.milvus_collections); () when all is in the folder.
    collections: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def to_json(self) -> dict[str, Any]:
        """The manifest.json object; `parse_manifest` reads it back into an equal Manifest."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": {
                "name": self.model_name,
                "dim": self.model_dim,
                "kernel": self.kernel,
                "cpu": self.cpu,
                "cpu_flags": list(self.cpu_flags),
            },
            "settings": {"chunking": asdict(self.chunking), "lexical": asdict(self.lexical)},
            "backends": asdict(self.backends),
            "document_count": self.document_count,
            "sources": [asdict(source) for source in self.sources],
            "skipped": [asdict(skipped) for skipped in self.skipped],
            "corpus_hashes": self.corpus_hashes,
            "chunk_count": self.chunk_count,
            "versions": self.versions,
            "created_at": self.created_at,
            "checksums": self.checksums,
            "collections": list(self.collections),
        }


def is_ours(data: object) -> bool:
    """Whether a parsed manifest.json was written by this project (any format version)."""
    if not isinstance(data, dict):
        return False
    if "format" in data:
        return data["format"] == FORMAT
    # Written before the mark existed: recognised by the keys every such manifest has.
    return {"format_version", "checksums", "chunk_count"} <= data.keys()


def parse_manifest(data: object, path: Path) -> Manifest:
    """Check the manifest's schema, key by key. Raises IndexLoadError naming what is wrong."""
    if not isinstance(data, dict):
        raise IndexLoadError(
            f"{path} is damaged (it holds a JSON {type(data).__name__}, not an object): "
            f"{REBUILD_HINT}"
        )
    if data.get("format", FORMAT) != FORMAT:
        raise IndexLoadError(
            f"{path} is not the manifest of an index of this project (format "
            f"{data['format']!r}): {REBUILD_HINT}"
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise IndexLoadError(
            f"{path.parent} has index format {version!r}, this version reads format "
            f"{FORMAT_VERSION}: {REBUILD_HINT}"
        )
    top = Fields(data, path)
    model = top.get_object("model")
    settings = top.get_object("settings")
    built_on = "kernel" in model.data  # absent from indexes built before kernels were chosen
    return Manifest(
        model_name=model.get("name", str),
        model_dim=model.get_count("dim", minimum=1),
        kernel=model.get("kernel", str) if built_on else "",
        cpu=model.get("cpu", str) if built_on else "",
        cpu_flags=tuple(model.get("cpu_flags", list)) if built_on else (),
        chunking=settings.get_settings("chunking", ChunkSettings),
        lexical=settings.get_settings("lexical", LexicalSettings),
        backends=top.get_settings("backends", BackendSettings),
        sources=tuple(
            SourceFile(**Fields(item, path, f"sources[{i}].").checked(_SOURCE_FIELDS, exact=True))
            for i, item in enumerate(top.get("sources", list))
        ),
        skipped=tuple(
            Skipped(**Fields(item, path, f"skipped[{i}].").checked(_SKIPPED_FIELDS, exact=True))
            for i, item in enumerate(top.get("skipped", list))
        ),
        corpus_hashes=top.get_mapping("corpus_hashes"),
        document_count=top.get_count("document_count"),
        chunk_count=top.get_count("chunk_count"),
        created_at=top.get("created_at", str),
        versions=top.get_mapping("versions"),
        checksums=top.get_mapping("checksums"),
        collections=_collections(top, data),
        raw=data,
    )


def _collections(top: Fields, data: dict[str, Any]) -> tuple[str, ...]:
    """The manifest's server collections: absent from manifests written before they were
    recorded (their index keeps its data in the folder, or names it in dense/)."""
    if "collections" not in data:
        return ()
    names = top.get("collections", list)
    if not all(isinstance(name, str) for name in names):
        top.fail("collections should be a list of names")
    return tuple(names)
