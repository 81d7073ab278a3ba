"""Build the default model's fast form: one ONNX Runtime graph with int8 weights, offline.

Embedding is most of the cost of a build on a CPU. This module turns the default model folder
(see retriever.modelbuild.default_model) into ``model.onnx`` that ONNX Runtime runs about
three times as fast as torch does the fp32 model, for a retrieval quality within 0.01 of R@10
(docs/onnx_int8.md):

1. torch's TorchScript exporter writes the encoder with mean pooling and L2 normalisation
   inside the graph, so the file gives sentence embeddings directly. Not the newer dynamo
   exporter: onnxruntime's transformer optimizer recognises only the older graph's patterns.
2. That optimizer fuses each layer's attention, the GELU and the residual layer norms into
   single kernels (from 22 to 39 passages/s once quantised, on 2 cores).
3. ``quantize_dynamic`` stores the weights of every matrix product, of the fused attention
   and of the embedding table as int8 per channel: the dynamic-quantisation recipe of
   sentence-transformers' ONNX backend, whose own exporter (optimum) does not support
   transformers 5.

The folder is checked against the fp32 model before it is put in place and is rebuilt when
the default model or this recipe changes (retriever.models.INT8_RECIPE_VERSION). Serving runs
it with retriever.onnx_embedder, which needs only onnxruntime and tokenizers: neither torch,
sentence-transformers nor this module is imported, which is most of a cold start.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from retriever.modelbuild.default_model import ensure_default_model
from retriever.modelbuild.staging import build_lock, remove_leftovers, staged_folder
from retriever.models import (
    DEFAULT_MODEL_NAME,
    INT8_MODEL_NAME,
    INT8_RECIPE_VERSION,
    MARKER_NAME,
    MODEL_FILE,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    TOKENIZER_FILE,
    int8_model_dir,
    int8_model_is_built,
    read_marker,
)
from retriever.onnx_embedder import OnnxEmbedder, OnnxModelError

logger = logging.getLogger(__name__)

QUANTIZED_OPS = ["MatMul", "Attention", "Gather"]
# int8 moves each vector by a cosine of about 0.003 (docs/onnx_int8.md); a broken export or
# fusion moves it by far more.
_MIN_PROBE_COSINE = 0.98
_PROBES = (
    "办公室主任和行政主管哪个大?",
    "行政助理的职能是管理人事行政基础行政事务工作，协助上级做好日常办公。",
    "短",
)


def ensure_int8_model(cache_dir: Path) -> Path:
    """The int8 folder under cache_dir/models, built once (about a minute) from the default.

    Cheap when it is current: two small JSON files are read, nothing heavy is imported.
    """
    source = ensure_default_model(cache_dir)
    target = int8_model_dir(cache_dir)
    if int8_model_is_built(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target):
        if int8_model_is_built(target, source):
            return target
        remove_leftovers(target)
        logger.warning("building the int8 ONNX model in %s (once, about a minute)", target)
        try:
            with staged_folder(target) as staging:
                started = time.monotonic()
                build_onnx_model(source, staging, quantize=True)
                _write_marker(staging, source, seconds=time.monotonic() - started)
        except Exception as error:
            raise OnnxModelError(
                f"could not build the int8 ONNX model from {source}: {error}. Reinstall with "
                "`pip install -r requirements.txt` (torch, onnx, onnxruntime), or use the "
                f"torch model with --model {DEFAULT_MODEL_NAME}"
            ) from error
    return target


def build_onnx_model(source: Path, target: Path, *, quantize: bool) -> None:
    """Export, fuse and (if `quantize`) quantise the model in `source` into `target`.

    `target` gets model.onnx and tokenizer.json; the result is checked against `source`.
    """
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per load is noise in a build log
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        exported = Path(scratch) / "exported.onnx"
        _export(source, exported)
        if quantize:
            fused = Path(scratch) / "fused.onnx"
            _fuse(source, exported, fused)
            _quantize(fused, target / MODEL_FILE)
        else:
            _fuse(source, exported, target / MODEL_FILE)
    shutil.copyfile(source / TOKENIZER_FILE, target / TOKENIZER_FILE)
    _self_check(source, target)


def _export(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    class SentenceEncoder(torch.nn.Module):
        """Transformer → mean pooling → L2 normalisation, as the sentence-transformers folder."""

        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    # "eager" attention: the optimizer's attention fusion knows its graph, not SDPA's.
    encoder = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    # One padded row, so that the trace cannot take the "no padding" shortcut for good.
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 8:] = 0
    example = (torch.ones(2, 16, dtype=torch.long), mask)
    dynamic = {0: "batch", 1: "tokens"}
    # The exporter warns about tracing Python conditions of the attention mask; the traced
    # graph is checked against torch on texts of several lengths (_self_check) instead.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            SentenceEncoder(encoder).eval(),
            example,
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )


def _fuse(source: Path, exported: Path, target: Path) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    options = FusionOptions("bert")
    # Fused, the embedding table (250k tokens × 384, 380 MB) would stay fp32 inside the
    # fused kernel; left as a Gather it is quantised to 95 MB, at no measurable speed cost.
    options.enable_embed_layer_norm = False
    model = optimize_model(
        str(exported),
        model_type="bert",
        num_heads=config["num_attention_heads"],
        hidden_size=config["hidden_size"],
        optimization_options=options,
    )
    fused = model.get_fused_operator_statistics()
    if not fused.get("Attention"):
        raise OnnxModelError(f"the optimizer fused no attention layer ({fused})")
    logger.info("fused operators: %s", {name: n for name, n in fused.items() if n})
    model.save_model_to_file(str(target))


def _quantize(fused: Path, target: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs advice to pre-process on the root logger on every call; the
    # fused graph is already what that advice produces, so the call runs without it.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            fused,
            target,
            op_types_to_quantize=QUANTIZED_OPS,
            per_channel=True,
            weight_type=QuantType.QInt8,
            # The fused kernels come from onnxruntime's own domain, where ONNX's shape
            # inference finds no types: every tensor here is float.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _self_check(source: Path, folder: Path) -> None:
    """Embed a few lines with the new graph and the torch model; refuse a graph that differs."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(source), device="cpu")
    candidate = OnnxEmbedder(folder, folder.name)
    probes = list(_PROBES)
    for prefix, encode in (
        (QUERY_PREFIX, candidate.encode_queries),
        (PASSAGE_PREFIX, candidate.encode_passages),
    ):
        expected = reference.encode(
            [prefix + probe for probe in probes], normalize_embeddings=True, show_progress_bar=False
        )
        cosines = np.sum(encode(probes) * expected, axis=1)
        if cosines.min() < _MIN_PROBE_COSINE:
            raise OnnxModelError(
                f"the ONNX model disagrees with the torch model (cosine {cosines.min():.4f})"
            )


def _write_marker(folder: Path, source: Path, *, seconds: float) -> None:
    # Written last: a folder without it is never taken for a finished build.
    info = {
        "recipe_version": INT8_RECIPE_VERSION,
        "model": INT8_MODEL_NAME,
        "quantized_ops": QUANTIZED_OPS,
        "source": read_marker(source),
        "seconds": round(seconds, 1),
        "versions": {p: metadata.version(p) for p in ("torch", "onnx", "onnxruntime")},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (folder / MARKER_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
