"""The lighter tokenizer cuts every text exactly as the model's whole tokenizer.json does."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from retriever.modelbuild.onnx_export import ensure_int8_model
from retriever.models import PASSAGE_PREFIX, QUERY_PREFIX
from retriever.script_tokenizer import COMMON, HAN, SCRIPTS, ScriptTokenizer

CACHE = Path(__file__).resolve().parents[2] / ".cache"
DATASETS = Path(__file__).resolve().parents[2] / "bench" / "datasets"
MAX_TOKENS = 512
PREFIXES = (QUERY_PREFIX, PASSAGE_PREFIX)
# Code point ranges texts are drawn from: the kept scripts and others (Cyrillic, combining
# marks, Hangul, emoji), so both tokenizers and the switch between them are exercised.
RANGES = [
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x2000, 0x2BFF),
    (0x3000, 0x33FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x1F300, 0x1F64F),
]
SPECIAL = [" ", "  ", "\n", "\t", "<mask>", "<s>", "</s>", "<unk>"]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the int8 model's tokenizer, so the test writes nothing into the cache."""
    folder = tmp_path_factory.mktemp("model")
    shutil.copyfile(ensure_int8_model(CACHE) / "tokenizer.json", folder / "tokenizer.json")
    return folder


def evaluation_texts(limit: int) -> list[str]:
    """Passages, titles and questions of every evaluation set, as a build and a search see them."""
    texts = []
    for corpus in sorted(DATASETS.glob("*/corpus.jsonl")):
        for line in corpus.read_text(encoding="utf-8").splitlines()[:limit]:
            record = json.loads(line)
            texts += ["passage: " + record["text"], "passage: " + record.get("title", "")]
    for queries in sorted(DATASETS.glob("*/queries.jsonl")):
        for line in queries.read_text(encoding="utf-8").splitlines()[:limit]:
            texts.append("query: " + json.loads(line)["text"])
    return texts


def copy_of(model_folder: Path, folder: Path) -> Path:
    """A model folder holding only tokenizer.json."""
    folder.mkdir()
    shutil.copyfile(model_folder / "tokenizer.json", folder / "tokenizer.json")
    return folder


def ids_of(tokenizer: ScriptTokenizer, text: str) -> list[int]:
    return [int(i) for i in tokenizer.encode_batch([text])[0]]


def random_texts(count: int) -> list[str]:
    rng = random.Random(7)
    texts = ["", "字" * 2_000]
    for _ in range(count):
        ranges = rng.sample(RANGES, rng.choice([1, 1, 2, 3]))
        texts.append(
            "".join(
                chr(rng.randint(*rng.choice(ranges)))
                if rng.random() < 0.85
                else rng.choice(SPECIAL)
                for _ in range(rng.randint(1, 80))
            )
        )
    return texts


@pytest.mark.model
def test_cuts_as_the_whole_tokenizer(model_folder: Path) -> None:
    tokenizer = ScriptTokenizer(model_folder, MAX_TOKENS, PREFIXES)
    assert all((model_folder / script.tokenizer_file).is_file() for script in SCRIPTS)
    assert tokenizer._kept[HAN] is not None  # the lightest is in use
    whole = tokenizer.whole()
    texts = evaluation_texts(2_000) + random_texts(5_000)
    texts += [prefix + text for prefix in PREFIXES for text in random_texts(1_000)]
    routed = [tokenizer._script_of(text) for text in texts]
    assert routed.count(HAN) > 2_000 and routed.count(COMMON) > 2_000 and None in routed
    ours = tokenizer.encode_batch(texts)
    reference = whole.encode_batch(texts)
    differing = [t for t, a, b in zip(texts, ours, reference, strict=True) if list(a) != b.ids]
    assert differing == []
    assert max(len(ids) for ids in ours) == MAX_TOKENS
    assert tokenizer._kept[COMMON] is not None  # Latin letters took the larger one


@pytest.mark.model
def test_the_larger_tokenizer_is_read_only_when_a_text_needs_it(model_folder: Path) -> None:
    tokenizer = ScriptTokenizer(model_folder, MAX_TOKENS, PREFIXES)
    assert tokenizer._kept[HAN][0].get_vocab_size() < 40_000
    tokenizer.encode_batch(["query: 办公室主任的直接上级是谁？", "passage: 满１０年，年假15天。"])
    assert COMMON not in tokenizer._kept and tokenizer._whole is None
    tokenizer.encode_batch(["query: 行政助理会用Excel吗"])
    assert tokenizer._kept[COMMON][0].get_vocab_size() > 130_000 and tokenizer._whole is None


@pytest.mark.model
def test_kept_files_are_remade_when_damaged_or_stale(model_folder: Path) -> None:
    texts = ["行政助理", "Excel 表格"]  # one for each kept tokenizer
    expected = [ids_of(ScriptTokenizer(model_folder, MAX_TOKENS), text) for text in texts]
    for script in SCRIPTS:
        (model_folder / script.tokenizer_file).write_text("{damaged", encoding="utf-8")
        (model_folder / script.ids_file).write_bytes(b"not a numpy file")
    assert [ids_of(ScriptTokenizer(model_folder, MAX_TOKENS), t) for t in texts] == expected
    for script in SCRIPTS:
        assert json.loads((model_folder / script.tokenizer_file).read_text(encoding="utf-8"))
    # A map that does not fit the kept tokenizer is not used.
    for script in SCRIPTS:
        np.savez(
            model_folder / script.ids_file,
            ids=np.arange(3),
            source=np.load(model_folder / script.ids_file)["source"],
        )
    assert [ids_of(ScriptTokenizer(model_folder, MAX_TOKENS), t) for t in texts] == expected
    # A tokenizer.json changed since (its size or time) makes them anew.
    (model_folder / "tokenizer.json").touch()
    stale = [(model_folder / script.ids_file).stat().st_mtime_ns for script in SCRIPTS]
    ScriptTokenizer(model_folder, MAX_TOKENS)
    assert [(model_folder / s.ids_file).stat().st_mtime_ns for s in SCRIPTS] != stale


@pytest.mark.model
def test_files_that_cannot_be_written_cost_only_the_lighter_load(
    model_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_of(model_folder, tmp_path / "model")
    (folder / HAN.tokenizer_file).mkdir()  # in the way: cannot be replaced by a file
    tokenizer = ScriptTokenizer(folder, MAX_TOKENS)
    assert "cannot keep the lighter tokenizer" in caplog.text
    assert ids_of(tokenizer, "行政助理") == tokenizer.whole().encode("行政助理").ids


@pytest.mark.model
def test_a_read_only_folder_keeps_the_whole_tokenizer(
    model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_of(model_folder, tmp_path / "read-only")
    monkeypatch.setattr("retriever.script_tokenizer.os.access", lambda path, mode: False)
    tokenizer = ScriptTokenizer(folder, MAX_TOKENS)
    assert tokenizer._kept[HAN] is None and not (folder / HAN.ids_file).exists()
    assert ids_of(tokenizer, "行政助理") == tokenizer.whole().encode("行政助理").ids
