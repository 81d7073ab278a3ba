"""Validate the validation set with the held-out set's checker (same format, same rules).

python bench/datasets/officedocs_validation/check.py
"""

import runpy
import sys
from pathlib import Path

checker = runpy.run_path(str(Path(__file__).resolve().parent.parent / "officedocs" / "check.py"))
sys.exit(checker["main"]("officedocs_validation"))
