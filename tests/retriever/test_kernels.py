"""The kernel that runs the default model: measured per machine, recorded, forced, checked."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import CACHE, CORPUS, small_recall_check
from test_onnx_model import TEXTS  # lines of several lengths, a question among them

from retriever import Retriever
from retriever.config import KERNEL_ENV
from retriever.embedding import load_embedder, machine_kernel
from retriever.kernels import (
    KERNELS,
    MAX_RECALL_LOSS,
    MIN_COSINE,
    RECALL_CHECK,
    REFERENCE,
    SAMPLE_CHARS,
    Cpu,
    KernelChoice,
    KernelError,
    Measurement,
    RecallCheck,
    available,
    fastest,
    measure,
    read_choice,
    record_path,
    with_recall,
    write_choice,
)
from retriever.models import default_model_dir, int8_model_dir

EPYC = Cpu("AMD EPYC", ("avx2", "fma"))
XEON = Cpu("Intel Xeon", ("avx2", "fma", "avx512f", "amx_tile", "amx_int8", "amx_bf16"))


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class SlowClock:
    """A clock that moves by the seconds the encoder being timed asked for: a stand-in for
    kernels of known speed, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def encoder(self, seconds: float, vectors: np.ndarray):
        def encode(texts: list[str]) -> np.ndarray:
            self.now += seconds
            return vectors

        return encode


def test_the_fastest_kernel_that_keeps_the_vectors_is_chosen() -> None:
    reference = unit([[1, 0], [0, 1]])
    clock = SlowClock()
    encoders = {
        REFERENCE: clock.encoder(4.0, reference),
        "onnx-int8": clock.encoder(1.0, unit([[1, 0.05], [0.05, 1]])),  # cosine 0.9988
        "torch-bf16": clock.encoder(0.5, unit([[1, 0.2], [0.2, 1]])),  # cosine 0.98: too far
    }
    measured = {m.kernel: m for m in measure(encoders, ["a", "b"], runs=3, clock=clock)}
    assert measured["torch-bf16"].passages_per_second == 4.0 and not measured["torch-bf16"].passed
    assert measured["onnx-int8"].passages_per_second == 2.0 and measured["onnx-int8"].passed
    assert measured[REFERENCE].min_cosine == 1.0
    assert fastest(list(measured.values())) == "onnx-int8"


def test_the_reference_is_kept_when_no_other_kernel_passes() -> None:
    slow = Measurement(REFERENCE, 1.0, 1.0)
    assert fastest([slow, Measurement("onnx-int8", 9.0, MIN_COSINE - 0.001)]) == REFERENCE


def test_a_kernel_that_ranks_worse_than_fp32_is_not_kept() -> None:
    """Vectors near fp32's one by one, but the check's answers fall out of the top 10."""
    check = RecallCheck([f"p{i}" for i in range(12)], ["q0", "q1"], [0, 11])
    passages = unit([[1, 0.01 * i] for i in range(12)])
    ranks_well = check.recall_at_10(lambda qs: unit([[1, 0], [1, 0.11]]), lambda ps: passages)
    ranks_badly = check.recall_at_10(lambda qs: unit([[1, 0.11], [1, 0]]), lambda ps: passages)
    assert (ranks_well, ranks_badly) == (1.0, 0.0)
    measured = with_recall(
        [Measurement(REFERENCE, 1.0, 1.0), Measurement("onnx-int8", 9.0, 0.999)],
        {REFERENCE: 0.90, "onnx-int8": 0.90 - MAX_RECALL_LOSS - 0.001},
    )
    assert [m.reference_recall_at_10 for m in measured] == [0.90, 0.90]
    assert not measured[1].passed and fastest(measured) == REFERENCE
    within = with_recall(measured, {REFERENCE: 0.90, "onnx-int8": 0.90 - MAX_RECALL_LOSS})
    assert within[1].passed and fastest(within) == "onnx-int8"


def test_the_shipped_recall_check_is_what_its_script_makes(tmp_path: Path) -> None:
    from bench import kernel_check

    kernel_check.main(["--output", str(tmp_path / "check.json")])
    assert (tmp_path / "check.json").read_bytes() == RECALL_CHECK.read_bytes()
    check = RecallCheck.load()
    assert len(check.questions) == kernel_check.QUESTIONS == len(check.answers)
    assert len(set(check.answers)) > 60 and max(check.answers) < len(check.passages)


def test_each_kernel_is_timed_in_turn_and_by_its_median() -> None:
    order: list[str] = []
    seconds = {"torch-fp32": [1.0, 1.0, 9.0, 1.0], "onnx-int8": [0.5, 0.5, 0.5, 8.0]}

    def encoder(name: str):
        def encode(texts: list[str]) -> np.ndarray:
            order.append(name)
            clock.now += seconds[name][sum(1 for n in order if n == name) - 1]
            return unit([[1, 0]])

        return encode

    clock = SlowClock()
    measured = measure(
        {name: encoder(name) for name in seconds}, ["a"], runs=3, clock=clock
    )  # warm-up round, then three: the 9 s and 8 s outliers are not the median
    assert order == ["torch-fp32", "onnx-int8"] * 4
    assert {m.kernel: m.passages_per_second for m in measured} == {
        "torch-fp32": 1.0,
        "onnx-int8": 2.0,
    }


def test_bf16_is_offered_only_where_the_cpu_computes_in_it() -> None:
    assert available(EPYC) == ("onnx-int8", "torch-fp32")
    assert available(XEON) == KERNELS
    assert "torch-bf16" in available(Cpu("Xeon", ("avx512f", "avx512_bf16")))


def test_the_cpu_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum\n"
        "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n",
        encoding="utf-8",
    )
    cpu = Cpu.this_machine(cpuinfo)
    assert cpu.model == "Intel(R) Xeon(R) Platinum"
    assert set(cpu.flags) == {
        *("avx2", "fma", "avx512f", "avx512_bf16"),
        *("amx_bf16", "amx_tile", "amx_int8"),
    }
    assert Cpu.this_machine(tmp_path / "missing").flags == ()


def test_a_record_is_kept_for_its_cpu_only(tmp_path: Path) -> None:
    measured = Measurement("onnx-int8", 30.0, 0.997, recall_at_10=0.99, reference_recall_at_10=1)
    choice = KernelChoice("onnx-int8", EPYC, measurements=(measured,))
    write_choice(tmp_path, choice)
    assert read_choice(tmp_path, EPYC) == choice
    unchecked = replace(choice, measurements=(Measurement("onnx-int8", 30.0, 0.997),))
    write_choice(tmp_path, unchecked)
    assert read_choice(tmp_path, EPYC) is None  # chosen before the recall check: again
    write_choice(tmp_path, choice)
    assert read_choice(tmp_path, XEON) is None  # measured again on another processor
    record_path(tmp_path).write_text("{half", encoding="utf-8")
    assert read_choice(tmp_path, EPYC) is None
    record_path(tmp_path).write_text(json.dumps({**choice.to_json(), "kernel": "gpu"}), "utf-8")
    assert read_choice(tmp_path, EPYC) is None


def test_an_unknown_kernel_is_refused_by_name() -> None:
    with pytest.raises(KernelError, match="onnx-int8, torch-bf16, torch-fp32"):
        load_embedder(cache_dir=CACHE, kernel="gpu")


# ------------------------------------------------------------ with the real model


@pytest.fixture(scope="module")
def reference_vectors() -> dict[str, np.ndarray]:
    """The reference kernel's vectors of TEXTS, as queries and as passages: loaded and
    computed once for every kernel compared with them."""
    reference = load_embedder(cache_dir=CACHE, kernel=REFERENCE)
    return {encode: getattr(reference, encode)(TEXTS) for encode in ENCODES}


ENCODES = ("encode_queries", "encode_passages")


@pytest.mark.model
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_gives_the_models_vectors(
    kernel: str, reference_vectors: dict[str, np.ndarray]
) -> None:
    """Forced even where the CPU lacks bf16 (torch emulates it): the bound holds everywhere."""
    embedder = load_embedder(cache_dir=CACHE, kernel=kernel)
    assert embedder.kernel == kernel
    for encode in ENCODES:
        ours, theirs = getattr(embedder, encode)(TEXTS), reference_vectors[encode]
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-3)
        assert float(np.sum(ours * theirs, axis=1).min()) >= MIN_COSINE


@pytest.fixture
def private_cache(tmp_path: Path) -> Path:
    """A cache of the real default model whose kernel record is the test's own: the model's
    files are the repository cache's (linked, not copied), the record is not. A test that
    measures or forces never changes the record that other tests, running alongside (pytest
    -n) or after, load the model by."""
    cache = tmp_path / "cache"
    for model in (default_model_dir(CACHE), int8_model_dir(CACHE)):
        folder = cache / "models" / model.name
        folder.mkdir(parents=True)
        for entry in model.iterdir():
            if entry.name != record_path(model).name and not entry.name.startswith("."):
                (folder / entry.name).symlink_to(entry)
    return cache


def small_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measure as machine_kernel does, on less text and loading each kernel once: timed on 4
    passages, recall checked on the check's questions about its first 32 passages, by the
    real encoders. The full sizes are the shipped record's and bench.kernels'
    (tests/bench/test_bench_smoke.py); here they would cost minutes."""
    monkeypatch.setattr(
        "retriever.embedding.sample_texts",
        lambda passages: [text[:SAMPLE_CHARS] for text in passages[:4]],
    )
    small_recall_check(monkeypatch)
    loaded: dict[tuple, object] = {}

    def load_once(*args, **kwargs):
        key = (args, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        if key not in loaded:
            loaded[key] = load_embedder(*args, **kwargs)
        return loaded[key]

    # Only machine_kernel's own loads (this module calls the real load_embedder).
    monkeypatch.setattr("retriever.embedding.load_embedder", load_once)


@pytest.mark.model
def test_a_forced_kernel_is_recorded_and_used(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    # Two kernels are enough to check what is recorded and used; timing every kernel this
    # CPU offers is bench.kernels' (tests/bench/test_bench_smoke.py), and costs minutes here.
    two = ("torch-fp32", "onnx-int8")
    monkeypatch.setattr("retriever.embedding.available", lambda cpu: two)
    small_measurement(monkeypatch)
    record = record_path(default_model_dir(private_cache))
    choice = machine_kernel(private_cache, force="torch-fp32")
    assert choice.kernel == "torch-fp32" and choice.forced and choice.cpu == Cpu.this_machine()
    assert {m.kernel for m in choice.measurements} == set(two)
    assert all(m.recall_at_10 is not None for m in choice.measurements)
    assert read_choice(default_model_dir(private_cache), choice.cpu) == choice  # recorded
    assert load_embedder(cache_dir=private_cache).kernel == "torch-fp32"
    monkeypatch.setenv(KERNEL_ENV, "onnx-int8")  # the environment overrides the record
    assert load_embedder(cache_dir=private_cache).kernel == "onnx-int8"
    monkeypatch.delenv(KERNEL_ENV)
    remeasured = machine_kernel(private_cache, remeasure=True)
    assert not remeasured.forced
    assert remeasured.kernel == fastest(remeasured.measurements)
    assert json.loads(record.read_text("utf-8"))["kernel"] == remeasured.kernel
    assert machine_kernel(private_cache) == remeasured  # read back, not measured again


@pytest.mark.model
def test_an_index_built_on_one_kernel_is_searched_on_another(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    index = tmp_path / "index"
    Retriever.build(corpus, index, kernel="onnx-int8", cache_dir=CACHE)
    model = json.loads((index / "manifest.json").read_text("utf-8"))["model"]
    cpu = Cpu.this_machine()
    assert (model["kernel"], model["cpu"], model["cpu_flags"]) == (
        "onnx-int8",
        cpu.model,
        list(cpu.flags),
    )
    question = "办公室主任一般向谁汇报工作?"
    int8 = Retriever.load(index, kernel="onnx-int8", cache_dir=CACHE)
    fp32 = Retriever.load(index, kernel="torch-fp32", cache_dir=CACHE)
    assert fp32.embedder.kernel == "torch-fp32"
    vectors = [r.embedder.encode_queries([question])[0] for r in (int8, fp32)]
    assert float(vectors[0] @ vectors[1]) >= MIN_COSINE
    assert int8.search(question, k=1)[0].chunk_id == fp32.search(question, k=1)[0].chunk_id
