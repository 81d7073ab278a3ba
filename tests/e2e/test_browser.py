"""The page in a real browser: Debian's headless Chromium driven by Playwright.

Playwright cannot download its own browser here, so it drives /usr/bin/chromium, which
.ci/run installs (with fonts-noto-cjk, without which Chinese renders as boxes). Set
RETRIEVER_SCREENSHOTS=docs to save the README's screenshot (docs/screenshot.png) and one per
window size (docs/screenshot-1366.png, docs/screenshot-390.png) as well.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_server_stub import Reply, Stub, model_server
from playwright.sync_api import expect
from web_server import running_app

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "run the install step of .ci/run (apt-get install chromium chromium-driver fonts-noto-cjk; "
    "pip install -r requirements-web-test.txt)"
)
EXAMPLE = "办公室主任和行政主管哪个大?"
ANSWER_SECONDS = 60
REBUILD_SECONDS = 120


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # A missing browser fails rather than skips: these tests are the only check of the page.
    if not CHROMIUM.exists() or shutil.which("chromedriver") is None:
        pytest.fail(f"Chromium or chromedriver is not installed: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright is not installed: {INSTALL_HINT}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def build_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, the server's builds hold before embedding (open by default)."""
    return tmp_path_factory.mktemp("gate") / "closed"


@pytest.fixture(scope="module")
def model() -> Iterator[Stub]:
    """The model server the page's generated answers come from: a scripted one."""
    with model_server() as stub:
        yield stub


@pytest.fixture(scope="module")
def server(
    real_index: Path, build_gate: Path, model: Stub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_app(
        tmp_path_factory.mktemp("browser"),
        real_index,
        gate=build_gate,
        RETRIEVER_GENERATE_URL=model.url,
        RETRIEVER_GENERATE_MODEL="stub",
    ) as url:
        yield url


@pytest.fixture
def gate(build_gate: Path) -> Iterator[Path]:
    """The build gate, for a test to close (touch) and open (unlink); open after the test.
    Closed, it holds questions too, whose answer check embeds sentences."""
    yield build_gate
    build_gate.unlink(missing_ok=True)


@pytest.fixture
def page(browser, server: str):
    # A browser that prefers English: the page is Chinese all the same, Gradio's own labels
    # included (web/locale.py).
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server)
    page.locator("#index-info .qa-info").wait_for()
    yield page
    context.close()


def ask(page, question: str):
    """Type a question into the chat and return the locator of its answer."""
    answers = page.locator("#chat .qa")
    before = answers.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    answer = answers.nth(before)
    answer.wait_for(timeout=ANSWER_SECONDS * 1000)
    return answer


def upload(page, files: list[tuple[str, bytes]]) -> str:
    """Upload files through the page, add them, and return the outcome text after the build."""
    start_upload(page, files)
    outcome = page.locator("#outcome .qa-outcomes")
    outcome.wait_for(timeout=REBUILD_SECONDS * 1000)
    return outcome.inner_text()


def start_upload(page, files: list[tuple[str, bytes]]) -> None:
    """Upload files through the page and click to add them, without waiting for the build."""
    page.locator("#upload input[type=file]").set_input_files(
        [{"name": name, "mimeType": "text/plain", "buffer": data} for name, data in files]
    )
    for name, _ in files:
        # The download link appears once the file has reached the server.
        page.locator(f'#upload a[download="{name}"]').wait_for()
    page.locator("#add").click()


def remove(page, name: str) -> str:
    """Remove a document through the page; the outcome text after the build."""
    page.locator("#chosen input").click()
    page.get_by_role("option", name=name).click()
    page.get_by_role("button", name="删除并重建索引").click()
    removed = page.locator("#outcome").get_by_text(f"{name} 已从文档库删除")
    removed.wait_for(timeout=REBUILD_SECONDS * 1000)
    return page.locator("#outcome").inner_text()


def test_example_question_shows_the_cited_passage(page, tmp_path: Path) -> None:
    info = page.locator("#index-info").inner_text()
    assert re.search(r"1 篇文档 · \d+ 个段落 · 模型 multilingual-e5-small · 建于", info)
    page.get_by_text(EXAMPLE).first.click()
    answer = page.locator("#chat .qa").first
    answer.wait_for(timeout=ANSWER_SECONDS * 1000)
    text = answer.locator(".qa-answer").inner_text()
    assert "在没有特定公司的前提下" in text
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert markers
    for number in markers:
        source = answer.locator(f'.qa-source[value="{number}"]')
        assert source.locator(".qa-where").inner_text().startswith(f"[{number}]")
        assert "office_director_vs_admin_assistant.txt" in source.inner_text()
        highlighted = source.locator("mark").all_inner_texts()
        assert highlighted and all(sentence in text for sentence in highlighted)
    answer.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=tmp_path / "answer.png")


def test_a_follow_up_is_completed_from_the_conversation(page) -> None:
    ask(page, "办公室主任的直接上级是谁?")
    answer = ask(page, "那行政助理呢?")
    assert "按上文理解为：行政助理的直接上级是谁?" in answer.inner_text()
    assert "人事行政经理" in answer.locator(".qa-answer").inner_text()


def test_a_generated_answer_streams_and_is_checked_and_can_be_stopped(page, model: Stub) -> None:
    page.get_by_label("模型撰写", exact=True).check()
    model.play(Reply(["办公室主任的直接上级是", "公司高层总经理或副总[1]。"], first_delay=3.0))
    answer = ask(page, "办公室主任的直接上级是谁?")  # the extractive answer, at once
    draft = page.locator("#chat .qa-draft").last
    draft.get_by_text("模型正在撰写").wait_for()  # the model's draft under it meanwhile
    assert answer.locator(".qa-answer").count() == 1
    kind = page.locator("#chat .qa-kind").last
    kind.get_by_text("由模型撰写，每句都已与它所引的段落核对").wait_for(
        timeout=ANSWER_SECONDS * 1000
    )
    assert (
        "办公室主任的直接上级是公司高层总经理或副总[1]"
        in page.locator("#chat .qa").last.inner_text()
    )
    # A slow model can be stopped: the extractive answer stays, the box takes questions again.
    model.play(Reply(["不会写完[1]。"], first_delay=15.0))
    ask(page, "行政助理的职责是什么?")
    page.locator("#chat .qa-draft").last.get_by_text("模型正在撰写").wait_for()
    page.get_by_role("button", name="停止生成").click()
    page.locator("#question textarea:not([disabled])").wait_for(timeout=10_000)
    assert "由模型撰写" not in page.locator("#chat .qa").last.inner_text()
    page.get_by_label("模型撰写", exact=True).uncheck()


def test_a_question_the_corpus_cannot_answer_says_so(page) -> None:
    answer = ask(page, "量子计算机的原理是什么?")
    assert "没有能回答这个问题的内容" in answer.locator(".qa-not-found").inner_text()
    assert "最接近的段落（不是答案）" in answer.inner_text()
    assert answer.locator(".qa-answer").count() == 0 and answer.locator("mark").count() == 0
    assert answer.locator(".qa-source").count() >= 1


@pytest.mark.parametrize(
    ("question", "refusal"),
    [
        ("   ", "请先输入问题"),
        ("\u200b\u3000", "请先输入问题"),  # a zero-width space shows nothing either
        ("问" * 1001, "问题有 1001 个字，超过了 1000 字的上限"),
    ],
)
def test_an_unsearchable_question_is_refused_in_chinese_without_a_bubble(
    page, question: str, refusal: str
) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator("#question").get_by_text(refusal).wait_for()
    assert page.locator("#chat .message").count() == 0
    answer = ask(page, EXAMPLE)  # the next question goes through
    assert "在没有特定公司的前提下" in answer.inner_text()


def test_copy_puts_the_answer_and_its_sources_on_the_clipboard_as_text(window) -> None:
    answer = ask(window, EXAMPLE)
    shown = answer.locator(".qa-answer").inner_text()
    button = answer.get_by_role("button", name="复制答案和来源")
    button.click()
    window.get_by_role("button", name="已复制").wait_for()
    copied = window.evaluate("navigator.clipboard.readText()")
    assert "<" not in copied and "qa-" not in copied
    first, sources = copied.split("\n\n来源\n", 1)
    assert first == shown and re.search(r"。\[1\]", first)
    source = answer.locator('.qa-source[value="1"]')
    where = source.locator(".qa-where").inner_text()
    assert sources.startswith(f"{where}\n{source.locator('.qa-passage').inner_text()}")
    assert re.match(r"\[1\] office_director_vs_admin_assistant\.txt · .+ · 第 \d+–\d+ 字", where)
    assert "其他相关段落" not in copied


def test_the_page_is_chinese_for_a_browser_that_prefers_english(page) -> None:
    assert page.evaluate("[document.documentElement.lang, navigator.language]") == [
        "zh-CN",
        "zh-CN",
    ]
    answers = [ask(page, EXAMPLE).inner_text()]  # the chat's own buttons show under it
    page.locator("#chat").hover()
    text = page.locator("body").inner_text()
    for answer in answers:  # passages are the documents' own words
        text = text.replace(answer, "")
    labels = page.evaluate(
        "[...document.querySelectorAll('[title], [placeholder]')]"
        ".map(e => (e.title || '') + ' ' + (e.placeholder || '')).join(' ')"
    )
    for name in ["点击上传", "API 说明", "设置", "清空对话"]:
        assert name in text + labels
    # What may stay in Latin letters: file names and types, the model, Gradio's name, API.
    allowed = re.compile(r"\S+\.(txt|md|pdf|docx|html|htm)\b|\.(txt|md|pdf|docx|html|htm)\b")
    rest = allowed.sub("", text + " " + labels)
    rest = re.sub(r"multilingual-e5-small|Gradio|API|UTC|KB|MB", "", rest)
    assert not re.findall(r"[A-Za-z]{2,}", rest)
    # Gradio's progress lines for a waiting event, which no catalogue translates, as Gradio
    # writes them: a line added, and its text changed in place.
    shown = page.evaluate(
        """async () => {
            const line = document.createElement("div");
            line.className = "progress-text";
            line.append(document.createTextNode("queue: 2/3 |"));
            const answer = document.createElement("p");
            answer.textContent = "processing |";
            document.body.append(line, answer);
            await new Promise((done) => setTimeout(done, 50));
            const added = line.textContent;
            line.firstChild.data = "processing |";
            await new Promise((done) => setTimeout(done, 50));
            return [added, line.textContent, answer.textContent];
        }"""
    )
    assert shown == ["排队：第 2 位，共 3 位 |", "处理中 |", "processing |"]


def test_an_uploaded_gbk_file_is_answerable(page) -> None:
    text = "差旅费报销\n差旅费报销须在出差结束后十五个工作日内提交，由财务部审核后发放。\n"
    outcome = upload(page, [("travel_gbk.txt", text.encode("gbk"))])
    assert "travel_gbk.txt 已加入文档库" in outcome and "索引已重建" in outcome
    assert "travel_gbk.txt" in page.locator("#documents").inner_text()
    assert "2 篇文档" in page.locator("#index-info").inner_text()
    answer = ask(page, "差旅费报销要在多少天内提交?")
    assert "十五个工作日" in answer.locator(".qa-answer").inner_text()
    assert "travel_gbk.txt" in answer.locator('.qa-source[value="1"]').inner_text()


def test_an_uploaded_script_shows_as_text_and_never_runs(page) -> None:
    markup = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    text = f"门禁规定\n紫藤花园的门禁密码每季度更换一次。{markup}\n"
    outcome = upload(page, [("xss.txt", text.encode())])
    assert "索引已重建" in outcome
    answer = ask(page, "紫藤花园的门禁密码多久更换一次?")
    assert markup in answer.locator('.qa-source[value="1"] .qa-passage').inner_text()
    assert answer.locator("script, img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_bad_files_get_a_message_and_change_nothing(page) -> None:
    documents = page.locator("#documents").inner_text()
    damaged = b"%PDF-1.4 this is not the rest of a PDF"
    outcome = upload(
        page, [("empty.txt", b""), ("tool.exe", b"MZ\x90\x00"), ("damaged.pdf", damaged)]
    )
    assert "empty.txt 是空文件" in outcome
    assert "不支持的文件类型 .exe" in outcome
    assert "damaged.pdf 无法作为文档读取：不是可读的 PDF：文件已损坏，或者不是 PDF" in outcome
    assert "没有文件被加入" in outcome
    # The list as it was, once the page's state update after the outcome has shown it (till
    # then Gradio may show its timer over the list).
    expect(page.locator("#documents")).to_have_text(documents, use_inner_text=True)


def test_a_removed_document_goes_to_the_trash_and_comes_back(page) -> None:
    upload(page, [("to_remove.txt", "临时文件\n这份临时文件里写着蓝鲸会议室在三楼。\n".encode())])
    outcome = remove(page, "to_remove.txt")
    assert "to_remove.txt 已从文档库删除，移到了回收站" in outcome
    assert "索引已重建，to_remove.txt 的内容不会再出现在答案里。" in outcome
    assert "to_remove.txt" not in page.locator("#documents").inner_text()
    assert "被删除" in page.locator("#trash").get_by_role("row", name="to_remove.txt").inner_text()
    answer = ask(page, "蓝鲸会议室在几楼?")
    assert "to_remove.txt" not in answer.inner_text()

    page.locator("#trashed input").click()
    page.get_by_role("option", name=re.compile(r"^to_remove\.txt（")).click()
    page.get_by_role("button", name="恢复并重建索引").click()
    restored = page.locator("#outcome").get_by_text("to_remove.txt 已从回收站恢复")
    restored.wait_for(timeout=REBUILD_SECONDS * 1000)
    page.locator("#outcome").get_by_text("索引已重建，to_remove.txt 又可以提问了。").wait_for()
    assert "to_remove.txt" in page.locator("#documents").inner_text()
    assert "回收站是空的" in page.locator("#trash").inner_text()
    answer = ask(page, "蓝鲸会议室在几楼?")
    assert "to_remove.txt" in answer.inner_text()


def test_a_rebuild_shows_on_the_index_line_and_its_bar_starts_at_reading(page, gate: Path) -> None:
    rules = "".join(
        f"第{n}条\n职工第{n}项补贴每月{n}百元，由人事部按季度核发。\n\n" for n in range(30)
    )
    info = page.locator("#index-info")
    # Every text the progress area shows, however briefly.
    page.evaluate(
        """() => {
          const outcome = document.querySelector("#outcome");
          window.__progress = [];
          new MutationObserver(() => window.__progress.push(outcome.innerText)).observe(
            outcome, {childList: true, subtree: true, characterData: true});
        }"""
    )
    gate.touch()
    start_upload(page, [("allowances.txt", rules.encode())])
    # The build holds before embedding, however fast this machine is, until let go.
    info.get_by_text(re.compile(r"正在重建索引（计算向量 0/\d+）")).wait_for(
        timeout=REBUILD_SECONDS * 1000
    )
    gate.unlink()
    page.locator("#outcome").get_by_text("索引已重建").wait_for(timeout=REBUILD_SECONDS * 1000)
    progress = [text for text in page.evaluate("window.__progress") if "正在重建索引" in text]
    assert "正在重建索引：读取文档" in progress[0]
    assert not [text for text in progress if re.search(r"计算向量 0/\d+ - [1-9]", text)]
    info.get_by_text(re.compile(r"建于 [^·]+$")).wait_for()  # the rebuild is over
    assert "正在重建索引" not in info.inner_text()
    # Leave the index as the other tests expect it.
    assert "allowances.txt 的内容不会再出现在答案里" in remove(page, "allowances.txt")


# ------------------------------------------------------------------- citations and feedback

WINDOWS = {"1366x768": (1366, 768), "390x844": (390, 844)}


@pytest.fixture(params=list(WINDOWS))
def window(request, browser, server: str):
    """The page in a laptop's window and in a phone's."""
    width, height = WINDOWS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server)
    page.locator("#index-info .qa-info").wait_for()
    yield page
    context.close()


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


def test_a_marker_opens_its_source_with_the_quoted_sentence_highlighted(window) -> None:
    answer = ask(window, EXAMPLE)
    quoted = answer.locator('.qa-source[value="1"] mark').all_inner_texts()
    position = answer.locator('.qa-source[value="1"] .qa-position').inner_text()
    answer.locator(".qa-cite").first.click()
    preview = window.locator("#source-preview .qa-preview")
    preview.locator("mark").first.wait_for()
    assert preview.locator("mark").all_inner_texts() == quoted
    assert "在没有特定公司的前提下" in quoted[0]
    assert in_view(window, preview.locator("mark").first)
    where = preview.locator(".qa-preview-where").inner_text()
    assert "office_director_vs_admin_assistant.txt" in where and position in where
    # The whole passage in its surroundings: text before and after it, and how far it goes.
    passage = "".join(preview.locator(".qa-preview-passage").all_inner_texts())
    text = preview.locator(".qa-preview-text").inner_text()
    assert passage == answer.locator('.qa-source[value="1"] .qa-passage').inner_text()
    assert text.index(passage) > 1000 and len(text) > len(passage) + 1000
    assert re.search(r"原文第 \d+–\d+ 字，全文共 \d+ 字", preview.inner_text())
    window.keyboard.press("Escape")
    preview.wait_for(state="detached")
    assert answer.locator('.qa-source[value="1"]').is_visible()
    # A folded passage opens as well, from its own 查看原文.
    answer.locator(".qa-more summary").click()
    answer.locator(".qa-more .qa-source .qa-open").first.click()
    preview.locator(".qa-preview-passage").first.wait_for()
    assert preview.locator("mark").count() == 0  # the answer quotes nothing from it
    preview.get_by_role("button", name="关闭").click()
    preview.wait_for(state="detached")


def test_a_thumbs_up_is_stored_with_its_comment(window, server: str) -> None:
    import httpx

    answer = ask(window, EXAMPLE)
    up = answer.get_by_role("button", name="👍 有用")
    up.click()
    answer.locator(".qa-feedback-note").get_by_text("已记录").wait_for()
    answer_id = up.get_attribute("value")
    assert "qa-rated" in up.get_attribute("class")

    def stored() -> list[dict]:
        with httpx.Client(base_url=server, timeout=60) as client:
            archive = client.get("/api/feedback/export")
        assert archive.status_code == 200
        with zipfile.ZipFile(io.BytesIO(archive.content)) as files:
            lines = files.read("feedback/queries.jsonl").decode().splitlines()
        return [q for q in map(json.loads, lines) if q["id"] == f"fb-{answer_id}"]

    [query] = stored()
    assert query["rating"] == "good" and query["text"] == EXAMPLE and query["comment"] == ""
    answer.locator(".qa-feedback-form textarea").fill("引用的句子正好回答了问题")
    answer.get_by_role("button", name="提交说明").click()
    answer.locator(".qa-feedback-note").get_by_text("说明已记录").wait_for()
    assert answer.locator(".qa-feedback-form").count() == 0
    [query] = stored()
    assert query["comment"] == "引用的句子正好回答了问题"


def test_a_source_preview_shows_markup_as_text(page) -> None:
    markup = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    text = f"停车规定\n访客车辆停在东门外的临时车位。{markup}\n"
    assert "索引已重建" in upload(page, [("parking.txt", text.encode())])
    answer = ask(page, "访客车辆停在哪里?")
    answer.locator('.qa-source[value="1"] .qa-open').click()
    preview = page.locator("#source-preview .qa-preview-text")
    preview.locator("mark").first.wait_for()
    assert markup in preview.inner_text()
    assert page.locator("#source-preview script, #source-preview img").count() == 0
    assert page.evaluate("window.__xss") is None
    page.keyboard.press("Escape")
    assert "parking.txt 的内容不会再出现在答案里" in remove(page, "parking.txt")


# ------------------------------------------------------------------- layout and conversations

DIRECTOR = "办公室主任的直接上级是谁?"


def answered(page, question: str):
    """Ask, and wait until the question box takes the next question."""
    answer = ask(page, question)
    page.locator("#question textarea:enabled").wait_for()
    return answer


def assert_question_box_in_view(page) -> None:
    """The question box is on screen, and the page itself does not scroll."""
    assert in_view(page, page.locator("#question textarea"))
    scroll = page.evaluate("[window.scrollY, document.documentElement.scrollHeight]")
    assert scroll[0] == 0 and scroll[1] <= page.viewport_size["height"]


def test_the_question_box_stays_in_view_and_the_chat_scrolls_alone(window, tmp_path: Path) -> None:
    assert_question_box_in_view(window)
    answered(window, EXAMPLE)
    assert_question_box_in_view(window)
    width = window.viewport_size["width"]
    window.screenshot(path=tmp_path / f"answer-{width}.png")
    if folder := os.environ.get("RETRIEVER_SCREENSHOTS"):
        window.screenshot(path=Path(folder) / f"screenshot-{width}.png")
        if width == 1366:
            window.screenshot(path=Path(folder) / "screenshot.png")
    for question in [DIRECTOR, "那行政助理呢?", "行政助理每天要做哪些事?"]:
        answered(window, question)
        assert_question_box_in_view(window)
    # The conversation scrolls inside the chat, which ends above the question box.
    chat = window.locator("#chat .bubble-wrap")
    assert chat.evaluate("box => box.scrollHeight > box.clientHeight")
    chat_box = chat.bounding_box()
    assert chat_box["y"] + chat_box["height"] <= window.locator("#question").bounding_box()["y"]


def conversations(page):
    """The conversation list: beside the chat, or opened from the bar on a narrow screen."""
    if not page.locator("#conversations").is_visible():
        page.locator("#conversation-bar").get_by_role("button", name="对话记录").click()
    return page.locator("#conversations .qa-conversation")


def new_conversation(page) -> None:
    """Click 新对话: the list's, or on a narrow screen with the list closed, the bar's."""
    in_list = page.locator("#conversations .qa-new-conversation")
    in_bar = page.locator("#conversation-bar .qa-new-conversation")
    (in_list if in_list.is_visible() else in_bar).click()


def test_conversations_survive_a_reload_and_can_be_reopened_and_deleted(
    window, browser, server: str
) -> None:
    answered(window, DIRECTOR)
    window.reload()
    # The tab shows its conversation again, and a follow-up still reads it.
    window.locator("#chat .qa").first.wait_for()
    assert window.locator("#chat .message-row").first.inner_text() == DIRECTOR
    listed = conversations(window)
    assert listed.count() == 1
    assert listed.locator(".qa-conversation-title").inner_text() == DIRECTOR
    assert re.fullmatch(r"今天 \d{1,2}:\d{2}", listed.locator("time").inner_text())
    follow_up = answered(window, "那行政助理呢?")
    assert "按上文理解为：行政助理的直接上级是谁?" in follow_up.inner_text()

    new_conversation(window)
    window.locator("#chat .message-row").first.wait_for(state="detached")
    answered(window, EXAMPLE)
    titles = conversations(window).locator(".qa-conversation-title")
    assert titles.all_inner_texts() == [EXAMPLE, DIRECTOR]  # the newest first

    # Reopened from the list, a conversation goes on where it was.
    conversations(window).filter(has_text=DIRECTOR).locator(".qa-conversation-open").click()
    window.locator("#chat .message-row").nth(3).wait_for()
    assert window.locator("#chat .message-row").count() == 4
    follow_up = answered(window, "那总经理呢?")
    assert "按上文理解为：总经理的直接上级是谁?" in follow_up.inner_text()
    assert window.locator("#chat .message-row").count() == 6
    assert titles.all_inner_texts() == [DIRECTOR, EXAMPLE]

    # Deleting takes a second click; deleting the one shown empties the chat.
    delete = conversations(window).filter(has_text=EXAMPLE).get_by_role("button", name="删除")
    delete.click()
    delete = conversations(window).filter(has_text=EXAMPLE).get_by_role("button", name="确定删除")
    delete.click()
    assert titles.all_inner_texts() == [DIRECTOR]
    assert window.locator("#chat .message-row").count() == 6
    conversations(window).get_by_role("button", name="删除").click()
    conversations(window).get_by_role("button", name="确定删除").click()
    window.locator("#chat .message-row").first.wait_for(state="detached")
    assert conversations(window).count() == 0
    window.reload()
    window.locator("#index-info .qa-info").wait_for()
    assert window.locator("#chat .message-row").count() == 0
    assert conversations(window).count() == 0

    # Conversations stay in the browser that had them.
    answered(window, EXAMPLE)
    other = browser.new_context(viewport=window.viewport_size, locale="zh-CN")
    try:
        page = other.new_page()
        page.goto(server)
        page.locator("#index-info .qa-info").wait_for()
        assert conversations(page).count() == 0
        assert page.locator("#conversations").get_by_text("还没有对话").is_visible()
    finally:
        other.close()


def open_side(page) -> None:
    """The side panel: beside the chat, or opened from the bar on a narrow screen."""
    if not page.locator("#documents-title").is_visible():
        page.locator("#conversation-bar").get_by_role("button", name="我的文档").click()


def close_side(page) -> None:
    if page.locator(".qa-close-panel").first.is_visible():
        page.locator(".qa-close-panel").first.click()


def choose_base(page, name: str) -> None:
    page.locator("#base input").click()
    page.get_by_role("option", name=name, exact=True).click()


DEFAULT_LABEL = "默认知识库"


def manage_bases(page) -> None:
    """Open 管理知识库, where it is closed."""
    open_side(page)
    if not page.locator("#base-name input").is_visible():
        page.locator("#bases").get_by_text("管理知识库").click()


def create_base(page, name: str) -> None:
    manage_bases(page)
    page.locator("#base-name input").fill(name)
    page.locator("#create-base").click()
    page.locator("#base-outcome").get_by_text(f"已新建知识库「{name}」").wait_for()


def delete_base(page) -> None:
    """Delete the chosen base: a click, then a second one to confirm."""
    page.locator("#delete-base").click()
    page.locator("#base-outcome").get_by_text("再点一次「确定删除」").wait_for()
    page.locator("#delete-base", has_text="确定删除").click()


def test_a_knowledge_base_is_created_filled_and_asked_on_the_page(window) -> None:
    name = f"差旅制度{window.viewport_size['width']}"
    open_side(window)
    window.locator("#bases").get_by_text("管理知识库").click()
    window.locator("#base-name input").fill(name)
    window.locator("#create-base").click()
    window.locator("#base-outcome").get_by_text(f"已新建知识库「{name}」").wait_for()
    assert window.locator("#base input").input_value() == name
    window.locator("#index-info").get_by_text("还没有索引").wait_for()
    travel = "差旅费报销规定\n\n员工出差回来后，须在十五个工作日内提交差旅费报销单。"
    outcome = upload(window, [("差旅.txt", travel.encode())])
    assert "差旅.txt 已加入文档库" in outcome
    assert "差旅.txt" in window.locator("#documents").inner_text()
    assert "office_director" not in window.locator("#documents").inner_text()
    close_side(window)
    answer = ask(window, "出差回来多久内要报销?")
    assert "十五个工作日" in answer.locator(".qa-answer").inner_text()
    assert answer.locator(".qa-file").first.inner_text() == "差旅.txt"
    # The cited passage opens in the new base's document.
    answer.locator(".qa-open").first.click()
    preview = window.locator("#source-preview")
    preview.locator("mark").first.wait_for()
    assert "十五个工作日" in preview.locator("mark").first.inner_text()
    preview.get_by_role("button", name="关闭").click()
    window.locator("#question textarea:enabled").wait_for()
    # The conversation remembers its base: after a reload, and when reopened from the list.
    window.reload()
    window.locator("#chat .qa").first.wait_for()
    window.locator("#index-info").get_by_text(f"知识库「{name}」").wait_for()
    assert window.locator("#base input").input_value() == name
    listed = conversations(window)
    assert listed.locator(".qa-conversation-base").inner_text() == f"知识库「{name}」"
    close_side(window)
    new_conversation(window)
    window.locator("#chat .message-row").first.wait_for(state="detached")
    assert window.locator("#base input").input_value() == name  # a new one keeps the choice
    # The default base is one choice away, and answers from its own documents.
    choose_base(window, DEFAULT_LABEL)
    window.locator("#index-info").get_by_text("知识库「").wait_for(state="detached")
    answer = answered(window, EXAMPLE)
    assert answer.locator(".qa-file").first.inner_text() != "差旅.txt"
    conversations(window).filter(has_text="出差回来").locator(".qa-conversation-open").click()
    window.locator("#index-info").get_by_text(f"知识库「{name}」").wait_for()
    assert window.locator("#base input").input_value() == name
    assert "十五个工作日" in window.locator("#chat .qa").first.inner_text()
    close_side(window)
    # Deleted from the page, and restored from the page.
    open_side(window)
    window.locator("#bases").get_by_text("管理知识库").click()  # closed since the reload
    delete_base(window)
    window.locator("#base-outcome").get_by_text(f"知识库「{name}」已移到知识库回收站").wait_for()
    assert window.locator("#base input").input_value() == DEFAULT_LABEL
    # The outcome comes before the side's state (its documents and deleted bases, in one
    # update): the deleted base can be chosen once its documents have left the list.
    window.locator("#documents").get_by_text("差旅.txt").wait_for(state="detached")
    window.locator("#deleted-bases input").click()
    window.get_by_role("option", name=re.compile(f"^{name}（")).click()
    window.locator("#restore-base").click()
    window.locator("#base-outcome").get_by_text(f"知识库「{name}」已恢复").wait_for()
    assert window.locator("#base input").input_value() == name
    window.locator("#documents").get_by_text("差旅.txt").wait_for()
    close_side(window)
    assert "十五个工作日" in ask(window, "出差回来多久内要报销?").inner_text()


def test_a_renamed_base_keeps_its_conversations_and_a_gone_one_is_said(window) -> None:
    width = window.viewport_size["width"]
    old, new = f"规章{width}", f"制度{width}"
    create_base(window, old)
    close_side(window)
    answered(window, "年假有几天?")  # no index yet: an answer all the same, kept with its base
    manage_bases(window)
    window.locator("#base-name input").fill(new)
    window.locator("#rename-base").click()
    window.locator("#base-outcome").get_by_text(f"知识库「{old}」已改名为「{new}」").wait_for()
    listed = conversations(window).filter(has_text="年假有几天")
    listed.locator(".qa-conversation-base").get_by_text(f"知识库「{new}」").wait_for()
    close_side(window)
    new_conversation(window)
    choose_base(window, DEFAULT_LABEL)
    window.locator("#index-info").get_by_text("知识库「").wait_for(state="detached")
    # Reopened, the conversation is in the base under its new name.
    conversations(window).filter(has_text="年假有几天").locator(".qa-conversation-open").click()
    window.locator("#index-info").get_by_text(f"知识库「{new}」").wait_for()
    assert window.locator("#base input").input_value() == new
    # Deleted: reopening its conversation says so, and asks no other base.
    manage_bases(window)
    delete_base(window)
    window.locator("#base-outcome").get_by_text(f"知识库「{new}」已移到知识库回收站").wait_for()
    close_side(window)
    window.locator("#base input").wait_for()
    conversations(window).filter(has_text="年假有几天").locator(".qa-conversation-open").click()
    notice = window.locator("#index-info").get_by_text(f"知识库「{new}」已不存在")
    notice.wait_for()
    assert in_view(window, notice)
    close_side(window)
    assert window.locator("#base input").input_value() == new  # not switched to another
    answer = ask(window, EXAMPLE)
    assert f"知识库「{new}」已不存在" in answer.inner_text()
    assert answer.locator(".qa-answer").count() == 0


def test_the_default_base_is_named_and_kept_and_a_deletion_is_confirmed(window) -> None:
    open_side(window)
    manage_bases(window)
    assert window.locator("#base input").input_value() == DEFAULT_LABEL
    assert window.locator("#delete-base").is_disabled()
    assert window.locator("#rename-base").is_disabled()
    name = f"临时{window.viewport_size['width']}"
    create_base(window, name)
    delete = window.locator("#delete-base:enabled")
    delete.wait_for()
    assert window.locator("#rename-base").is_enabled()
    delete.click()  # one click only asks
    window.locator("#base-outcome").get_by_text(f"要删除知识库「{name}」吗").wait_for()
    window.locator("#delete-base", has_text="确定删除").wait_for()
    assert window.locator("#base input").input_value() == name
    # Not confirmed in time: the button is as it was, and the base is still there.
    window.locator("#delete-base", has_text="删除当前知识库").wait_for(timeout=30_000)
    assert window.locator("#base input").input_value() == name
    delete_base(window)
    window.locator("#base-outcome").get_by_text(f"知识库「{name}」已移到知识库回收站").wait_for()
    assert window.locator("#base input").input_value() == DEFAULT_LABEL
    window.locator("#delete-base:disabled").wait_for()


def test_the_examples_are_the_default_bases_only(window) -> None:
    examples = window.locator("#chat button.example")
    examples.first.wait_for()
    assert examples.count() == 4 and EXAMPLE in examples.first.inner_text()
    name = f"无例子{window.viewport_size['width']}"
    create_base(window, name)
    close_side(window)
    examples.first.wait_for(state="detached")
    choose_base(window, DEFAULT_LABEL)
    examples.first.wait_for()
    choose_base(window, name)
    manage_bases(window)
    delete_base(window)
    window.locator("#base-outcome").get_by_text("已移到知识库回收站").wait_for()


def test_a_screen_reader_gets_chinese_example_names_and_answers_as_text(window) -> None:
    example = window.get_by_role("button", name=f"示例问题 1：{EXAMPLE}")
    example.wait_for()
    assert "Select example" not in window.locator("#chat").aria_snapshot()
    answer = ask(window, EXAMPLE)
    bot = window.locator('#chat [data-testid="bot"]').first
    window.wait_for_function(
        """() => (document.querySelector('#chat [data-testid="bot"]')
                  ?.getAttribute("aria-label") || "").startsWith("回答：")"""
    )
    read = bot.get_attribute("aria-label")
    assert "<" not in read and "qa-" not in read and "'s message" not in read
    assert answer.locator(".qa-answer").inner_text()[:20] in read
    snapshot = window.locator("#chat").aria_snapshot()
    assert "<div" not in snapshot and "message:" not in snapshot


def test_the_api_link_opens_the_projects_api_docs_offline(window) -> None:
    assert window.get_by_text("通过 API 使用").count() == 0  # Gradio's panel of its events
    link = window.get_by_role("link", name="API 说明")
    assert in_view(window, link)
    # Nothing but this server may be reached, as on a machine without the internet.
    window.context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda r: r.abort())
    with window.context.expect_page() as opened:
        link.click()
    docs = opened.value
    docs.get_by_role("heading", name=re.compile(r"POST\s+\/api\/ask$")).wait_for()
    assert docs.locator("script").count() == 0
    text = docs.locator("body").inner_text()
    for route in ["/api/search", "/api/info", "/api/documents", "/api/bases/{name}"]:
        assert route in text
    assert "question" in text and "base" in text  # the body's fields and the parameters


def test_a_long_question_scrolls_in_its_box_and_the_chat_keeps_the_window(window) -> None:
    chat = window.locator("#chat")
    before = chat.bounding_box()["height"]
    box = window.locator("#question textarea")
    box.fill("问" * 3000)
    window.wait_for_function(
        "() => { const t = document.querySelector('#question textarea');"
        " return t.scrollHeight > t.clientHeight; }"
    )
    assert chat.bounding_box()["height"] >= 0.8 * before
    assert chat.bounding_box()["height"] >= 0.5 * window.viewport_size["height"]
    assert box.bounding_box()["height"] <= 0.2 * window.viewport_size["height"]
    assert_question_box_in_view(window)
    # Sent, it is refused over the box, which still keeps to its height.
    box.press("Enter")
    window.locator("#question").get_by_text("超过了 1000 字的上限").wait_for()
    height = window.viewport_size["height"]
    assert chat.bounding_box()["height"] >= 0.5 * height  # most of the window
    assert window.locator("#question").bounding_box()["height"] <= 0.25 * height
    assert_question_box_in_view(window)


def test_the_documents_sheet_opens_with_its_back_button_in_view(window) -> None:
    open_side(window)
    title = window.locator("#documents-title")
    title.wait_for()
    window.wait_for_timeout(300)  # a smooth scroll, if any, to settle before measuring
    assert in_view(window, title)
    back = window.locator(".qa-close-panel").first
    if window.viewport_size["width"] < 768:  # the sheet over the chat
        assert in_view(window, back) and back.is_visible()
        top = window.evaluate(
            "([x, y]) => document.elementFromPoint(x, y)?.closest('.qa-close-panel') !== null",
            [back.bounding_box()["x"] + 5, back.bounding_box()["y"] + 5],
        )
        assert top  # nothing of the sheet over it
        title_box = title.bounding_box()
        assert title_box["y"] >= back.bounding_box()["y"] + back.bounding_box()["height"]
        back.click()
        window.locator("#question textarea").wait_for()
        assert_question_box_in_view(window)
    else:
        assert not back.is_visible()  # beside the chat: nothing to go back from


def test_a_file_being_indexed_is_listed_and_its_progress_stays_off_the_chat(
    window, gate: Path
) -> None:
    width = window.viewport_size["width"]
    name = f"benefits{width}.txt"
    # Text of its own for each window: passages already indexed would need no embedding.
    rules = "".join(
        f"第{n}条\n职工第{n}项福利每月{n * width}元，由行政部按月发放。\n\n" for n in range(30)
    )
    answered(window, EXAMPLE)  # a last message, which no progress may cover
    open_side(window)
    window.evaluate(
        """() => {
          window.__overChat = [];
          const chat = document.querySelector("#chat");
          new MutationObserver(() => {
            const shown = chat.querySelectorAll(".progress-text, .eta-bar, .progress-level");
            if (shown.length) window.__overChat.push(shown[0].className);
          }).observe(chat, {childList: true, subtree: true});
        }"""
    )
    gate.touch()
    start_upload(window, [(name, rules.encode())])
    row = window.locator("#documents tr", has_text=name)
    row.get_by_text("正在建立索引").wait_for(timeout=REBUILD_SECONDS * 1000)
    window.locator("#outcome").get_by_text("正在重建索引").wait_for(timeout=REBUILD_SECONDS * 1000)
    gate.unlink()
    window.locator("#outcome").get_by_text("索引已重建").wait_for(timeout=REBUILD_SECONDS * 1000)
    row.get_by_text("已索引").wait_for()
    assert window.evaluate("window.__overChat") == []
    assert f"{name} 的内容不会再出现在答案里" in remove(window, name)
