"""The child process of process.extract, run as a script: `python -P child.py KIND MEMORY`, the
file's bytes on stdin, one JSON reply on stdout (process.main).

It imports this folder as a package of its own, named readers, not as retriever.readers:
importing the retriever package would load the search stack (ONNX Runtime, FAISS, NumPy) into
a process that must start in a fraction of a second under a memory cap. -P keeps this folder
off sys.path, so that html.py and markdown.py cannot stand in for the modules of those names
that the parsing libraries import.
"""

import importlib
import os
import sys
import types

if __name__ == "__main__":
    package = types.ModuleType("readers")
    package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules["readers"] = package
    importlib.import_module("readers.process").main()
