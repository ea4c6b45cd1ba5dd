"""The benchmark: `python -m bench.run` (see README.md, "Performance")."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
