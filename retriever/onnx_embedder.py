"""The default model's fast form at run time: an int8 ONNX graph run by ONNX Runtime.

What running needs and nothing more: the folder's file names, its tokenizer, and one
inference session per thread count. Neither torch nor sentence-transformers is imported,
which is most of a cold start. The graph itself is made offline by
retriever.modelbuild.onnx_export.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np

from retriever.models import MODEL_FILE, PASSAGE_PREFIX, QUERY_PREFIX, TOKENIZER_FILE
from retriever.script_tokenizer import ScriptTokenizer
from retriever.threads import FEW_PASSAGES, FEW_QUERIES

MAX_TOKENS = 512  # the model's position limit; longer texts are truncated, as torch does
# Texts per forward pass: larger batches pad more on uneven Chinese passages, smaller ones
# lose matrix efficiency. On a 2-core CPU ONNX Runtime was fastest at 16 (torch at 32).
ONNX_BATCH_SIZE = 16
PAD_ID = 1  # XLM-R's <pad>


class OnnxModelError(RuntimeError):
    """The ONNX model cannot be built or opened; the message says what to do."""


class OnnxEmbedder:
    """A sentence-embedding ONNX graph (input_ids, attention_mask → unit vectors) run by ONNX
    Runtime, with the model's tokenizer.json.

    Texts are sorted by length before batching so that a batch pads to similar lengths (as
    sentence-transformers does), then put back in order.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        query_prefix: str = QUERY_PREFIX,
        passage_prefix: str = PASSAGE_PREFIX,
        kernel: str = "onnx-int8",
    ) -> None:
        if not (folder / MODEL_FILE).is_file() or not (folder / TOKENIZER_FILE).is_file():
            raise OnnxModelError(f"{folder} lacks {MODEL_FILE} or {TOKENIZER_FILE}")
        self.name = name
        self.kernel = kernel
        self.folder = folder
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self._sessions: dict[int, object] = {}
        # The one-thread session, all a server uses, opens while the tokenizer loads: ONNX
        # Runtime lets go of the interpreter lock while it opens a graph, so the two overlap
        # (0.3-0.5 s of a cold start on a 2-core AMD EPYC). Should it fail, the call below
        # opens it again and raises.
        opening = threading.Thread(target=self._try_session, args=(1,), daemon=True)
        opening.start()
        self.tokenizer = ScriptTokenizer(folder, MAX_TOKENS, (query_prefix, passage_prefix))
        opening.join()
        self.dim = int(self._session(1).get_outputs()[0].shape[-1])

    def _try_session(self, threads: int) -> None:
        with contextlib.suppress(Exception):
            self._session(threads)

    def _session(self, threads: int):
        """One session per thread count: ONNX Runtime fixes a session's threads at creation.

        A server only ever opens the one-thread session (questions); a build opens the other.
        """
        if threads not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # The graph is fused at build time; the remaining optimisations are cheap.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sessions[threads] = ort.InferenceSession(
                str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        few = len(texts) <= FEW_QUERIES
        return self._encode([self.query_prefix + text for text in texts], few=few)

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        prefixed = [self.passage_prefix + text for text in texts]
        return self._encode(prefixed, few=len(texts) <= FEW_PASSAGES, progress=progress)

    def _encode(self, texts: list[str], *, few: bool, progress: bool = False) -> np.ndarray:
        """Embeds `texts`; a few (a question's, retriever.threads) on one thread, one by one."""
        from tqdm import tqdm

        session = self._session(1 if few else os.cpu_count() or 1)
        # A few texts, the sentences an answer is chosen from, differ widely in length: one
        # batch pads them all to the longest (a dozen sentences of 10-68 tokens, 343 ms)
        # where one pass each pads nothing (191 ms; 1 thread, AMD EPYC Zen 3).
        size = 1 if few else ONNX_BATCH_SIZE
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), size)
        for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
            batch = order[start : start + size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in batch])
            width = max(len(encoding) for encoding in encodings)
            ids = np.full((len(batch), width), PAD_ID, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding)] = encoding
                mask[row, : len(encoding)] = 1
            (output,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            vectors[batch] = output
        return vectors
