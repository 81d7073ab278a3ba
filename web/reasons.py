"""The engine's reasons, said in Chinese for the page.

The engine explains in English, for the command line and the JSON API: why a file cannot be
read (a CorpusError, or a skip reason in the index's manifest) and why a build failed. The
page says the same in Chinese. The reasons are matched here by their wording, so a reason
the engine words anew falls through to a Chinese sentence that quotes it; tests/web/test_app.py
makes the engine fail in the common ways and checks that each reason is known here.
"""

from __future__ import annotations

import re

# (pattern searched in the engine's reason, the Chinese reason with the pattern's groups)
_FILE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), chinese)
    for pattern, chinese in (
        (r"the file is empty", "文件是空的"),
        (r"the file holds no text", "文件里没有文字"),
        (
            r"(?P<size>[\d.]+) MB is over the (?P<limit>[\d.]+) MB limit",
            "文件有 {size} MB，超过单个文件 {limit} MB 的上限，请拆成几个小文件",
        ),
        (
            r"starts with a (?P<encoding>\S+) mark but is damaged",
            "文件开头标明是 {encoding} 编码，但内容已损坏",
        ),
        (
            r"not readable as text",
            "不是可读的文本：既不是 UTF-8，也不是其他已知的编码（文件损坏了，还是二进制文件？）",
        ),
        (r"looks like a binary file", "看起来是二进制文件，不是文本"),
        (r"not a readable PDF", "不是可读的 PDF：文件已损坏，或者不是 PDF"),
        (r"not a readable Word", "不是可读的 Word 文件：文件已损坏，或者不是 .docx"),
        (r"web page's text could not be extracted", "无法提取网页里的文字"),
        (r"password-protected", "PDF 有密码保护：请另存一份不带密码的副本再上传"),
        (
            r"the PDF has (?P<pages>\d+) pages, over the limit of (?P<limit>\d+)",
            "PDF 有 {pages} 页，超过单个文件 {limit} 页的上限，请拆成几个小文件",
        ),
        (
            r"safety limits",
            "PDF 超出了读取时的安全限制（解压后过大，或结构过大、过深），像是为耗尽内存而做的文件",
        ),
        (r"no text layer", "PDF 没有文字层（是扫描件吗？）：请先做文字识别（OCR）"),
        (
            r"holds (?P<parts>\d+) parts",
            ".docx 里有 {parts} 个部件，远超 Word 文件所需，像是 zip 炸弹",
        ),
        (
            r"unpacks to (?P<size>\d+) MB of XML, over the limit of (?P<limit>\d+) MB",
            ".docx 解压后有 {size} MB 的 XML，超过 {limit} MB 的上限（约 1500 页），请拆分文档",
        ),
        (
            r"unpacks to (?P<size>\d+) MB, over the limit of (?P<limit>\d+) MB",
            ".docx 解压后有 {size} MB，超过 {limit} MB 的上限，请拆分文档",
        ),
        (
            r"compressed (?P<ratio>\d+):1",
            ".docx 里有部件的压缩比高达 {ratio}:1，只有 zip 炸弹才会这样",
        ),
        (
            r"holds over (?P<chars>[\d,]+) characters",
            "文字超过 {chars} 个字符，超过单个文件的上限，请拆成几个小文件",
        ),
        (
            r"took over (?P<seconds>\d+) s",
            "读取用了超过 {seconds} 秒，超过单个文件的上限，请拆成几个小文件",
        ),
        (
            r"needs over (?P<size>[\d.]+) GB of memory",
            "读取需要超过 {size} GB 内存，超过单个文件的上限，请拆成几个小文件",
        ),
        (
            r"line (?P<line>\d+): expected a JSON object",
            '第 {line} 行不是带 "id" 和 "text" 的 JSON 对象',
        ),
        (r"line (?P<line>\d+): id (?P<id>.+) appears twice", "第 {line} 行的 id {id} 重复出现"),
        (r"no records with text", "没有带文字的记录"),
        (r"cannot be read \((?P<detail>.*)\)", "无法读取文件（系统提示：{detail}）"),
        (r"could not be read \((?P<detail>.*)\)", "读取时出错（{detail}）"),
    )
)

_BUILD_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"nothing to index"), "文档库里没有能读取的文档"),
)


def file_reason(name: str, reason: str) -> str:
    """Why the engine could not read the file `name`, in Chinese.

    `reason` is the engine's CorpusError message or a manifest's skip reason; both start
    with the file's name, which the page shows beside it already.
    """
    reason = reason.removeprefix(f"{name}: ")
    return _known(reason, _FILE_REASONS) or f"无法读取这个文件，程序给出的原因是：{reason}"


def build_error(error: str) -> str:
    """Why a rebuild failed, in Chinese; an error not foreseen is quoted as it came."""
    return _known(error, _BUILD_REASONS) or f"程序给出的原因是：{error}"


def _known(reason: str, known: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, chinese in known:
        match = pattern.search(reason)
        if match:
            return chinese.format(**match.groupdict())
    return None
