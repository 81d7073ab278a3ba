"""Load check: concurrent clients asking questions through the HTTP API of a running app.

Start the app first (`make run`, or `python app.py`), then:

    python -m bench.load                      # 8 clients, 200 questions, http://127.0.0.1:7860
    python -m bench.load --clients 8 --questions 200 --url http://127.0.0.1:7860

Each client posts to /api/ask one question at a time; the questions cycle through a fixed
mix of answerable, follow-up and unanswerable ones. Reports the median and 95th-percentile
latency and the number of failed requests (any status but 200, or no response). Only
loopback addresses are accepted: this is a check of this machine's app, not of a network.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

QUESTIONS: list[dict[str, object]] = [
    {"question": "办公室主任和行政主管哪个大?"},
    {"question": "行政助理每天要做哪些事?"},
    {"question": "办公室主任为什么适合给领导当参谋?"},
    {"question": "辦公室主任的直接上級是誰？"},
    {"question": "那行政助理呢?", "history": ["办公室主任的直接上级是谁?"]},
    {"question": "考勤报表什么时候提交?"},
    {"question": "行政助理的职业发展前景如何?"},
    {"question": "量子计算机的原理是什么?"},
]
# A request that takes longer than this counts as failed; it also bounds the run's length.
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Result:
    clients: int
    questions: int
    failures: int
    median_ms: float
    p95_ms: float
    max_ms: float
    wall_s: float
    questions_per_s: float


def check_loopback(url: str) -> None:
    """Refuse any URL whose host is not this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise SystemExit(f"{url}: the load check runs against a loopback address only")


async def _client(
    http: httpx.AsyncClient, queue: asyncio.Queue[int], latencies: list[float]
) -> int:
    """Ask questions from the queue until it is empty; returns how many failed."""
    failures = 0
    while True:
        try:
            number = queue.get_nowait()
        except asyncio.QueueEmpty:
            return failures
        started = time.perf_counter()
        try:
            response = await http.post("/api/ask", json=QUESTIONS[number % len(QUESTIONS)])
            ok = response.status_code == 200 and "answer" in response.json()
        except (httpx.HTTPError, json.JSONDecodeError):
            ok = False
        latencies.append(time.perf_counter() - started)
        failures += not ok


async def run(url: str, clients: int, questions: int) -> Result:
    """Send `questions` questions from `clients` concurrent clients; measure each request."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(questions):
        queue.put_nowait(number)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        started = time.perf_counter()
        failures = await asyncio.gather(*(_client(http, queue, latencies) for _ in range(clients)))
        wall = time.perf_counter() - started
    milliseconds = sorted(latency * 1000 for latency in latencies)
    return Result(
        clients=clients,
        questions=questions,
        failures=sum(failures),
        median_ms=round(statistics.median(milliseconds), 1),
        # The 95th percentile, interpolated between samples ("inclusive": never past the max).
        p95_ms=round(statistics.quantiles(milliseconds, n=100, method="inclusive")[94], 1),
        max_ms=round(milliseconds[-1], 1),
        wall_s=round(wall, 1),
        questions_per_s=round(questions / wall, 2),
    )


def machine() -> str:
    """Date, cores, memory and load average: the figures mean little without them."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, {memory:.0f} GiB, load average {load:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.questions < 2:
        parser.error("need at least 1 client and 2 questions")
    check_loopback(args.url)
    info = httpx.get(f"{args.url}/api/info", timeout=10).json()
    before = machine()  # the load average before our own requests add to it
    result = asyncio.run(run(args.url, args.clients, args.questions))
    if args.json:
        print(json.dumps({**asdict(result), "machine": before, "index": info}, ensure_ascii=False))
    else:
        print(
            f"{before}\nindex: {info['documents']} documents, {info['chunks']} chunks, "
            f"{info['model']}\n{result.clients} clients, {result.questions} questions in "
            f"{result.wall_s} s ({result.questions_per_s}/s): median {result.median_ms} ms, "
            f"p95 {result.p95_ms} ms, max {result.max_ms} ms, {result.failures} failed"
        )
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
