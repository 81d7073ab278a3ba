"""Typed reads of the index's JSON (the manifest, chunk lines, a backend's parameters): any
key that is missing or of the wrong type is an IndexLoadError that says to rebuild, never a
KeyError or a TypeError from deep inside a load.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar

REBUILD_HINT = "rebuild it with `python -m retriever build` (or `make index`)"

_KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
Settings = TypeVar("Settings")


class IndexLoadError(RuntimeError):
    """The index folder cannot be used as it is; the message says what to do."""


class Fields:
    """One JSON object of file `path`, read key by key with its type checked."""

    def __init__(self, data: object, path: Path, prefix: str = "") -> None:
        self.path, self.prefix = path, prefix
        if not isinstance(data, dict):
            self.fail(f"{prefix.rstrip('.: ') or 'the manifest'} should be an object")
        self.data: dict[str, Any] = data

    def fail(self, problem: str) -> NoReturn:
        raise IndexLoadError(f"{self.path} is damaged ({problem}): {REBUILD_HINT}")

    def get(self, key: str, kind: type) -> Any:
        if key not in self.data:
            self.fail(f"{self.prefix}{key} is missing")
        value = self.data[key]
        # JSON numbers: an int is a fine float, but true/false is no number.
        kinds = (int, float) if kind is float else kind
        if not isinstance(value, kinds) or (isinstance(value, bool) and kind is not bool):
            shown = json.dumps(value, ensure_ascii=False)
            shown = shown if len(shown) <= 40 else shown[:40] + "…"
            self.fail(f"{self.prefix}{key} should be {_KINDS[kind]}, not {shown}")
        return value

    def get_count(self, key: str, *, minimum: int = 0) -> int:
        value = self.get(key, int)
        if value < minimum:
            self.fail(f"{self.prefix}{key} is {value}, less than {minimum}")
        return value

    def get_object(self, key: str) -> Fields:
        return Fields(self.get(key, dict), self.path, f"{self.prefix}{key}.")

    def get_mapping(self, key: str) -> dict[str, str]:
        """An object of strings to strings (checksums, corpus hashes)."""
        inner = self.get_object(key)
        return {name: inner.get(name, str) for name in inner.data}

    def checked(self, kinds: dict[str, type], *, exact: bool = False) -> dict[str, Any]:
        """The object itself, after checking that it holds `kinds`' keys with their types
        (and, if `exact`, no other key)."""
        extra = sorted(set(self.data) - set(kinds)) if exact else []
        if extra:
            self.fail(f"{self.prefix.rstrip('.: ')} holds unknown keys {', '.join(extra)}")
        for key, kind in kinds.items():
            self.get(key, kind)
        return self.data

    def get_settings(self, key: str, cls: type[Settings]) -> Settings:
        """A settings dataclass from exactly its fields, each of its default's type."""
        inner = self.get_object(key)
        names = [field.name for field in fields(cls)]
        extra = sorted(set(inner.data) - set(names))
        if extra:
            self.fail(f"{self.prefix}{key} holds unknown settings {', '.join(extra)}")
        values = {field.name: inner.get(field.name, type(field.default)) for field in fields(cls)}
        try:
            return cls(**values)
        except ValueError as error:
            self.fail(f"{self.prefix}{key}: {error}")
