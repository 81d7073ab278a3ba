"""Chunking invariants over literal Chinese text: offsets exact, sizes bounded, headings kept."""

from __future__ import annotations

import itertools

import pytest

from retriever.chunking import chunk_text, is_heading, split_sentences
from retriever.config import ChunkSettings
from retriever.readers import MarkedUnit

QA_PAGE = (
    "办公室主任和行政主管哪个大?\n"
    "办公室主任和行政主管,在没有特定公司的前提下,根本无法进行比较。"
    "办公室主任的职责大致包括承办职责、参谋职责、管理职责、协调职责、领导指挥职责五个方面。\n"
    "参谋职责\n"
    "参谋职责指办公室主任在辅助领导决策过程中所应有的职能和应尽的责任!决策是领导者的基本职能;"
    "办公室主任应当成为\u201c参谋长\u201d。\n"
)
LONG_SENTENCE = "这是一个很长的句子," * 60 + "最后结束。"


def check_invariants(text: str, settings: ChunkSettings) -> None:
    chunks = chunk_text(text, settings)
    assert chunks, "text with content must give chunks"
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
        assert len(chunk.text) <= settings.max_chars
    starts = [chunk.start for chunk in chunks]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))


@pytest.mark.parametrize("max_chars", [20, 40, 80, 300])
@pytest.mark.parametrize("text", [QA_PAGE, LONG_SENTENCE, QA_PAGE * 3 + LONG_SENTENCE])
def test_chunks_are_exact_bounded_slices(text: str, max_chars: int) -> None:
    check_invariants(text, ChunkSettings(max_chars=max_chars))


def test_real_corpus_invariants() -> None:
    from conftest import CORPUS

    for path in CORPUS.glob("*.txt"):
        check_invariants(path.read_text(encoding="utf-8"), ChunkSettings())


def test_heading_travels_with_the_answer_not_alone() -> None:
    chunks = chunk_text(QA_PAGE, ChunkSettings(max_chars=300))
    assert [c.heading for c in chunks] == ["办公室主任和行政主管哪个大?", "参谋职责"]
    assert chunks[0].text.startswith("办公室主任和行政主管,在没有特定公司的前提下")
    assert all(c.text != c.heading for c in chunks), "a bare heading line is never a chunk"


def test_numbered_heading_keeps_its_parent() -> None:
    text = (
        "办公室主任的职责\n承办职责指办公室主任对领导决策的贯彻和实施。\n"
        "1.承办领导交办的事项\n领导决策有时是统一研究,分头落实。\n"
    )
    headings = [c.heading for c in chunk_text(text)]
    assert headings == ["办公室主任的职责", "办公室主任的职责 › 1.承办领导交办的事项"]


def test_sentences_split_on_full_and_half_width_ends() -> None:
    text = "第一句。第二句!第三句?第四句;第五句！第六句？第七句；末尾"
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == [
        "第一句。",
        "第二句!",
        "第三句?",
        "第四句;",
        "第五句！",
        "第六句？",
        "第七句；",
        "末尾",
    ]


def test_closing_quote_stays_with_its_sentence() -> None:
    text = "他说:\u201c好的。\u201d然后走了。"
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == ["他说:\u201c好的。\u201d", "然后走了。"]


def test_long_sentence_is_cut_at_commas() -> None:
    chunks = chunk_text(LONG_SENTENCE, ChunkSettings(max_chars=50))
    assert all(c.text.endswith(",") or c.text.endswith("。") for c in chunks)


@pytest.mark.parametrize(
    ("line", "following", "expected"),
    [
        ("参谋职责", "参谋职责指办公室主任在辅助领导决策过程中所应有的职能。", True),
        (
            "办公室主任和行政主管哪个大?",
            "办公室主任和行政主管,在没有特定公司的前提下,无法比较。",
            True,
        ),
        ("# 标题", "短", True),
        ("这是一个完整的句子。", "后面是一段更长的正文内容,用来说明这个句子不是标题。", False),
        (
            "办公室主任履行其职责,有其独特的便利和优势:",
            "1、办公室主任工作与领导层的工作同步运行与操作。",
            False,
        ),
        ("参谋职责", None, False),
    ],
)
def test_heading_detection(line: str, following: str | None, expected: bool) -> None:
    assert is_heading(line, following) is expected


def test_blank_text_gives_no_chunks() -> None:
    assert chunk_text("  \n\n \t") == []


def test_settings_refuse_tiny_chunks() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        ChunkSettings(max_chars=5)


def test_numbered_siblings_are_siblings() -> None:
    """Issue 11: "二、" used to nest under "一、" when no plain heading came before them."""
    text = (
        "一、报销时限\n费用发生后三十日内提交报销单，逾期不予受理。\n"
        "（一）差旅费\n差旅费在出差结束后十日内报销，附行程单。\n"
        "二、报销标准\n住宿费按城市等级执行，一线城市每晚不超过五百元。\n"
        "三、审批\n五千元以上的报销须经部门负责人和财务总监两级审批。\n"
    )
    assert [c.heading for c in chunk_text(text)] == [
        "一、报销时限",
        "一、报销时限 › （一）差旅费",
        "二、报销标准",
        "三、审批",
    ]


def test_regulation_numbering_nests_chapters_articles_and_items() -> None:
    text = (
        "第一章 总则\n为规范公司费用报销，根据国家有关规定制定本办法。\n"
        "第一条 适用范围\n本办法适用于公司全体员工的日常费用报销。\n"
        "一、差旅费\n出差结束后十日内报销，附行程单和住宿发票。\n"
        "第二条 报销时限\n费用发生后三十日内提交报销单，逾期不予受理。\n"
        "第二章 审批\n五千元以上的报销须经部门负责人和财务总监两级审批。\n"
    )
    assert [c.heading for c in chunk_text(text)] == [
        "第一章 总则",
        "第一章 总则 › 第一条 适用范围",
        "第一章 总则 › 第一条 适用范围 › 一、差旅费",
        "第一章 总则 › 第二条 报销时限",
        "第二章 审批",
    ]


def test_markdown_levels_nest() -> None:
    text = (
        "# 水果\n水果富含维生素。\n## 苹果\n苹果产于温带。\n"
        "## 香蕉\n香蕉产于热带。\n# 蔬菜\n蔬菜要多吃。\n"
    )
    assert [c.heading for c in chunk_text(text)] == ["水果", "水果 › 苹果", "水果 › 香蕉", "蔬菜"]


def test_marked_headings_rank_above_headings_found_by_look() -> None:
    """Levels a file marks (Word's heading styles) are headings whatever their look, and a
    numbered line found by its look sits inside them."""
    text = (
        "报销制度的总体要求和适用范围。\n本制度适用于公司全体员工的日常费用报销。\n"
        "1.时限\n费用发生后三十日内提交报销单，逾期不予受理。\n"
        "审批\n五千元以上的报销须经两级审批。\n"
    )
    marked = [(0, 1), (text.index("审批\n"), 1)]
    chunks = chunk_text(text, marked_headings=marked)
    assert [c.heading for c in chunks] == [
        "报销制度的总体要求和适用范围。",
        "报销制度的总体要求和适用范围。 › 1.时限",
        "审批",
    ]
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


def _unit(text: str, line: str, kind: str, caption: str = "") -> MarkedUnit:
    start = text.index(line)
    return MarkedUnit(start, start + len(line), kind, caption)


def test_a_marked_row_is_a_passage_of_its_own_and_never_a_heading() -> None:
    """A short row before a longer one looks like a heading line; marked, it is a row, cited
    by itself under its section and its table's caption."""
    rows = ["婚假：3天", "产假：158天，工资全额发放，须附出生证明"]
    text = (
        f"一、假期\n各类假期规定如下，请假须提前申请。\n{rows[0]}\n{rows[1]}\n"
        "其他事项请咨询人事部。\n"
    )
    units = [_unit(text, row, "row", "表1 假期") for row in rows]
    chunks = chunk_text(text, marked_units=units)
    assert [(c.text, c.heading) for c in chunks] == [
        ("各类假期规定如下，请假须提前申请。", "一、假期"),
        (rows[0], "一、假期 › 表1 假期"),
        (rows[1], "一、假期 › 表1 假期"),
        ("其他事项请咨询人事部。", "一、假期"),
    ]
    # Unmarked, the first row is taken for the heading of what follows it.
    assert chunk_text(text)[1].heading == rows[0]


def test_marked_list_items_stay_with_their_list_and_are_never_headings() -> None:
    items = ["1. 提交申请", "2. 部门负责人审批，三个工作日内答复"]
    text = f"请假流程\n{items[0]}\n{items[1]}\n"
    units = [_unit(text, item, "item") for item in items]
    [chunk] = chunk_text(text, marked_units=units)
    assert chunk.heading == "请假流程" and chunk.text == "\n".join(items)
    # Unmarked, the short first item is taken for the heading of the longer second.
    assert chunk_text(text)[-1].heading == f"请假流程 › {items[0]}"
