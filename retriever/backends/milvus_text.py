"""What the Milvus lexical backend (retriever.backends.milvus_lexical) keeps in its text field,
and its collection's schema: the text, a BM25 Function into a sparse vector, its index.

Two analyses (recorded per index in `lexical/milvus.json`):

- "words" (the default): the project's own words of the passage (retriever.words.tokenize:
  normalised text, jieba's search mode, punctuation dropped, as bm25s indexes), each spelled
  as one ASCII token ("w" and four base-36 digits per character) under Milvus's "standard"
  tokenizer. milvus-lite 3.2.2 has no whitespace tokenizer ("supported: 'standard',
  'jieba'"), and "standard" does not keep Chinese words whole, so the words are spelled so
  that it keeps each one. Milvus then scores exactly bm25s's words.
- "jieba": the normalised text, cut by Milvus's own jieba analyzer. Its cuts differ from
  the project's (no search mode, punctuation kept as words); on the validation questions it
  ranked below "words" (docs/milvus.md), and is kept to compare.

On a server, a lexical collection is named and owned as a dense one is (retriever.backends.
milvus_owners): `zh_retriever_<random>`, marked with the index folder it is saved for.
Its builder is marked under its own property, BUILDER: milvus_owners' sweep of dead
builds, run for each side with its property and folder, keeps a collection the folder's
side names, so the dense sweep must not see a live lexical collection as a dead build.
"""

from __future__ import annotations

import logging
import math
import re
from functools import lru_cache
from typing import Any

from retriever.backends import milvus_owners
from retriever.backends.milvus_collections import ID
from retriever.backends.milvus_settings import STRONG
from retriever.config import LexicalSettings
from retriever.text import normalize
from retriever.words import tokenize

logger = logging.getLogger(__name__)

TEXT, SPARSE = "text", "sparse"
ANALYZERS = {"words": {"tokenizer": "standard"}, "jieba": {"tokenizer": "jieba"}}
MAX_TEXT = 65_535  # bytes a VARCHAR holds
MAX_LIMIT = 16_384  # the most hits Milvus returns for one search
BUILDER = "zh_retriever.lexical_builder"  # "host pid start-time" while a build's
BM25_SINCE = (2, 5)  # the first Milvus release with the BM25 function


def stored(text: str, analysis: str, search_mode: bool) -> str:
    """What the text field holds for a passage."""
    if analysis == "jieba":
        held = normalize(text)
    else:
        held = " ".join(spelled(word) for word in tokenize(text, search_mode=search_mode))
    if len(held.encode("utf-8")) <= MAX_TEXT:
        return held
    logger.warning("a passage's words are cut to Milvus's %d bytes", MAX_TEXT)
    return held.encode("utf-8")[:MAX_TEXT].decode("utf-8", "ignore").rsplit(" ", 1)[0]


def query(question: str, analysis: str, search_mode: bool) -> str:
    """What Milvus analyses for a question ("" when nothing can match)."""
    if analysis == "jieba":
        return normalize(question).strip()
    return " ".join(spelled(word) for word in tokenize(question, search_mode=search_mode))


def key(word: str, analysis: str) -> str:
    """A project word as the text field holds it."""
    return word if analysis == "jieba" else spelled(word)


def keys_of(held: str, analysis: str, search_mode: bool) -> set[str]:
    """The distinct words (as `key` gives them) of what the text field holds."""
    if analysis == "jieba":
        return set(tokenize(held, search_mode=search_mode))
    return set(held.split())


def create_collection(
    client: Any, name: str, analysis: str, settings: LexicalSettings, *, server: bool = False
) -> None:
    """Make collection `name`: the chunk id, the text analysed as `analysis` says, the BM25
    Function into a sparse vector, and its index scoring with `settings`' k1 and b. On a
    server, marked as this process's build from the start."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID, DataType.INT64, is_primary=True)
    schema.add_field(
        TEXT,
        DataType.VARCHAR,
        max_length=MAX_TEXT,
        enable_analyzer=True,
        analyzer_params=ANALYZERS[analysis],
    )
    schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=[TEXT],
            output_field_names=[SPARSE],
        )
    )
    params = client.prepare_index_params()
    params.add_index(
        field_name=SPARSE,
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": settings.k1, "bm25_b": settings.b},
    )
    properties = milvus_owners.building(BUILDER) if server else {}
    client.create_collection(
        name,
        schema=schema,
        index_params=params,
        consistency_level=STRONG,
        properties=properties,
    )


def search(client: Any, collection: str, query: str, k: int, level: str) -> list[tuple[int, float]]:
    """The (at most) k best (id, Milvus's BM25 score) for what `query` gives. milvus-lite
    3.2.2 returns the score as a negative distance, Milvus 2.5 servers positive: its absolute
    value, as BM25 is never negative."""
    hits = client.search(
        collection,
        data=[query],
        anns_field=SPARSE,
        limit=min(k, MAX_LIMIT),
        output_fields=[ID],
        search_params={"metric_type": "BM25"},
        consistency_level=level,
    )
    return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in hits[0]]


def idf(passages: int, holding: int) -> float:
    """BM25's inverse document frequency of a word that `holding` of `passages` hold."""
    return math.log1p((passages - holding + 0.5) / (holding + 0.5))


def check_bm25(version: str, uri: str) -> None:
    """Refuse a server older than Milvus 2.5 (`version` as get_server_version gives it:
    "v2.4.17"; milvus-lite's server says "milvus_lite-3.2.2" and has BM25)."""
    found = re.match(r"v?(\d+)\.(\d+)\.", version)
    if found and (int(found[1]), int(found[2])) < BM25_SINCE:
        raise ValueError(
            f"the Milvus server at {uri} is {version}, which has no BM25 function "
            f"(Milvus 2.5 and later have it): build with --lexical bm25s, which keeps the "
            f"words in the index folder, or use a Milvus 2.5+ server"
        )


DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=200_000)
def spelled(word: str) -> str:
    """A word as one token Milvus's standard tokenizer keeps whole: "w", then each character's
    code point in four base-36 digits (36**4 > 0x10FFFF)."""
    digits = []
    for char in word:
        code = ord(char)
        digits.append("".join(DIGITS[code // 36**p % 36] for p in (3, 2, 1, 0)))
    return "w" + "".join(digits)


def unspelled(token: str) -> str:
    """The word a token of the field spells (to read a stored text)."""
    body = token[1:]
    return "".join(chr(int(body[at : at + 4], 36)) for at in range(0, len(body), 4))
