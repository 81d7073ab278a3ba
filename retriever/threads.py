"""How many threads a call gets: one for a single question, every core for a build.

One short question is too little work to split across cores: the threads mostly wait for
each other, and when other requests or processes hold the cores they stall. Measured here
under load: 17 ms a question on one torch thread, 268 ms on two; a FAISS search of 11k
chunks took 16 ms on two threads against 0.6 ms on one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

# Up to this many questions in one call are embedded on a single thread.
FEW_QUERIES = 8
# And up to this many passages: the sentences an answer is chosen from are query-time work
# (retriever.answer embeds at most a dozen and a few), not a build.
FEW_PASSAGES = 16


@contextlib.contextmanager
def thread_limit(
    get_count: Callable[[], int], set_count: Callable[[int], None], count: int
) -> Iterator[None]:
    """Run a library (torch, FAISS) on `count` threads, then restore its previous setting.

    The setting is process-wide: a build running at the same time in another thread is
    slowed while it holds, never made wrong.
    """
    previous = get_count()
    set_count(count)
    try:
        yield
    finally:
        set_count(previous)
