"""The default embedding model as serving sees it: names, prefixes, folders, and whether a
built folder is ready to use.

The folders are made once, offline, by retriever.modelbuild (`python -m retriever
prepare-model`). This module only looks at them, so that loading the model never imports the
code that builds it (nor torch): a folder is ready when the marker its build writes last says
the current recipe made it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_MODEL_NAME = "multilingual-e5-small"
# The int8 graph's folder; also the name indexes built before kernels were chosen per machine
# (retriever.kernels) recorded for the default model: it means the same model.
INT8_MODEL_NAME = f"{DEFAULT_MODEL_NAME}-int8"

# E5 was trained with these markers in front of every text; the built folder stores them as
# sentence-transformers prompts so that callers can find them in ``model.prompts``.
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

# Written last by every build, so a folder without it is never taken for a finished one.
MARKER_NAME = "build_info.json"
# The recipe versions this code expects; retriever.modelbuild writes them into the marker.
# Bump one when its recipe changes what is written: folders built by another are rebuilt.
DEFAULT_RECIPE_VERSION = 1
INT8_RECIPE_VERSION = 1

# The sentence-transformers folder of the default model: the files without which it cannot be
# loaded. Checked on every load, so the check stays cheap (no hashing).
DEFAULT_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    MARKER_NAME,
)
# The int8 folder: one ONNX graph (token ids and mask in, unit vectors out) and its tokenizer.
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


def canonical_model_name(name: str) -> str:
    """The name a model is recorded under: the default model's old int8 name is the model."""
    return DEFAULT_MODEL_NAME if name == INT8_MODEL_NAME else name


def default_model_dir(cache_dir: Path) -> Path:
    """Where the sentence-transformers folder of the default model lives."""
    return Path(cache_dir) / "models" / DEFAULT_MODEL_NAME


def int8_model_dir(cache_dir: Path) -> Path:
    """Where the default model's int8 ONNX folder lives."""
    return Path(cache_dir) / "models" / INT8_MODEL_NAME


def read_marker(folder: Path) -> dict[str, Any]:
    """The build marker of `folder`, or {} when it is missing or damaged."""
    try:
        info = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def default_model_is_built(folder: Path) -> bool:
    """True if `folder` was fully built by the current recipe of the default model."""
    if read_marker(folder).get("recipe_version") != DEFAULT_RECIPE_VERSION:
        return False
    return all((folder / name).is_file() for name in DEFAULT_MODEL_FILES)


def int8_model_is_built(folder: Path, source: Path) -> bool:
    """True if `folder` holds the int8 graph of the default model now in `source`."""
    info = read_marker(folder)
    return (
        info.get("recipe_version") == INT8_RECIPE_VERSION
        and info.get("source") == read_marker(source)
        and (folder / MODEL_FILE).is_file()
        and (folder / TOKENIZER_FILE).is_file()
    )


def int8_model_is_ready(cache_dir: Path) -> bool:
    """Both folders of the default model are built and belong together."""
    source = default_model_dir(cache_dir)
    return default_model_is_built(source) and int8_model_is_built(int8_model_dir(cache_dir), source)
