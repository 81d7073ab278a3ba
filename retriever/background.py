"""The background passages (retriever/data/background.txt, see its SOURCE.md): 1,252 ordinary
Chinese passages of many subjects, one a line.

The answer check (retriever.answerability) measures how near a question comes to them, as
its baseline for text that is not about its subject; the kernel choice (retriever.kernels)
times each kernel on the first of them.
"""

from __future__ import annotations

from pathlib import Path

BACKGROUND_TEXT = Path(__file__).resolve().parent / "data" / "background.txt"


def background_passages() -> list[str]:
    return [line for line in BACKGROUND_TEXT.read_text("utf-8").splitlines() if line.strip()]
