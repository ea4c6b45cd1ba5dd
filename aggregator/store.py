"""The one writer of feeds/: entry files written atomically, only when their bytes change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aggregator.atomic import write_if_changed
from aggregator.identity import slug
from aggregator.models import Post
from aggregator.state import State, StoredEntry


@dataclass
class StoreResult:
    """What one batch of posts changed: counts, and the tags whose feeds need publishing."""

    new: int = 0
    updated: int = 0
    changed_tags: set[str] = field(default_factory=set)

    def merge(self, other: StoreResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.changed_tags |= other.changed_tags

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_path(source: str, entry_id: str) -> str:
    """Where an entry lives, relative to feeds/: `<source-slug>/<id>.md`."""
    return f"{slug(source)}/{entry_id}.md"


def store_posts(state: State, feeds_dir: Path, posts: Iterable[Post], now: datetime) -> StoreResult:
    """Write new and changed posts, index them in the state db; unchanged ones are not touched."""
    result = StoreResult()
    for post in posts:
        existing = state.find_entry(post.identity, post.link_key)
        digest = text_hash(post.text)
        path = existing.path if existing else entry_path(post.source, post.entry_id)
        target = feeds_dir / path
        if existing and existing.hash == digest and target.exists():
            if existing.source == post.source:
                state.save_entry(existing, post.identity)
            continue
        write_if_changed(target, post.text.encode("utf-8"))
        stored = StoredEntry(
            id=existing.id if existing else post.entry_id,
            source=existing.source if existing else post.source,
            path=path,
            link_key=post.link_key,
            title=post.title,
            link=post.link,
            date=post.date.timestamp(),
            updated=now.timestamp() if existing else post.date.timestamp(),
            first_seen=existing.first_seen if existing else now.timestamp(),
            summary=post.summary,
            lang=post.lang,
            authors=post.authors,
            tags=post.tags,
            hash=digest,
        )
        state.save_entry(stored, post.identity)
        result.changed_tags |= set(stored.tags) | (set(existing.tags) if existing else set())
        if existing:
            result.updated += 1
        else:
            result.new += 1
    return result
