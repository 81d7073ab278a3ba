"""Knowledge bases: named collections, each with its own corpus folder and index.

The *default* base is the corpus and index folders the project always had (`corpus/` and
`index/`, or whatever the caller configures), so every command that names no base works as
before. Every other base lives in one folder the product owns, `bases/` by default:

    bases/
        hr/                     one base; its folder's name is the base's name
            base.json           the marker: {"kind": "zh-retriever knowledge base", ...}
            corpus/             its documents (with their own corpus/.trash/)
            index/              its index, built from corpus/ (missing until the first build)
        .trash/                 deleted bases, restorable
            20261129T011502Z-3f9a1c2e/
                entry.json      {"id", "name": "hr", "removed_at"}
                hr/             the base's folder as it was

Only folders holding our marker are bases: anything else under `bases/` (a folder made by
hand, a symlink) is left alone, neither listed, renamed nor deleted. Nothing here deletes a
base: `delete` moves its folder to `.trash/`, `restore` moves it back. Every move is a rename
within the folder, so a crash leaves each base either where it was or in the trash. Callers
serialise changes (the web app holds a lock; the command line runs one at a time).

Errors are `BaseError`s with English messages, for the command line and the Python API; each
kind is its own class, so the web app can say the same in Chinese.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT = "default"  # the name of the base made of the configured corpus and index folders
DEFAULT_ROOT = Path("bases")
MARKER = "base.json"
KIND = "zh-retriever knowledge base"
TRASH = ".trash"
ENTRY = "entry.json"
CORPUS = "corpus"
INDEX = "index"
MAX_NAME_CHARS = 64  # 192 bytes of UTF-8 at most: well within a file name's 255
# Letters and digits of any script (CJK included), "-" and "_"; a letter, digit or "_" first,
# so that no name starts with "." (hidden) or "-" (read as an option by the command line).
_NAME = re.compile(r"[^\W][\w-]*")
NAME_RULE = (
    f"letters, digits (CJK included), '-' and '_', at most {MAX_NAME_CHARS} characters, "
    "not starting with '-'"
)


class BaseError(ValueError):
    """A change to the knowledge bases that was refused before anything was touched."""


class BadBaseName(BaseError):
    """The name cannot name a base (see NAME_RULE)."""


class NoSuchBase(BaseError):
    """No base of that name."""


class BaseExists(BaseError):
    """The name is taken (by a base, or by anything else in the bases folder)."""


class DefaultBase(BaseError):
    """The default base cannot be renamed or deleted: its folders are configured, not ours."""


class NotABase(BaseError):
    """The folder of that name was not created by this product (no marker), so it is left
    alone."""


class NoSuchBaseTrashEntry(BaseError):
    """The id is not one of the bases trash's entries."""


@dataclass(frozen=True)
class Base:
    """A knowledge base: its name and the folders of its documents and index."""

    name: str
    corpus: Path
    index: Path
    created_at: str | None  # ISO 8601, UTC; None for the default base

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "default": self.is_default,
            "created_at": self.created_at,
            "corpus": str(self.corpus),
            "index": str(self.index),
        }


@dataclass(frozen=True)
class BaseTrashEntry:
    """A deleted base: its name then, and when it was deleted."""

    id: str
    name: str
    removed_at: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_name(name: str) -> str:
    """`name` if it can name a base; BadBaseName otherwise.

    Names are also folder names, so only characters that mean nothing to a file system are
    allowed, and only in one form: full-width letters, ligatures and the like (which NFKC
    folds) are refused, so two names that look alike are one name or refused.
    """
    if (
        len(name) > MAX_NAME_CHARS
        or not _NAME.fullmatch(name)
        or unicodedata.normalize("NFKC", name) != name
    ):
        raise BadBaseName(f"{name[:80]!r} cannot name a knowledge base: use {NAME_RULE}")
    return name


@dataclass(frozen=True)
class Bases:
    """The knowledge bases: the default one, made of `default_corpus` and `default_index`,
    and those in `root`."""

    root: Path = DEFAULT_ROOT
    default_corpus: Path = Path(CORPUS)
    default_index: Path = Path(INDEX)

    def __post_init__(self) -> None:
        root = self.root.resolve()
        for option, folder in (("corpus", self.default_corpus), ("index", self.default_index)):
            if root.is_relative_to(folder.resolve()):
                # A build of the default base would read the bases' documents as its own, or
                # replace them with its index.
                raise BaseError(
                    f"the bases folder {self.root} is inside the default base's {option} "
                    f"folder {folder}: give the bases a folder of their own"
                )

    @property
    def default(self) -> Base:
        return Base(DEFAULT, self.default_corpus, self.default_index, None)

    def list(self) -> list[Base]:
        """Every base, the default first, then by name."""
        bases = []
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir()):
                if folder.name.startswith("."):  # the trash, and folders being created
                    continue
                base = self._read(folder)
                if base is None:
                    logger.debug("%s is not a knowledge base (no %s): left alone", folder, MARKER)
                else:
                    bases.append(base)
        return [self.default, *bases]

    def get(self, name: str) -> Base:
        """The base called `name`. Raises BadBaseName, NoSuchBase, or NotABase."""
        if name == DEFAULT:
            return self.default
        folder = self.root / check_name(name)
        base = self._read(folder)
        if base is None:
            if folder.exists() or folder.is_symlink():
                raise NotABase(
                    f"{folder} was not created as a knowledge base (a folder holding {MARKER}, "
                    "not a link): it is left alone"
                )
            raise NoSuchBase(f"no knowledge base called {name!r} in {self.root}")
        return base

    def create(self, name: str) -> Base:
        """A new, empty base (its index is made by the first build of its corpus)."""
        self.check_free(name)
        self.root.mkdir(parents=True, exist_ok=True)
        moment = _now()
        # Made complete under a hidden name, then renamed into place: a crash leaves either
        # no base or a whole one (and a hidden folder, which nothing lists).
        building = self.root / f".new-{secrets.token_hex(4)}"
        (building / CORPUS).mkdir(parents=True)
        marker = {"kind": KIND, "version": 1, "created_at": moment.isoformat()}
        (building / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        # rename(2) would replace an empty folder of that name: check_free has just seen none.
        os.rename(building, self.root / name)
        logger.info("created the knowledge base %s in %s", name, self.root)
        return self.get(name)

    def rename(self, name: str, new_name: str) -> Base:
        """Give the base `name` the name `new_name`; its documents and index move with it."""
        if name == DEFAULT:
            raise DefaultBase(f"the default base cannot be renamed: {_DEFAULT_WHY}")
        self.get(name)  # refuses a name that is not one of our bases
        if new_name != name:
            self.check_free(new_name, renaming=name)
            os.rename(self.root / name, self.root / new_name)
        return self.get(new_name)

    def delete(self, name: str) -> BaseTrashEntry:
        """Move the base `name` (its folder, documents and index) into the trash."""
        if name == DEFAULT:
            raise DefaultBase(f"the default base cannot be deleted: {_DEFAULT_WHY}")
        self.get(name)  # refuses a name that is not one of our bases
        moment = _now()
        entry = BaseTrashEntry(
            id=f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}",
            name=name,
            removed_at=moment.isoformat(),
        )
        entry_dir = self.root / TRASH / entry.id
        entry_dir.mkdir(parents=True)
        # The record first: a crash before the move leaves an empty entry, never a base
        # without its record.
        (entry_dir / ENTRY).write_text(
            json.dumps(entry.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        os.rename(self.root / name, entry_dir / name)
        logger.info("moved the knowledge base %s to %s", name, entry_dir)
        return entry

    def trash(self) -> list[BaseTrashEntry]:
        """The deleted bases, the most recently deleted first."""
        folder = self.root / TRASH
        if not folder.is_dir():
            return []
        entries = [entry for path in folder.iterdir() if (entry := _read_entry(path))]
        return sorted(entries, key=lambda entry: (entry.removed_at, entry.id), reverse=True)

    def restore(self, entry_id: str, name: str | None = None) -> Base:
        """Put a deleted base back, under its old name or `name`."""
        # Only a listed id is accepted, so no id can point outside the trash.
        entry = next((item for item in self.trash() if item.id == entry_id), None)
        if entry is None:
            raise NoSuchBaseTrashEntry(f"no entry {entry_id!r} in the trash of {self.root}")
        target = name or entry.name
        self.check_free(target)
        entry_dir = self.root / TRASH / entry.id
        os.rename(entry_dir / entry.name, self.root / target)
        (entry_dir / ENTRY).unlink()
        entry_dir.rmdir()
        return self.get(target)

    def check_free(self, name: str, *, renaming: str | None = None) -> None:
        """Raise BadBaseName, or BaseExists when `name` is taken by any folder or file (but
        `renaming`), whatever its case: on a case-insensitive disk HR and hr are one folder."""
        if check_name(name).casefold() == DEFAULT:
            raise BaseExists(f"{name!r} is taken: {DEFAULT!r} is the default base's name")
        if not self.root.is_dir():
            return
        wanted = name.casefold()
        for entry in self.root.iterdir():
            if entry.name.casefold() == wanted and entry.name != renaming:
                raise BaseExists(f"{self.root / entry.name} already exists: choose another name")

    def _read(self, folder: Path) -> Base | None:
        """The base in `folder`, or None when it is not one (no marker, a symlink, a name no
        base may have)."""
        try:
            check_name(folder.name)
        except BadBaseName:
            return None
        marker = folder / MARKER
        if folder.is_symlink() or not folder.is_dir() or marker.is_symlink():
            return None
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("kind") != KIND:
            return None
        created = record.get("created_at")
        return Base(
            folder.name,
            folder / CORPUS,
            folder / INDEX,
            created if isinstance(created, str) else None,
        )


_DEFAULT_WHY = "its folders are set by the corpus and index options, not kept in the bases folder"


def folders(
    base: str | None,
    corpus: Path | str | None = None,
    index: Path | str | None = None,
    *,
    root: Path | str = DEFAULT_ROOT,
) -> tuple[Path, Path]:
    """The corpus and index folders to use: base `base`'s, or the folders given (`corpus/`
    and `index/` when neither is given). A base and a folder together are a BaseError."""
    if base is None:
        return Path(corpus or CORPUS), Path(index or INDEX)
    if corpus is not None or index is not None:
        raise BaseError("name a knowledge base or give folders, not both")
    chosen = Bases(Path(root)).get(base)
    return chosen.corpus, chosen.index


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _read_entry(entry_dir: Path) -> BaseTrashEntry | None:
    """The entry recorded in `entry_dir`, or None when it is incomplete or not one of ours."""
    try:
        entry = BaseTrashEntry(**json.loads((entry_dir / ENTRY).read_text(encoding="utf-8")))
        check_name(entry.name)
    except (OSError, ValueError, TypeError) as error:
        logger.warning("ignoring %s in the bases trash: %s", entry_dir, error)
        return None
    kept = entry_dir / entry.name
    if entry.id != entry_dir.name or kept.is_symlink() or not kept.is_dir():
        logger.warning("ignoring %s in the bases trash: its base is missing", entry_dir)
        return None
    return entry
