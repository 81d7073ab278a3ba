"""app.py serving with a model that waits while a gate file exists, so that a browser test
can see a rebuild in progress for as long as it looks, however fast the machine embeds.

tests/web_server.py's `running_app(..., gate=path)` runs it: while `path` exists, a build
holds before embedding its passages (its progress says 计算向量 0/n), then goes on.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from retriever import Retriever  # noqa: E402
from retriever.embedding import Embedder  # noqa: E402
from web.builds import Opener  # noqa: E402
from web.settings import Settings  # noqa: E402

GATE_VARIABLE = "QA_TEST_BUILD_GATE"


class GatedEmbedder:
    """The real model, whose passage embedding waits while the gate file exists."""

    def __init__(self, inner: Embedder, gate: Path) -> None:
        self.inner = inner
        self.gate = gate
        self.name = inner.name
        self.dim = inner.dim
        self.kernel = inner.kernel

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        while self.gate.exists():
            time.sleep(0.05)
        return self.inner.encode_passages(texts, progress=progress)


if __name__ == "__main__":
    settings = Settings.from_env()
    model = Retriever.load(settings.index, cache_dir=settings.cache).embedder
    gated = GatedEmbedder(model, Path(os.environ[GATE_VARIABLE]))
    app.main(Opener(gated, settings.cache))
