"""app.py serving with a model that waits while a gate file exists, so that a browser test
can see a rebuild in progress for as long as it looks, however fast the machine embeds.

tests/web_server.py's `running_app(..., gate=path)` runs it: while `path` exists, a build
holds before embedding its passages (its progress says 计算向量 0/n), then goes on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from retriever import Retriever  # noqa: E402
from retriever.config import WebSettings  # noqa: E402
from web.builds import Opener, ProgressEmbedder  # noqa: E402

GATE_VARIABLE = "QA_TEST_BUILD_GATE"


def held_while(gate: Path) -> Callable[[int, int], None]:
    """A build's progress report that holds the build, before it embeds, while `gate`
    exists."""

    def report(done: int, total: int) -> None:
        while done == 0 and gate.exists():
            time.sleep(0.05)

    return report


if __name__ == "__main__":
    settings = WebSettings.from_env()
    model = Retriever.load(settings.index, cache_dir=settings.cache).embedder
    gated = ProgressEmbedder(model, held_while(Path(os.environ[GATE_VARIABLE])))
    app.main(Opener(gated, settings.cache))
