"""Regenerate output/: one feed per tag plus one of every entry, in each `[site] formats` format,
and the discovery files. A feed is rebuilt only when what it is made of changed (a digest of its
newest entries' rows, kept in the state db); an entry's HTML is rendered once and cached there."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aggregator import defaults
from aggregator.atomic import write_if_changed
from aggregator.config import Config
from aggregator.discovery import INDEX, OPML, Listing, feeds_opml, index_html
from aggregator.feeditems import (
    Item,
    LanguageTags,
    SourceInfo,
    absolute_uri,
    clean_text,
    make_item,
    rfc3339,
    urn,
)
from aggregator.pool import Pool, finished
from aggregator.state import State, StoredEntry
from aggregator.text import fold
from aggregator.websub import ping_hub

TAGS_DIR = "tags"
EXTENSIONS = {"atom": ".xml", "rss": ".rss", "json": ".json"}
# Part of every feed's digest: bump it when the bytes a feed is rendered to change shape.
RENDER_VERSION = 2
PUBLISH_KEY = "publish_key"  # meta row: the site settings and sources of the last publish
LANGS_KEY = "language_tags"  # meta row: language tags known to be registered, or not
HTML_BATCH = 500
_CLEAN_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_HASH_ENDING = re.compile(r"-[0-9a-f]{8}$")  # how tag_slug() ends the stems it adds a hash to
_SLUG_LENGTH = 60


@dataclass
class PublishResult:
    """What a publish wrote, left alone and removed; `problems` are one-line reports."""

    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    removed: list[Path] = field(default_factory=list)
    changed_feeds: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    by_workers: int = 0  # feeds (of any format) built in worker processes


def tag_slug(tag: str) -> str:
    """The file name stem of a tag's feeds: the tag itself when it is already a clean slug
    that does not end as a hashed stem does, else an ASCII slug plus a hash of the tag, so
    that two tags never share a file (`c-f1deb75f` as a tag would otherwise be `C++`'s)."""
    if len(tag) <= _SLUG_LENGTH and _CLEAN_SLUG.fullmatch(tag) and not _HASH_ENDING.search(tag):
        return tag
    ascii_text = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:_SLUG_LENGTH].strip("-")
    digest = hashlib.sha256(tag.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned or 'tag'}-{digest}"


def feed_path(tag: str | None, fmt: str = "atom") -> str:
    """Where a feed is published, relative to output/ and to `[site] base_url`:
    `all.xml` and `tags/<slug>.xml` (`.rss`, `.json` for the other formats)."""
    stem = "all" if tag is None else f"{TAGS_DIR}/{tag_slug(tag)}"
    return stem + EXTENSIONS[fmt]


def feed_title(site_title: str, tag: str | None) -> str:
    """A published feed's title, with characters XML cannot carry dropped."""
    return clean_text(f"{site_title} — {tag}" if tag else site_title)


def publish(
    config: Config, state: State, now: float | None = None, pool: Pool | None = None
) -> PublishResult:
    """Bring output/ up to date with the state db; `now` dates an empty feed. With a `pool` of
    worker processes, a publish of many feeds renders them there as well as here."""
    return _Publisher(config, state, time.time() if now is None else now).run(pool)


def source_infos(config: Config, state: State) -> dict[str, SourceInfo]:
    """Every known source: its feed's own title and site (when fetched), its http(s) URL."""
    configured = {f.name: f.url for f in config.feeds}
    out: dict[str, SourceInfo] = {}
    for name, url, title, site_url in state.feed_sources():
        out[name] = SourceInfo(
            name=name,
            title=clean_text(fold(title or "")) or name,
            feed_url=absolute_uri(configured.get(name, url)),
            site_url=absolute_uri(site_url),
        )
    for name, url in configured.items():
        out.setdefault(name, SourceInfo(name, name, absolute_uri(url), None))
    return out


@dataclass(frozen=True)
class _Job:
    """A feed to build: its tag (None: all.xml), the formats that are stale, what it is made of
    (its digest, and the ids of its entries, newest first)."""

    tag: str | None
    formats: tuple[str, ...]
    digest: str
    ids: tuple[str, ...]


@dataclass
class _Rendered:
    """What a renderer in a worker process did, for the main process to record."""

    outputs: list[_Output]
    new_html: list[tuple[str, str, str]]
    langs: dict[str, bool]


@dataclass(frozen=True)
class _Output:
    """A feed file written (or found as it should be): what the state records of it."""

    rel: str
    digest: str
    url: str
    written: bool
    size: int
    mtime_ns: int


def render_jobs(config: Config, jobs: list[_Job], now: float) -> _Rendered:
    """Build feeds in a worker process: write their files, touch nothing in the state db (it is
    only read here), and hand back what the main process records."""
    with State(config.state_path) as state:
        renderer = _Publisher(config, state, now, recording=False)
        with ThreadPoolExecutor(defaults.PUBLISH_WRITERS) as renderer.writers:
            renderer._build_each(jobs)
            renderer._drain()
        learned = renderer.langs.known if renderer.langs.learned else {}
        return _Rendered(renderer.outputs, renderer.new_html, learned)


@dataclass(frozen=True)
class _Pending:
    """A feed handed to the writer threads."""

    rel: str
    digest: str
    url: str
    written: Future[tuple[bool, int, int]]


def _write(target: Path, data: bytes) -> tuple[bool, int, int]:
    """Write `target` unless it holds `data` already: (written, size, mtime_ns)."""
    written = write_if_changed(target, data)
    stat = target.stat()
    return written, stat.st_size, stat.st_mtime_ns


class _Publisher:
    """One publish. Feeds are rendered here and written by a few threads, so that their fsyncs
    overlap (the disk commits them together: about eight times faster than one by one)."""

    writers: ThreadPoolExecutor

    def __init__(self, config: Config, state: State, now: float, recording: bool = True) -> None:
        self.config = config
        self.recording = recording  # False in a worker: outputs are kept for the main process
        self.outputs: list[_Output] = []
        self.site = config.site
        self.state = state
        self.now = now
        self.output = config.site.output_dir
        self.base_url = absolute_uri(config.site.base_url) or config.site.base_url
        self.page_lang = config.defaults.lang
        self.sources = source_infos(config, state)
        self.site_key = (
            RENDER_VERSION,
            self.site.formats,
            self.site.title,
            self.base_url,
            self.site.hub,
            self.site.entries_per_feed,
            self.page_lang,
        )
        self.langs = LanguageTags(json.loads(state.meta(LANGS_KEY) or "{}"))
        self.items: OrderedDict[str, Item] = OrderedDict()  # the most recently used
        self.uses: Counter[str] = Counter()  # feeds still to build that carry each entry
        self.pending: list[_Pending] = []
        self.new_html: list[tuple[str, str, str]] = []
        self.result = PublishResult()

    def run(self, pool: Pool | None) -> PublishResult:
        with ThreadPoolExecutor(defaults.PUBLISH_WRITERS) as self.writers:
            try:
                self._publish(pool)
            finally:
                self._record()
        return self.result

    def _publish(self, pool: Pool | None) -> None:
        """Check the feeds of the tags whose entries changed since the last publish (all of them
        when the site or its sources changed), and those whose file is not as it was written."""
        previous = self.state.outputs()
        dirty = self.state.dirty_tags()
        key = hashlib.sha256(
            repr((self.site_key, self.sources)).encode("utf-8", "surrogatepass")
        ).hexdigest()
        check_all = self.state.meta(PUBLISH_KEY) != key
        current: set[str] = set()
        listings: list[Listing] = []
        jobs: list[_Job] = []
        for tag in [None, *self.state.tags()]:
            paths = {fmt: feed_path(tag, fmt) for fmt in self.site.formats}
            current.update(paths.values())
            listings.append(Listing(feed_title(self.site.title, tag), tuple(paths.items())))
            touched = check_all or (bool(dirty) if tag is None else tag in dirty)
            if not touched and all(self._intact(rel, previous) for rel in paths.values()):
                self.result.unchanged += len(paths)
                continue
            rows = self.state.feed_fingerprint(tag, self.site.entries_per_feed)
            digest = self._digest(tag, rows)
            stale = [fmt for fmt, rel in paths.items() if not self._fresh(rel, previous, digest)]
            self.result.unchanged += len(paths) - len(stale)
            if stale:
                # the ids, not the rows: a publish of every tag would hold them all at once
                jobs.append(_Job(tag, tuple(stale), digest, tuple(str(row[1]) for row in rows)))
        self._build_all(jobs, pool)
        self._save_html()
        gone = set(previous) - current
        if check_all:  # also feeds a lost database no longer knows it published
            gone |= self._feed_files() - current
        self._remove(gone)
        if check_all or dirty or not all((self.output / n).exists() for n in (INDEX, OPML)):
            self._discovery(listings)
        else:
            self.result.unchanged += 2
        with self.state.transaction():
            self.state.clear_dirty_tags(dirty)
            self.state.set_meta(PUBLISH_KEY, key)
            if self.langs.learned:
                self.state.set_meta(LANGS_KEY, json.dumps(self.langs.known, sort_keys=True))
        if self.site.hub and self.result.changed_feeds:
            self.result.problems.extend(ping_hub(self.site.hub, self.result.changed_feeds))

    def _build_all(self, jobs: list[_Job], pool: Pool | None) -> None:
        """Build the stale feeds: here, or shared with the pool's workers when there are many,
        one renderer a core, this process included (each takes every n-th job, so big and small
        feeds spread evenly). A worker's share is built here when the worker died."""
        shared: list[tuple[list[_Job], Future[_Rendered] | None]] = []
        parts = [jobs]
        if pool is not None and len(jobs) >= defaults.PARALLEL_MIN_PUBLISH:
            shares = min(pool.size, pool.cores)
            parts = [jobs[start::shares] for start in range(shares)]
            shared = [
                (part, pool.submit(render_jobs, self.config, part, self.now)) for part in parts[1:]
            ]
        self._build_each(parts[0])
        for part, future in shared:
            rendered = finished(future)
            if rendered is None:  # no worker took it, or its worker died on it
                self._build_each(part)
                continue
            self.result.by_workers += len(rendered.outputs)
            self.outputs.extend(rendered.outputs)
            self.new_html.extend(rendered.new_html)
            if rendered.langs:
                self.langs.known.update(rendered.langs)
                self.langs.learned = True
        self._record()

    def _digest(self, tag: str | None, rows: Sequence[tuple[object, ...]]) -> str:
        names = sorted({str(row[0]) for row in rows})
        payload = (self.site_key, tag, rows, [self.sources.get(n) for n in names])
        return hashlib.sha256(repr(payload).encode("utf-8", "surrogatepass")).hexdigest()

    def _fresh(self, rel: str, previous: dict[str, tuple[str, int, int]], digest: str) -> bool:
        """Whether `rel` was built from `digest` and is still as it was written."""
        record = previous.get(rel)
        return record is not None and record[0] == digest and self._intact(rel, previous)

    def _intact(self, rel: str, previous: dict[str, tuple[str, int, int]]) -> bool:
        """Whether `rel` is on disk as it was last written."""
        record = previous.get(rel)
        if record is None:
            return False
        try:
            stat = (self.output / rel).stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == record[1:]

    def _build_each(self, jobs: list[_Job]) -> None:
        """Build `jobs` in turn, keeping each entry's item built until the last of them that
        carries it (within PUBLISH_ITEMS_KEPT)."""
        self.uses.update(entry_id for job in jobs for entry_id in job.ids)
        for job in jobs:
            self._build(job)

    def _build(self, job: _Job) -> None:
        from aggregator.atom import FeedMeta, atom_entry, atom_feed  # loaded when a feed is built
        from aggregator.formats import json_feed, rss_feed

        tag = job.tag
        items = self._items(self.state.newest(tag, self.site.entries_per_feed))
        langs = {item.lang for item in items}
        lang = langs.pop() if len(langs) == 1 else None
        updated_text = max((i.updated_text for i in items), default=rfc3339(self.now))
        for fmt in job.formats:
            rel = feed_path(tag, fmt)
            meta = FeedMeta(
                feed_id=urn("feed", f"{self.base_url}\0{tag or ''}"),
                title=feed_title(self.site.title, tag),
                self_url=self.base_url + rel,
                site_url=self.base_url,
                site_title=clean_text(self.site.title),
                hub=absolute_uri(self.site.hub),
                lang=lang,
                updated_text=updated_text,
            )
            if fmt == "atom":
                data = atom_feed(meta, [atom_entry(item, lang) for item in items])
            elif fmt == "rss":
                data = rss_feed(meta, items, max((i.updated for i in items), default=self.now))
            else:
                data = json_feed(meta, items)
            written = self.writers.submit(_write, self.output / rel, data)
            self.pending.append(_Pending(rel, job.digest, meta.self_url, written))
            if len(self.pending) >= defaults.PUBLISH_BACKLOG:
                self._record()

    def _drain(self) -> None:
        """Wait for the feeds being written."""
        for pending in self.pending:
            written, size, mtime_ns = pending.written.result()
            self.outputs.append(
                _Output(pending.rel, pending.digest, pending.url, written, size, mtime_ns)
            )
        self.pending = []

    def _record(self) -> None:
        """Wait for the feeds being written and record what each was built from (in a worker:
        keep it for the main process)."""
        self._drain()
        if not self.recording:
            return
        with self.state.transaction():
            for out in self.outputs:
                if out.written:
                    self.result.written.append(self.output / out.rel)
                    self.result.changed_feeds.append(out.url)
                else:
                    self.result.unchanged += 1
                self.state.save_output(out.rel, out.digest, out.size, out.mtime_ns)
        self.outputs = []

    def _items(self, entries: list[StoredEntry]) -> list[Item]:
        missing = [e for e in entries if e.id not in self.items]
        cached = self.state.cached_html(e.id for e in missing) if missing else {}
        for entry in missing:
            hit = cached.get(entry.id)
            html = hit[1] if hit and hit[0] == entry.hash else self._render(entry)
            source = self.sources.get(entry.source) or SourceInfo(
                entry.source, entry.source, None, None
            )
            self.items[entry.id] = make_item(entry, html, source, self.langs)
        items = [self.items[e.id] for e in entries]
        for entry in entries:
            left = self.uses[entry.id] - 1
            if left > 0:
                self.uses[entry.id] = left
                self.items.move_to_end(entry.id)
            else:  # no feed still to build carries it
                self.uses.pop(entry.id, None)
                self.items.pop(entry.id, None)
        while len(self.items) > defaults.PUBLISH_ITEMS_KEPT:  # their `<entry>` elements go too
            self.items.popitem(last=False)
        return items

    def _render(self, entry: StoredEntry) -> str:
        path = self.site.feeds_dir / entry.path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.result.problems.append(f"{path}: cannot read the entry ({exc})")
            return ""
        from aggregator.entryhtml import render_entry_html  # Markdown and nh3: cache misses only

        html = render_entry_html(text, entry.link or None)
        self.new_html.append((entry.id, entry.hash, html))
        if len(self.new_html) >= HTML_BATCH and self.recording:
            self._save_html()
        return html

    def _save_html(self) -> None:
        if self.new_html:
            with self.state.transaction():
                self.state.save_html(self.new_html)
            self.new_html = []

    def _feed_files(self) -> set[str]:
        """The feed files in output/, as paths relative to it, whether recorded or not."""
        ends = tuple(EXTENSIONS.values())
        found = {f"all{end}" for end in ends if (self.output / f"all{end}").is_file()}
        try:
            with os.scandir(self.output / TAGS_DIR) as listing:
                found.update(
                    f"{TAGS_DIR}/{item.name}"
                    for item in listing
                    if item.name.endswith(ends) and not item.name.startswith(".") and item.is_file()
                )
        except OSError:
            pass
        return found

    def _remove(self, gone: set[str]) -> None:
        """Feeds published before whose tag (or format) is no longer there."""
        for rel in sorted(gone):
            target = self.output / rel
            target.unlink(missing_ok=True)
            with self.state.transaction():
                self.state.drop_output(rel)
            self.result.removed.append(target)

    def _discovery(self, listings: list[Listing]) -> None:
        files = {
            INDEX: index_html(self.site.title, self.langs.valid(self.page_lang), listings),
            OPML: feeds_opml(self.site.title, self.base_url, listings),
        }
        for name, data in files.items():
            if write_if_changed(self.output / name, data):
                self.result.written.append(self.output / name)
            else:
                self.result.unchanged += 1
