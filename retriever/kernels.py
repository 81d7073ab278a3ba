"""Which kernel runs the default model on this machine: the fastest that keeps its vectors.

The default model can run three ways, and which is fastest depends on the processor:

- ``onnx-int8``: the int8 ONNX graph on ONNX Runtime (retriever.onnx_embedder); fastest on
  CPUs without bf16 matrix units, and the lightest to start;
- ``torch-bf16``: the fp32 weights on torch under bf16 autocast, which uses AMX or AVX-512
  BF16 where the CPU has them (elsewhere torch emulates bf16, slowly);
- ``torch-fp32``: the reference the others are checked against, and the fallback.

The choice is made once per machine: each kernel the CPU supports embeds a fixed sample of
passages (the first background passages, retriever.background) a few times, and the
fastest median is kept among the kernels whose every vector keeps a cosine of at least
MIN_COSINE with fp32's and whose R@10 on the recall check (retriever/data/kernel_check.json,
made by bench.kernel_check) is within MAX_RECALL_LOSS of fp32's. The record (``kernel.json``
in the model folder) names the processor and the flags it was measured on; another
processor reading the same cache measures again. Every kernel gives the same model's
vectors to within that bound, so an index built on one is searched on another.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

KERNELS = ("onnx-int8", "torch-bf16", "torch-fp32")
REFERENCE = "torch-fp32"
# int8 moves a vector by a cosine of about 0.003 (docs/onnx_int8.md), bf16 by less; a kernel
# that moves one by 0.01 is computing something else.
MIN_COSINE = 0.99
# Vectors that each stay near fp32's may still reorder close passages: the kept kernel must
# also rank the recall check's questions about as well (issue 12: R@10 within 0.01).
MAX_RECALL_LOSS = 0.01
RECALL_CHECK = Path(__file__).resolve().parent / "data" / "kernel_check.json"
# Where torch's bf16 autocast runs on matrix units rather than emulated.
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# The flags that decide which kernel is fastest: recorded with the choice, and compared to
# tell whether a cache's record was measured on this kind of processor.
RELEVANT_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# Passages per timing and timings per kernel: enough for a median on a shared machine, few
# enough that the whole measurement takes seconds.
SAMPLE_SIZE = 32
SAMPLE_CHARS = 300  # a passage's length (retriever.config.ChunkSettings.max_chars)
RUNS = 3
RECORD_NAME = "kernel.json"


class KernelError(ValueError):
    """A kernel name this code does not know; the message lists the known ones."""


def check_kernel(name: str) -> str:
    if name not in KERNELS:
        raise KernelError(f"no kernel named {name!r}: choose one of {', '.join(KERNELS)}")
    return name


@dataclass(frozen=True)
class Cpu:
    """The processor a choice was measured on: its model name and the flags that matter."""

    model: str
    flags: tuple[str, ...]

    @classmethod
    def this_machine(cls, cpuinfo: Path = Path("/proc/cpuinfo")) -> Cpu:
        model, flags = platform.processor() or platform.machine(), set()
        try:
            lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:  # not Linux: the flags stay unknown and bf16 is not offered
            lines = []
        for line in lines:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break  # every core lists the same
        return cls(model, tuple(flag for flag in RELEVANT_FLAGS if flag in flags))


def available(cpu: Cpu) -> tuple[str, ...]:
    """The kernels worth timing on `cpu`: bf16 only where the CPU computes in it."""
    return tuple(k for k in KERNELS if k != "torch-bf16" or BF16_FLAGS & set(cpu.flags))


@dataclass(frozen=True)
class Measurement:
    kernel: str
    passages_per_second: float
    min_cosine: float  # over the sample, against the reference kernel's vectors
    # On the recall check, this kernel's and the reference's; None where only speed and
    # cosine were measured (bench timings).
    recall_at_10: float | None = None
    reference_recall_at_10: float | None = None

    @property
    def passed(self) -> bool:
        kept_ranking = (
            self.recall_at_10 is None
            or self.reference_recall_at_10 is None
            or self.recall_at_10 >= round(self.reference_recall_at_10 - MAX_RECALL_LOSS, 4)
        )
        return self.min_cosine >= MIN_COSINE and kept_ranking


@dataclass(frozen=True)
class KernelChoice:
    """The kernel kept for this machine's processor, and the timings it was chosen by."""

    kernel: str
    cpu: Cpu
    forced: bool = False  # named by the user rather than measured fastest
    measurements: tuple[Measurement, ...] = ()
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(" ", "seconds"))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> KernelChoice:
        return cls(
            kernel=check_kernel(data["kernel"]),
            cpu=Cpu(str(data["cpu"]["model"]), tuple(data["cpu"]["flags"])),
            forced=bool(data["forced"]),
            measurements=tuple(Measurement(**m) for m in data["measurements"]),
            measured_at=str(data["measured_at"]),
        )


def sample_texts(passages: Sequence[str]) -> list[str]:
    """The fixed sample: the first SAMPLE_SIZE passages, each cut to a passage's length."""
    return [text[:SAMPLE_CHARS] for text in passages[:SAMPLE_SIZE]]


def measure(
    encoders: dict[str, Callable[[list[str]], np.ndarray]],
    texts: list[str],
    *,
    runs: int = RUNS,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Measurement]:
    """Time each encoder on `texts` (`runs` rounds, taking turns so that a busy moment on a
    shared machine slows all of them alike) and compare its vectors with REFERENCE's."""
    assert REFERENCE in encoders, "the reference kernel is what the others are checked against"
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    for name, encode in encoders.items():
        vectors[name] = encode(texts)  # warm-up: first calls allocate and load
    for _ in range(runs):
        for name, encode in encoders.items():
            started = clock()
            encode(texts)
            seconds[name].append(clock() - started)
    reference = vectors[REFERENCE]
    return [
        Measurement(
            kernel=name,
            passages_per_second=round(len(texts) / max(statistics.median(seconds[name]), 1e-9), 2),
            min_cosine=round(float(np.min(np.sum(vectors[name] * reference, axis=1))), 5),
        )
        for name in encoders
    ]


@dataclass(frozen=True)
class RecallCheck:
    """Questions each answered by one of the passages: R@10 of a kernel's ranking."""

    passages: list[str]
    questions: list[str]
    answers: list[int]  # per question, the passage (by position) that answers it

    @classmethod
    def load(cls, path: Path = RECALL_CHECK) -> RecallCheck:
        data = json.loads(path.read_text("utf-8"))
        rows = data["questions"]
        return cls(data["passages"], [q["text"] for q in rows], [q["passage"] for q in rows])

    def recall_at_10(
        self,
        encode_queries: Callable[[list[str]], np.ndarray],
        encode_passages: Callable[[list[str]], np.ndarray],
    ) -> float:
        scores = encode_queries(self.questions) @ encode_passages(self.passages).T
        # A passage is in the top 10 when fewer than 10 others score above it.
        answer_scores = scores[np.arange(len(self.answers)), self.answers]
        above = np.sum(scores > answer_scores[:, None], axis=1)
        return round(float(np.mean(above < 10)), 4)

    def recalls(self, embedders: dict) -> dict[str, float]:
        """R@10 of each kernel's embedder (anything with encode_queries and encode_passages)."""
        return {
            kernel: self.recall_at_10(embedder.encode_queries, embedder.encode_passages)
            for kernel, embedder in embedders.items()
        }


def with_recall(
    measurements: Sequence[Measurement], recalls: dict[str, float]
) -> list[Measurement]:
    """The measurements with each kernel's R@10 on the recall check, and the reference's."""
    reference = recalls[REFERENCE]
    return [
        replace(m, recall_at_10=recalls[m.kernel], reference_recall_at_10=reference)
        for m in measurements
    ]


def fastest(measurements: Sequence[Measurement]) -> str:
    """The fastest kernel whose vectors passed; the reference passes by definition."""
    passing = [m for m in measurements if m.passed or m.kernel == REFERENCE]
    return max(passing, key=lambda m: m.passages_per_second).kernel


def record_path(model_dir: Path) -> Path:
    return Path(model_dir) / RECORD_NAME


def read_choice(model_dir: Path, cpu: Cpu) -> KernelChoice | None:
    """The choice recorded in `model_dir` for a processor like `cpu`; None when there is none,
    it is damaged, it was measured on another kind of processor, or before the recall check
    was part of the choice."""
    try:
        choice = KernelChoice.from_json(json.loads(record_path(model_dir).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    checked = all(m.recall_at_10 is not None for m in choice.measurements)
    return choice if choice.cpu == cpu and checked else None


def write_choice(model_dir: Path, choice: KernelChoice) -> None:
    """Write the record whole or not at all: a reader never sees half a file."""
    path = record_path(model_dir)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(choice.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
