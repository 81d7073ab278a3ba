"""The default int8 ONNX model: built once, checked against torch, rebuilt when damaged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever import models
from retriever.embedding import DEFAULT_EMBEDDER, load_embedder
from retriever.modelbuild import onnx_export
from retriever.modelbuild.default_model import ensure_default_model
from retriever.modelbuild.onnx_export import ensure_int8_model
from retriever.models import DEFAULT_MODEL_NAME, INT8_MODEL_NAME, MARKER_NAME
from retriever.onnx_embedder import OnnxEmbedder, OnnxModelError

CACHE = Path(__file__).resolve().parents[2] / ".cache"

TEXTS = [
    "办公室主任和行政主管哪个大?",
    "行政助理负责员工的考勤,于次月第一个工作日提供考勤报表并存档。",
    "短",
    "《红楼梦》是中国古代章回体长篇小说，被列为中国古典四大名著之首。" * 6,
]


@pytest.mark.model
def test_int8_vectors_point_where_torch_fp32_vectors_do() -> None:
    int8 = load_embedder(cache_dir=CACHE, kernel="onnx-int8")
    fp32 = load_embedder(DEFAULT_MODEL_NAME, cache_dir=CACHE, kernel="torch-fp32")
    assert isinstance(int8, OnnxEmbedder) and int8.name == DEFAULT_EMBEDDER == DEFAULT_MODEL_NAME
    for encode in ("encode_queries", "encode_passages"):
        ours, reference = getattr(int8, encode)(TEXTS), getattr(fp32, encode)(TEXTS)
        assert ours.shape == reference.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-3)
        # int8 moves a vector by ~0.003 of cosine; a wrong export, mask or prefix by far more.
        assert float(np.sum(ours * reference, axis=1).min()) > 0.98
    # The same question alone and in a batch of many (two code paths, one vs all threads).
    alone = int8.encode_queries(TEXTS[:1])[0]
    batched = int8.encode_queries(TEXTS[:1] * 9)[0]
    assert float(alone @ batched) > 0.99
    # A few texts (an answer's sentences) are embedded one by one: each one's vector is the
    # one it gets alone, which is what lets answers keep them (retriever.answer).
    few = int8.encode_passages(TEXTS)
    for text, vector in zip(TEXTS, few, strict=True):
        assert np.array_equal(int8.encode_passages([text])[0], vector)


@pytest.mark.model
def test_serving_imports_neither_torch_nor_sentence_transformers(tmp_path: Path) -> None:
    """Most of a cold start was importing torch; the int8 path must not need it."""
    import subprocess

    code = (
        "import sys; from pathlib import Path; from retriever.embedding import load_embedder; "
        f"load_embedder(cache_dir=Path({str(CACHE)!r}), kernel='onnx-int8')"
        ".encode_queries(['问题']); "
        "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "[]"


@pytest.fixture
def fake_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """ensure_int8_model over a stand-in build (writes files, no export), counting builds."""
    builds: list[Path] = []

    def build(source: Path, target: Path, *, quantize: bool) -> None:
        assert quantize and (source / MARKER_NAME).is_file()
        builds.append(target)
        (target / models.MODEL_FILE).write_bytes(b"graph")
        (target / models.TOKENIZER_FILE).write_text("{}", encoding="utf-8")

    monkeypatch.setattr(onnx_export, "build_onnx_model", build)
    real_source = ensure_default_model(CACHE)
    monkeypatch.setattr(onnx_export, "ensure_default_model", lambda cache_dir: real_source)
    return builds


def test_built_once_then_reused(tmp_path: Path, fake_builds: list[Path]) -> None:
    folder = ensure_int8_model(tmp_path)
    assert folder == tmp_path / "models" / INT8_MODEL_NAME
    assert ensure_int8_model(tmp_path) == folder
    assert len(fake_builds) == 1
    info = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    assert info["model"] == INT8_MODEL_NAME and info["source"]["model"] == DEFAULT_MODEL_NAME
    assert not list(folder.parent.glob(".*building*"))  # the staging folder was renamed


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / models.MODEL_FILE).unlink(),
        lambda folder: (folder / MARKER_NAME).write_text("{not json", encoding="utf-8"),
        lambda folder: (folder / MARKER_NAME).write_text(
            json.dumps({"recipe_version": models.INT8_RECIPE_VERSION - 1}), encoding="utf-8"
        ),
    ],
    ids=["model file missing", "marker damaged", "older recipe"],
)
def test_damaged_or_stale_folder_is_rebuilt(
    tmp_path: Path, fake_builds: list[Path], damage
) -> None:
    folder = ensure_int8_model(tmp_path)
    damage(folder)
    assert ensure_int8_model(tmp_path) == folder
    assert len(fake_builds) == 2
    assert (folder / models.MODEL_FILE).read_bytes() == b"graph"


def test_failed_build_says_what_to_do_and_leaves_no_debris(
    tmp_path: Path, fake_builds: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: Path, target: Path, *, quantize: bool) -> None:
        (target / "half-written").write_text("x", encoding="utf-8")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "build_onnx_model", broken)
    with pytest.raises(OnnxModelError, match=r"exporter crashed.*requirements\.txt"):
        ensure_int8_model(tmp_path)
    models = tmp_path / "models"
    assert not (models / INT8_MODEL_NAME).exists()
    assert not list(models.glob(".*building*"))


def test_folder_without_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match=r"model\.onnx"):
        OnnxEmbedder(tmp_path, "empty")
