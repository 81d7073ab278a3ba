"""The engine's environment variables are read in one place (retriever.config.Environment)."""

from __future__ import annotations

from pathlib import Path

from retriever.config import DEFAULT_CACHE, Environment


def test_the_engines_variables_are_read_in_one_place() -> None:
    assert Environment.read({}) == Environment(DEFAULT_CACHE, None, None, "")
    read = Environment.read(
        {
            "RETRIEVER_CACHE": "/tmp/cache",
            "RETRIEVER_BASES": " kb ",
            "RETRIEVER_KERNEL": "onnx-int8",
            "RETRIEVER_MILVUS_TOKEN": "user:secret",
        }
    )
    assert read == Environment(Path("/tmp/cache"), Path("kb"), "onnx-int8", "user:secret")
    assert "secret" not in repr(read)
    # Set but empty: the default, as if unset.
    assert Environment.read({"RETRIEVER_CACHE": "", "RETRIEVER_KERNEL": " "}) == Environment()
