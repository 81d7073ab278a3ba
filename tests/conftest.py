"""Shared fixtures: a deterministic stand-in embedder for fast plumbing tests, and the real
default model with the real corpus for end-to-end tests (built once per session)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever.config import KERNEL_ENV

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
CACHE = ROOT / ".cache"
# The real model runs on one kernel in every test and every process a test starts, whatever
# kernel `make model` chose for this machine (an Intel CPU with AMX picks torch-bf16, whose
# processes spend seconds importing torch): onnx-int8, which other CPUs choose. Each kernel,
# and the choice itself, is tested in tests/retriever/test_kernels.py; set RETRIEVER_KERNEL
# to run the suite on another.
os.environ.setdefault(KERNEL_ENV, "onnx-int8")


class HashingEmbedder:
    """Character unigrams and bigrams hashed into a small vector: similar text, similar vector.

    Stands in for the real model where a test checks plumbing, not retrieval quality.
    """

    name = "test-hashing"
    dim = 64
    kernel = "test"

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            if gram.strip():
                digest = hashlib.blake2b(gram.encode(), digest_size=4).digest()
                vector[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self.encode_queries(texts)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "jobs.txt").write_text(
        "办公室主任和行政主管哪个大?\n"
        "办公室主任和行政主管,在没有特定公司的前提下,根本无法进行比较。两者职责不同。\n"
        "行政助理的职责\n"
        "负责员工的考勤,于次月第一个工作日提供考勤报表并存档;负责办公用品采购。\n",
        encoding="utf-8",
    )
    (folder / "fruit.md").write_text(
        "# 苹果\n苹果是一种水果,富含维生素。每天吃一个苹果有益健康。\n"
        "# 香蕉\n香蕉产于热带地区,口感软糯香甜。\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory):
    """The real corpus indexed with the real default model, shared by end-to-end tests."""
    from retriever import Retriever

    folder = tmp_path_factory.mktemp("real") / "index"
    Retriever.build(CORPUS, folder, cache_dir=CACHE)
    return folder


@pytest.fixture(scope="session")
def real_retriever(real_index: Path):
    from retriever import Retriever

    return Retriever.load(real_index, cache_dir=CACHE)


def small_recall_check(monkeypatch: pytest.MonkeyPatch, passages: int = 32) -> None:
    """Make RecallCheck.load() give the shipped recall check cut to its first `passages`
    passages and the questions they answer (a third of each at 32): the same check, run by
    the same code, on a third of the text to embed with every kernel."""
    from retriever.kernels import RecallCheck

    full = RecallCheck.load()
    kept = [(q, a) for q, a in zip(full.questions, full.answers, strict=True) if a < passages]
    check = RecallCheck(full.passages[:passages], [q for q, _ in kept], [a for _, a in kept])
    monkeypatch.setattr(RecallCheck, "load", classmethod(lambda cls, path=None: check))


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def pdf_of(objects: list[bytes]) -> bytes:
    """A PDF of numbered objects (1 0 R is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def page_pdf(content: bytes, stream_keys: bytes = b"") -> bytes:
    """A one-page PDF whose page content stream is `content`, as stored in the file."""
    return pdf_of(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d %s>>\nstream\n" % (len(content), stream_keys)
            + content
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def text_pdf(text: str) -> bytes:
    """A one-page PDF with one line of Helvetica text, written by hand (no PDF writer)."""
    return page_pdf(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())


def unicode_pdf(text: str) -> bytes:
    """A one-page PDF with one line of any characters (at most 255 distinct), written by hand.

    Each character is drawn as a one-byte code of the font, and the font's ToUnicode map says
    which character each code stands for, as PDF printers write them: so the PDF says exactly
    which code points a reader extracts, Kangxi radicals included.
    """
    chars = sorted(set(text))
    code = {char: number for number, char in enumerate(chars, start=1)}
    pairs = " ".join(f"<{code[char]:02X}> <{char.encode('utf-16-be').hex()}>" for char in chars)
    to_unicode = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /T def "
        "/CMapType 2 def 1 begincodespacerange <00> <FF> endcodespacerange "
        f"{len(chars)} beginbfchar {pairs} endbfchar endcmap "
        "CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    shown = "".join(f"{code[char]:02X}" for char in text).encode()
    content = b"BT /F1 12 Tf 72 720 Td <" + shown + b"> Tj ET"
    return pdf_of(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
            b"<< /Length %d >>\nstream\n" % len(to_unicode) + to_unicode + b"\nendstream",
        ]
    )


def layout_pdf(pages: list[list[tuple]]) -> bytes:
    """A PDF of pages laid out by hand, in one font of any characters (at most 255 distinct).

    Each page is a list of ("text", x, y, size, text) and ("line", x0, y0, x1, y1), in points
    from the page's bottom left (612 x 792). The font's widths are 1 em for CJK characters,
    0.25 em for a space and 0.5 em for others, and its ToUnicode map says which character each
    code stands for (as in unicode_pdf), so a reader places every character where it is drawn.
    """
    texts = [item[4] for page in pages for item in page if item[0] == "text"]
    chars = sorted(set("".join(texts)))
    assert len(chars) <= 255, "one simple font holds at most 255 characters"
    code = {char: number for number, char in enumerate(chars, start=1)}
    widths = " ".join(
        "1000" if ord(char) >= 0x2E80 else "250" if char == " " else "500" for char in chars
    )
    pairs = " ".join(f"<{code[char]:02X}> <{char.encode('utf-16-be').hex()}>" for char in chars)
    to_unicode = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /T def "
        "/CMapType 2 def 1 begincodespacerange <00> <FF> endcodespacerange "
        f"{len(chars)} beginbfchar {pairs} endbfchar endcmap "
        "CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    first = 3 + 2 * len(pages)  # the font's object number, after the pages and their contents
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(len(pages))), len(pages)),
    ]
    for number, page in enumerate(pages):
        drawn = []
        for item in page:
            if item[0] == "text":
                _, x, y, size, text = item
                shown = "".join(f"{code[char]:02X}" for char in text)
                drawn.append(f"BT /F1 {size} Tf {x} {y} Td <{shown}> Tj ET")
            else:
                _, x0, y0, x1, y1 = item
                drawn.append(f"0.5 w {x0} {y0} m {x1} {y1} l S")
        content = "\n".join(drawn).encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + 2 * number, first)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(
        # Not a standard font's name (as Helvetica): readers take a standard font's own widths.
        b"<< /Type /Font /Subtype /Type1 /BaseFont /LayoutSans /FirstChar 1 /LastChar %d "
        b"/Widths [%s] /ToUnicode %d 0 R >>" % (len(chars), widths.encode(), first + 1)
    )
    objects.append(b"<< /Length %d >>\nstream\n" % len(to_unicode) + to_unicode + b"\nendstream")
    return pdf_of(objects)


# The starting document's key question and the passage that answers it, and questions as
# users ask them, each with a pattern of the passage(s) answering it.
KEY_QUESTION = "办公室主任和行政主管哪个大?"
KEY_PASSAGE = "在没有特定公司的前提下,根本无法进行比较"

USER_QUESTIONS = [
    ("行政助理的直接上级是谁?", "直接上级是人事行政经理或主管"),
    ("办公室主任一般向谁汇报工作?", "直接(上级是|向)公司高层"),
    ("行政助理要不要管员工考勤?", "负责员工的考勤"),
    ("为什么说办公室主任适合给领导当参谋?", "参谋"),
    ("催办是什么意思?", "督促、协助有关单位"),
    ("做行政助理有没有前途?", "至于前途"),
    ("文秘助理和党群助理选哪个对发展更好?", "党群助理更有利于你的发展"),
    ("办公室里常见的岗位有哪些?", "行政助理和行政专员是办公室中常见的岗位"),
    ("公司的办公用品归谁采购?", "办公用品(采购|的领用)"),
    ("工厂里的行政助理平时具体干什么?", "工业企业的行政助理的主要职责"),
    ("局长助理和办公室主任有什么不同?", "局长助理属于秘书"),
    ("上级机关交代下来的事情办公室主任该怎么办?", "办公室主任应主动牵头承办"),
    ("辦公室主任和行政助理有什麼區別？", "部门、部门职能方向、职责范围等方面的区别"),
]


def run_cli(*args: str, machine_kernel: bool = False) -> subprocess.CompletedProcess:
    """`python -m retriever ARGS` in a process of its own, with the repository's cache; with
    `machine_kernel`, on the kernel chosen for this machine rather than the tests' one."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "RETRIEVER_CACHE": str(CACHE)}
    if machine_kernel:
        environment.pop(KERNEL_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "retriever", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
    )
