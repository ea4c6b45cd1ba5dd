"""The worked example of FORMAT.md: feed.xml + source.toml must give expected.md byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import GOLDEN, run_cli


def test_golden_entry_byte_for_byte(tmp_path: Path) -> None:
    shutil.copy(GOLDEN / "feed.xml", tmp_path / "feed.xml")
    shutil.copy(GOLDEN / "source.toml", tmp_path / "source.toml")
    proc = run_cli("fetch", "-c", str(tmp_path / "source.toml"))
    assert proc.returncode == 0, proc.stderr
    written = list((tmp_path / "feeds").rglob("*.md"))
    assert len(written) == 1
    assert written[0].read_bytes() == (GOLDEN / "expected.md").read_bytes()
    assert written[0].parent.name == "qq"
