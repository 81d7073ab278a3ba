"""The answer check's fitted values (retriever.answerability): the logistic models that
bench/fit_answerability.py stores in retriever/data/answerability.json, read back, the
Evidence they weigh, and the background passages embedded by the model in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.background import BACKGROUND_TEXT, background_passages
from retriever.embedding import Embedder
from retriever.models import canonical_model_name

logger = logging.getLogger(__name__)

FITTED = BACKGROUND_TEXT.parent / "answerability.json"


@dataclass(frozen=True)
class Evidence:
    """What the decision looks at, for one question (retriever.answerability's docstring)."""

    lift: float
    standout: float
    coverage: float | None  # None: the question has no Chinese characters
    coverage_top3: float | None
    # None as well when the question has no terms (only words that ask) or there are no hits.
    unheld: float | None = None
    line_coverage: float | None = None
    answer_line: float | None = None


# The Evidence a fitted model may weigh, in the order its weights are stored.
FEATURES = (
    "lift",
    "standout",
    "coverage",
    "coverage_top3",
    "unheld",
    "line_coverage",
    "answer_line",
)


@dataclass(frozen=True)
class Logistic:
    """One logistic model over some of the Evidence: each piece scaled, weighed, summed."""

    names: tuple[str, ...]  # the pieces of evidence weighed, in the weights' order
    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, values: dict[str, float]) -> float:
        z = (np.array([values[name] for name in self.names]) - self.means) / self.scales
        return float(1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias))))


@dataclass(frozen=True)
class FittedModel:
    """The answer check as bench/fit_answerability.py stores it: the product of its parts'
    probabilities (the corpus is about the question, and a line holds what it asks)."""

    parts: tuple[Logistic, ...]
    threshold: float  # the probability at which a question counts as answered
    # The fitting data's mean of each piece of evidence that may be unknown (a question
    # without Chinese characters), standing in for it.
    priors: dict[str, float]

    def probability(self, evidence: Evidence) -> float:
        values = self.features(evidence)
        return float(np.prod([part.probability(values) for part in self.parts]))

    def features(self, evidence: Evidence) -> dict[str, float]:
        """Each piece of evidence the parts weigh, its prior where it is unknown."""
        values = {name: getattr(evidence, name) for part in self.parts for name in part.names}
        return {
            name: self.priors[name] if value is None else value for name, value in values.items()
        }


def load_fitted(model: str, path: Path = FITTED) -> FittedModel | None:
    """The fitted values for `model`, or None if it has none."""
    if not path.is_file():
        return None
    fitted = json.loads(path.read_text("utf-8"))["models"].get(canonical_model_name(model))
    if fitted is None:
        return None
    if "parts" not in fitted:  # fitted before the line evidence: one part, the first four
        coverage, top3 = fitted["coverage_prior"]
        part = {key: fitted[key] for key in ("means", "scales", "weights", "bias")}
        fitted = {
            "parts": [{"names": FEATURES[:4], **part}],
            "threshold": fitted["threshold"],
            "priors": {"coverage": coverage, "coverage_top3": top3},
        }
    parts = tuple(
        Logistic(
            names=tuple(part["names"]),
            means=tuple(part["means"]),
            scales=tuple(part["scales"]),
            weights=tuple(part["weights"]),
            bias=part["bias"],
        )
        for part in fitted["parts"]
    )
    return FittedModel(parts, fitted["threshold"], dict(fitted["priors"]))


def background_vectors(embedder: Embedder, cache_dir: Path | None) -> np.ndarray:
    """The background passages embedded by `embedder`: computed once per model and kernel,
    kept in `cache_dir` (up to a minute for the default model on 2 cores), or in memory
    without one."""
    text = BACKGROUND_TEXT.read_bytes()
    digest = hashlib.sha256(text + f"{embedder.name} {embedder.kernel}".encode()).hexdigest()[:16]
    if cache_dir is None:
        return _embed_background(embedder)
    cached = Path(cache_dir) / "background" / f"{digest}.npy"
    cached.parent.mkdir(parents=True, exist_ok=True)
    # One process embeds while the others (a test run's workers, two apps starting) wait for
    # its file, rather than each spending the same minute of CPU at once.
    with open(cached.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the system frees it when this process dies
        if cached.is_file():
            vectors = np.load(cached)
            if vectors.shape[1:] == (embedder.dim,):
                return vectors
        vectors = _embed_background(embedder)
        partial = cached.with_name(f"{digest}.{os.getpid()}.partial.npy")
        np.save(partial, vectors)
        partial.replace(cached)  # whole or not at all, should this process die writing
    return vectors


def _embed_background(embedder: Embedder) -> np.ndarray:
    logger.info("embedding the answer check's background passages for %s (once)", embedder.name)
    return embedder.encode_passages(background_passages()).astype(np.float32)
