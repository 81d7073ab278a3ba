"""The engine's shape (issue 10): no import circles, and serving never loads model building."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CACHE, ROOT

PACKAGE = ROOT / "retriever"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of retriever/ and the modules of retriever/ it imports, wherever in the
    file (inside functions and under TYPE_CHECKING too: a circle is a circle either way)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                # `from retriever import models` imports the module retriever.models
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        # A package is imported on the way to its modules; that is no edge.
        graph[name] = {module for module in imported if module in modules} - {name, "retriever"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules on it, or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                return [*path[path.index(other) :], other]
            if other not in state and (cycle := visit(other)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_engine_has_no_import_circle() -> None:
    graph = import_graph()
    assert {"retriever.search", "retriever.searcher", "retriever.answer"} <= graph.keys()
    assert "retriever.searcher" in graph["retriever.answer"]  # the walk sees real edges
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.model
def test_serving_imports_no_model_building(real_index: Path) -> None:
    """`import retriever` and a loaded index answering with the default model on onnx-int8
    need neither retriever.modelbuild nor torch: that code is for `prepare-model` only."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import retriever\n"
        "from retriever import Retriever\n"
        f"found = Retriever.load(Path({str(real_index)!r}), cache_dir=Path({str(CACHE)!r}))\n"
        "found.ask('办公室主任和行政主管哪个大?')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('retriever'))))\n"
        "print(json.dumps([m for m in ('torch', 'sentence_transformers') if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "RETRIEVER_KERNEL": "onnx-int8"},  # the torch kernels import torch
    )
    loaded, heavy = (json.loads(line) for line in result.stdout.splitlines())
    assert "retriever.search" in loaded and "retriever.backends.faiss_dense" in loaded
    assert [m for m in loaded if m.startswith("retriever.modelbuild")] == []
    assert heavy == []
