"""Which of a document's entries are taken: per-feed `include` / `exclude` filters (regular
expressions searched, case-insensitively, in an entry's title, text, link, authors and
categories), then the newest up to `[fetch] max_entries`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from aggregator.config import FeedConfig
from aggregator.markdown import plain_text
from aggregator.models import EntryData
from aggregator.text import fold


@lru_cache(maxsize=256)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def entry_fields(entry: EntryData) -> tuple[str, ...]:
    """The texts a filter looks at: plain title, plain content, link, authors, categories."""
    return (
        plain_text(entry.title) if entry.title_html else fold(entry.title),
        plain_text(entry.content_html),
        entry.link or "",
        *entry.authors,
        *entry.categories,
    )


def wanted(entry: EntryData, source: FeedConfig) -> bool:
    """False when an `exclude` pattern matches any field, or when the feed has `include`
    patterns and none matches."""
    if not source.include and not source.exclude:
        return True
    fields = entry_fields(entry)
    if _matches(_compile(source.exclude), fields):
        return False
    return not source.include or _matches(_compile(source.include), fields)


def select_entries(entries: Sequence[EntryData], source: FeedConfig) -> list[EntryData]:
    return [entry for entry in entries if wanted(entry, source)]


def newest(entries: Sequence[EntryData], limit: int) -> list[int]:
    """The indexes of the `limit` newest entries, in document order: the dated ones by date
    (published, else updated), then the undated ones in document order."""
    if len(entries) <= limit:
        return list(range(len(entries)))

    def age(index: int) -> tuple[bool, float, int]:
        when = entries[index].published or entries[index].updated
        return (when is None, -when.timestamp() if when else 0.0, index)

    return sorted(sorted(range(len(entries)), key=age)[:limit])


def _matches(patterns: Sequence[re.Pattern[str]], fields: Sequence[str]) -> bool:
    return any(pattern.search(field) for pattern in patterns for field in fields)
