"""The one writer of feeds/: entry files written atomically, only when their bytes change. An
article met again under a new guid, or in another source, updates the file it already has; a
guid met again on another article does not."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from aggregator import identity
from aggregator.atomic import discard, install, write_many
from aggregator.frontmatter import front_day, with_tags, with_title
from aggregator.identity import canonical_link, slug
from aggregator.models import Post
from aggregator.state import State, StoredEntry

MAX_TITLE_NUMBER = 100


@dataclass
class StoreResult:
    """How many entries one batch of posts added and changed."""

    new: int = 0
    updated: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated)

    def count(self, before: StoredEntry | None) -> None:
        """One entry stored: new when there was none `before`."""
        if before:
            self.updated += 1
        else:
            self.new += 1


def text_hash(text: str) -> str:
    """The hash of an entry file's text, as stored in the state (publishing and reconciling
    compare files against it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=4096)
def entry_folder(source: str) -> str:
    """The folder of feeds/ that a source's entries live in."""
    return slug(source)


def entry_path(source: str, entry_id: str) -> str:
    """Where an entry lives, relative to feeds/: `<source-slug>/<id>.md`."""
    return f"{entry_folder(source)}/{entry_id}.md"


def merged_tags(
    owner: str, owner_tags: tuple[str, ...], by_source: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """The owning source's tags, then those the other sources add, each tag once."""
    merged = dict.fromkeys(by_source.get(owner, owner_tags))
    for source, tags in by_source.items():
        if source != owner:
            merged.update(dict.fromkeys(tags))
    return tuple(merged)


def unique_title(state: State, post: Post, entry_id: str) -> str:
    """The post's title, or when another entry has it already, the title with the day, then
    the source, then a number: Hugo keys each page's menu entry by title and warns on twins."""
    candidate = post.title
    for candidate in _titles(post, entry_id):
        if not state.title_taken(candidate, entry_id):
            break
    return candidate


def _titles(post: Post, entry_id: str) -> Iterator[str]:
    """The titles unique_title() gives the post's entry, first choice first; the last one,
    with the entry's id, is given untried."""
    title = post.title
    yield title
    yield f"{title} ({front_day(post.text)})"
    yield f"{title} ({post.source})"
    yield from (f"{title} ({number})" for number in range(2, MAX_TITLE_NUMBER))
    yield f"{title} ({entry_id})"


def _kept_title(state: State, post: Post, existing: StoredEntry) -> str:
    """The stored entry's title while it is still one unique_title() may give the post and
    no other entry has it: a twin retitled by its source does not rename this one."""
    if existing.title in _titles(post, existing.id) and not state.title_taken(
        existing.title, existing.id
    ):
        return existing.title
    return unique_title(state, post, existing.id)


def _own_text(post: Post, title: str, tags: tuple[str, ...]) -> str:
    """The post's file text with the title and tags the store settled on."""
    text = post.text if title == post.title else with_title(post.text, title)
    return text if tags == post.tags else with_tags(text, tags)


def _retagged(link: str, stored: str) -> bool:
    """Whether an entry's link differs from the one stored only in what its canonical form
    drops (tracking parameters, a fragment): no change of the article, which keeps the link
    it has."""
    canonical = canonical_link(link)
    return link != stored and canonical is not None and canonical == canonical_link(stored)


def store_posts(
    state: State,
    feeds_dir: Path,
    posts: Iterable[Post],
    now: datetime,
    temps: dict[str, str] | None = None,
    together: bool = True,
) -> StoreResult:
    """Write new and changed posts, index them in the state db; unchanged ones are not touched.
    The files are durable when this returns, so the caller commits the index after them.
    The first source to store an article owns its file; others only add their tags to it.
    `temps`: durable temp files already holding posts' text, by entry id; those installed are
    taken out, the caller discards the rest. `together`: index a leading run of new posts in
    one go (False: each post on its own, the same result more slowly)."""
    batch = _Batch(state, feeds_dir, now.timestamp(), {} if temps is None else temps)
    posts = _not_deleted(state, list(posts))
    unseen = _Unseen(state, posts if together else [], batch.stamp)
    handled: set[str] = set()
    listed = {post.link_key for post in posts if post.link_key}
    for post in posts:
        if unseen.claim(post):
            batch.new(post, unseen)
            handled.add(post.entry_id)
            continue
        unseen.flush()
        existing = state.find_entry(post.identity, post.entry_id, post.link_key, post.alias)
        if existing is not None and _guid_reused(state, post, existing, listed):
            post = _by_link(post)
            existing = state.find_entry(post.identity, post.entry_id, post.link_key, post.alias)
        if existing is None:
            batch.new(post)
            handled.add(post.entry_id)
        elif existing.id in handled:  # the feed lists the article twice: the first one stands
            _add_identities(state, post, existing.id)
        elif existing.source == post.source:
            batch.update(post, existing)
            handled.add(existing.id)
        else:
            batch.add_source(post, existing)
            handled.add(existing.id)
    unseen.flush()
    install(list(batch.ready.items()))
    write_many(batch.writes.items())
    state.save_html(batch.html)
    state.save_entry_files(batch.checked())
    return batch.result


def _guid_reused(state: State, post: Post, existing: StoredEntry, listed: set[str]) -> bool:
    """Whether the stored entry that the post's guid found is another article (a feed that
    numbers its items by position): their links differ, and it is not the article moved (the
    same title and date, its old link no longer `listed` in the feed, the new one no other
    entry's)."""
    if not (post.link_key and existing.link_key) or post.link_key == existing.link_key:
        return False
    moved = (
        existing.title == post.title
        and existing.date == post.date.timestamp()
        and existing.link_key not in listed
        and not state.known("link_key", [post.link_key])
    )
    return not moved


def _by_link(post: Post) -> Post:
    """The post identified by its link, not by its guid."""
    key = identity.entry_identity(post.source, None, post.link, post.title, None)
    return replace(post, identity=key, entry_id=identity.entry_id(key))


def _identities(post: Post) -> tuple[str, ...]:
    """What the post's entry is indexed by: its identity, and its alias when it has one."""
    return (post.identity, post.alias) if post.alias else (post.identity,)


def _add_identities(state: State, post: Post, entry_id: str) -> None:
    """Index the post's identity and alias as the entry's."""
    for name in _identities(post):
        state.add_identity(name, entry_id)


def _not_deleted(state: State, posts: list[Post]) -> list[Post]:
    """The posts whose article no one deleted by hand (by identity, alias or canonical link)."""
    gone = state.known("deleted", (name for p in posts for name in _identities(p)))
    gone |= state.known("deleted_link_key", (p.link_key for p in posts if p.link_key))
    if not gone:
        return posts
    return [
        p
        for p in posts
        if p.link_key not in gone and not any(name in gone for name in _identities(p))
    ]


class _Unseen:
    """The leading run of a batch's posts that are new beyond doubt: no entry, stored or
    stored before them in this batch, has their identity, alias, id, link or title. They are
    indexed together, a statement a table; the first post that is not ends the run, and it and
    every post after it go one by one."""

    def __init__(self, state: State, posts: list[Post], stamp: float) -> None:
        self.state = state
        self.stamp = stamp
        self.identities = state.known("identity", (n for p in posts for n in _identities(p)))
        self.ids = state.known("id", (p.entry_id for p in posts))
        self.links = state.known("link_key", (p.link_key for p in posts if p.link_key))
        self.titles = state.known("title", (p.title for p in posts))
        self.rows: list[tuple[StoredEntry, tuple[str, ...]]] = []
        self.open = bool(posts)

    def claim(self, post: Post) -> bool:
        """Whether the post is new beyond doubt, its identities, id, link and title taken if
        so."""
        names = _identities(post)
        if not self.open or (
            any(name in self.identities for name in names)
            or post.entry_id in self.ids
            or post.link_key in self.links
            or post.title in self.titles
        ):
            return False
        self.identities.update(names)
        self.ids.add(post.entry_id)
        if post.link_key:
            self.links.add(post.link_key)
        self.titles.add(post.title)
        return True

    def add(self, entry: StoredEntry, identities: tuple[str, ...]) -> None:
        self.rows.append((entry, identities))

    def flush(self) -> None:
        """Index the run so far; from now on posts go one by one."""
        if self.rows:
            self.state.insert_entries(self.rows, self.stamp)
            self.rows = []
        self.open = False


class _Batch:
    """One call of store_posts: the entries it indexes and the files it writes at the end."""

    def __init__(self, state: State, feeds_dir: Path, stamp: float, temps: dict[str, str]) -> None:
        self.state = state
        # file paths are strings here: making Path objects took a tenth of storing an entry
        self.feeds_dir = os.fspath(feeds_dir)
        self.stamp = stamp
        self.temps = temps
        self.result = StoreResult()
        self.writes: dict[Path, bytes] = {}
        self.ready: dict[str, str] = {}  # temp file: the target it is installed over
        self.html: list[tuple[str, str, str]] = []
        self.written: dict[str, tuple[str, str]] = {}  # file: its entry's id and text hash

    def target(self, path: str) -> str:
        """The file of an entry's `path` (relative to feeds/)."""
        return os.path.join(self.feeds_dir, path)

    def write(
        self, target: str, text: str, entry_id: str, digest: str, post: Post | None = None
    ) -> None:
        """Have `target` hold `text`: from the temp file written ahead for `post` when it holds
        just that, else written here."""
        self.written[target] = (entry_id, digest)
        tmp = self.temps.pop(post.entry_id, None) if post and text == post.text else None
        if tmp is not None and os.path.dirname(tmp) == os.path.dirname(target):
            self.ready[tmp] = target
            return
        if tmp is not None:
            discard([tmp])
        self.writes[Path(target)] = text.encode("utf-8")

    def checked(self) -> list[tuple[str, str, int, int]]:
        """(entry id, text hash, size, mtime_ns) of each file written, once in place: what the
        scan for hand edits compares the files with, so it need not read them again."""
        rows = []
        for target, (entry_id, digest) in self.written.items():
            found = os.stat(target)
            rows.append((entry_id, digest, found.st_size, found.st_mtime_ns))
        return rows

    def new(self, post: Post, unseen: _Unseen | None = None) -> None:
        """A post no entry has yet; indexed with `unseen`'s run when it is part of it (its
        title then known to be free), else at once."""
        path = entry_path(post.source, post.entry_id)
        title = post.title if unseen else unique_title(self.state, post, post.entry_id)
        text = _own_text(post, title, post.tags)
        digest = text_hash(text)
        self.write(self.target(path), text, post.entry_id, digest, post)
        stored = StoredEntry(
            id=post.entry_id,
            source=post.source,
            path=path,
            link_key=post.link_key,
            title=title,
            link=post.link,
            date=post.date.timestamp(),
            updated=post.date.timestamp(),
            first_seen=self.stamp,
            summary=post.summary,
            lang=post.lang,
            authors=post.authors,
            tags=post.tags,
            hash=digest,
        )
        self._record(post, None, stored, unseen)

    def update(self, post: Post, existing: StoredEntry) -> None:
        """The owning source's post: rewrite the file when its text (with the merged tags)
        changed, unless only a person changed it since the store wrote it; forget the entry
        when its file was deleted by hand (from its folder: a folder deleted whole is written
        again)."""
        target = self.target(existing.path)
        present = os.path.exists(target)
        if not present and os.path.isdir(os.path.dirname(target)):
            _add_identities(self.state, post, existing.id)
            self.state.delete_entry(existing.id, self.stamp)
            return
        by_source = {**self.state.source_tags(existing.id), post.source: post.tags}
        tags = merged_tags(post.source, post.tags, by_source)
        title = _kept_title(self.state, post, existing)
        text = _own_text(post, title, tags)
        digest = known = text_hash(text)
        if digest != existing.hash and _retagged(post.link, existing.link):
            known = text_hash(text.replace(post.link, existing.link))  # the text as it was
        fetched = self.state.hand_edit(existing.id) if known != existing.hash else None
        if present and known in (existing.hash, fetched):  # fetched: a person's edit stands
            _add_identities(self.state, post, existing.id)
            return
        if fetched is not None:  # the source changed the article: its new text replaces the edit
            self.state.forget_hand_edit(existing.id)
        self.write(target, text, existing.id, digest, post)
        stored = replace(
            existing,
            link_key=post.link_key,
            title=title,
            link=post.link,
            date=post.date.timestamp(),
            updated=self.stamp,
            summary=post.summary,
            lang=post.lang,
            authors=post.authors,
            tags=tags,
            hash=digest,
        )
        self._record(post, existing, stored)

    def add_source(self, post: Post, existing: StoredEntry) -> None:
        """Another source's copy of a stored article: its tags join the file's, its text does
        not. An article first stored in this run is new, not updated: it keeps its time."""
        _add_identities(self.state, post, existing.id)
        by_source = self.state.source_tags(existing.id)
        if by_source.get(post.source) == post.tags:
            return
        self.state.save_source_tags(existing.id, post.source, post.tags, self.stamp)
        tags = merged_tags(existing.source, existing.tags, {**by_source, post.source: post.tags})
        target = self.target(existing.path)
        if tags == existing.tags or not os.path.exists(target):
            return
        text = with_tags(Path(target).read_text(encoding="utf-8"), tags)
        digest = text_hash(text)
        self.write(target, text, existing.id, digest)
        self._keep_html(existing.id, existing.hash, digest)
        fresh = existing.first_seen == self.stamp
        updated = existing.updated if fresh else self.stamp
        stored = replace(existing, tags=tags, updated=updated, hash=digest)
        self.state.save_entry(stored, post.identity)  # its alias is indexed above
        if not fresh:
            self.result.count(existing)

    def _keep_html(self, entry_id: str, old: str, new: str) -> None:
        """The feed HTML kept for an entry file's old text, kept for its new text too: only
        its tags changed, and the HTML without it would be rendered from the Markdown."""
        pending = [row for row in self.html if row[0] == entry_id and row[1] == old]
        if pending:
            self.html.append((entry_id, new, pending[-1][2]))
        elif (cached := self.state.cached_html([entry_id]).get(entry_id)) and cached[0] == old:
            self.html.append((entry_id, new, cached[1]))

    def _record(
        self,
        post: Post,
        before: StoredEntry | None,
        stored: StoredEntry,
        unseen: _Unseen | None = None,
    ) -> None:
        """Index a post's entry and its source's tags (with `unseen`'s run, when part of it)
        and keep its feed HTML (keyed by the file)."""
        if unseen is not None:
            unseen.add(stored, _identities(post))
        else:
            self.state.save_entry(stored, post.identity)
            if post.alias:
                self.state.add_identity(post.alias, stored.id)
            self.state.save_source_tags(stored.id, post.source, post.tags, self.stamp)
        if post.html:
            self.html.append((stored.id, stored.hash, post.html))
        self.result.count(before)
