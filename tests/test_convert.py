"""Conversion, data-driven: each folder of tests/data/convert holds a small feed, the config
that reads it, and the Markdown its entries must become, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import load_config
from aggregator.convert import convert_entry, identify_entries
from aggregator.frontmatter import read
from aggregator.parse import parse_feed
from tests.entrycheck import FRONT_KEYS, raw_html
from tests.helpers import REPO

CASES = REPO / "tests" / "data" / "convert"
FIRST_SEEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def convert_case(folder: Path) -> list[str]:
    """The file text of every entry of the case's feed, in feed order."""
    config = load_config(folder / "source.toml")
    source = config.feeds[0]
    assert source.local_path is not None
    feed = parse_feed(source.local_path.read_bytes())
    tz = ZoneInfo(config.site.timezone)
    identities = identify_entries(feed.entries, feed, source)
    return [
        convert_entry(entry, feed, source, tz, FIRST_SEEN, identity).text
        for entry, identity in zip(feed.entries, identities, strict=True)
    ]


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case_converts_to_expected_markdown(case: str) -> None:
    texts = convert_case(CASES / case)
    expected = (CASES / case / "expected.md").read_text(encoding="utf-8")
    assert "\n".join(texts) == expected
    for text in texts:
        meta, body = read(text)
        assert list(meta) == FRONT_KEYS
        assert raw_html(body) == []
