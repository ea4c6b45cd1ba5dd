"""The state database (SQLite beside the config): feed health and validators, entry index."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aggregator.errors import StateDamagedError, StateError, StateUnwritableError
from aggregator.identity import identity_source, source_prefixes

# Every statement of SCHEMA is idempotent: a database of an older version is brought up to date
# by running it again (version 2 added entries_newest, 3 deleted_entries and hand_edits).
SCHEMA_VERSION = 3
# the meta row set once the entry files of feeds/ have been indexed: a database without it is
# new (or was lost), and the files are the content of record
FEEDS_INDEXED = "feeds_indexed"
BUSY_TIMEOUT = 30.0  # seconds a statement waits for another program's lock before StateError
LOW_SPACE = 1 << 20  # bytes: a disk with less free, or a file this near its size limit, is full
SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL DEFAULT '',
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    last_attempt REAL,
    last_success REAL,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_due REAL,
    moved_to TEXT,
    moved_count INTEGER NOT NULL DEFAULT 0,
    ttl_minutes INTEGER,
    gone INTEGER NOT NULL DEFAULT 0,
    title TEXT,
    site_url TEXT
);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    link_key TEXT,
    title TEXT NOT NULL,
    link TEXT NOT NULL,
    date REAL NOT NULL,
    updated REAL NOT NULL,
    first_seen REAL NOT NULL,
    summary TEXT NOT NULL,
    lang TEXT NOT NULL,
    authors TEXT NOT NULL,
    tags TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_link_key ON entries(link_key);
-- the newest entries of all, as the feed of every entry lists them (a scan and sort without it)
CREATE INDEX IF NOT EXISTS entries_newest ON entries(date DESC, id);
CREATE INDEX IF NOT EXISTS entries_title ON entries(title);
CREATE TABLE IF NOT EXISTS identities (
    identity TEXT PRIMARY KEY,
    id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS identities_id ON identities(id);
CREATE TABLE IF NOT EXISTS entry_tags (
    tag TEXT NOT NULL,
    id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    date REAL NOT NULL,
    PRIMARY KEY (tag, id)
);
CREATE INDEX IF NOT EXISTS entry_tags_by_date ON entry_tags(tag, date DESC);
CREATE INDEX IF NOT EXISTS entry_tags_by_id ON entry_tags(id);
-- the tags each source gives an entry: a cross-posted article is stored once, tags merged
CREATE TABLE IF NOT EXISTS entry_sources (
    id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    tags TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (id, source)
);
-- publishing's own bookkeeping; no foreign keys, because INSERT OR REPLACE into entries would
-- cascade and wipe them on every save: stale rows are recognised by their hash instead
CREATE TABLE IF NOT EXISTS entry_files (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_path ON entries(path);
-- a digest of each entry folder's listing (names, sizes, mtimes) as last reconciled
CREATE TABLE IF NOT EXISTS entry_folders (
    folder TEXT PRIMARY KEY,
    digest TEXT NOT NULL
);
-- articles whose entry file a person deleted: a fetch does not write them again, whether met
-- under the same identity or the same canonical link, until `aggregator undelete` or until the
-- file (named by the entry's id) is put back
CREATE TABLE IF NOT EXISTS deleted_entries (
    identity TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    link_key TEXT,
    source TEXT NOT NULL,
    deleted REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_entries_link_key ON deleted_entries(link_key);
CREATE INDEX IF NOT EXISTS deleted_entries_id ON deleted_entries(id);
-- entries whose file a person edited: the hash of the text the store last wrote there, so that
-- a fetch leaves the edit alone until the source itself changes the article
CREATE TABLE IF NOT EXISTS hand_edits (
    id TEXT PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    fetched TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entry_html (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    html TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- tags whose entries changed since the last publish, kept by triggers whoever writes (no OR
-- IGNORE in them: an outer statement's conflict policy, such as an upsert's, overrides it)
CREATE TABLE IF NOT EXISTS dirty_tags (
    tag TEXT PRIMARY KEY
);
CREATE TRIGGER IF NOT EXISTS entry_tags_added AFTER INSERT ON entry_tags BEGIN
    INSERT INTO dirty_tags (tag) SELECT NEW.tag
    WHERE NOT EXISTS (SELECT 1 FROM dirty_tags WHERE tag = NEW.tag);
END;
CREATE TRIGGER IF NOT EXISTS entry_tags_removed AFTER DELETE ON entry_tags BEGIN
    INSERT INTO dirty_tags (tag) SELECT OLD.tag
    WHERE NOT EXISTS (SELECT 1 FROM dirty_tags WHERE tag = OLD.tag);
END;
CREATE TRIGGER IF NOT EXISTS entry_tags_changed AFTER UPDATE ON entry_tags BEGIN
    INSERT INTO dirty_tags (tag) SELECT OLD.tag
    WHERE NOT EXISTS (SELECT 1 FROM dirty_tags WHERE tag = OLD.tag);
    INSERT INTO dirty_tags (tag) SELECT NEW.tag
    WHERE NOT EXISTS (SELECT 1 FROM dirty_tags WHERE tag = NEW.tag);
END;
CREATE TRIGGER IF NOT EXISTS entries_changed AFTER UPDATE ON entries BEGIN
    INSERT INTO dirty_tags (tag) SELECT DISTINCT tag FROM entry_tags
    WHERE id = NEW.id AND tag NOT IN (SELECT tag FROM dirty_tags);
END;
"""


@dataclass(frozen=True)
class FeedState:
    name: str
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_due: float | None = None
    moved_to: str | None = None
    moved_count: int = 0
    gone: bool = False
    ttl_minutes: int | None = None
    title: str | None = None
    site_url: str | None = None


@dataclass(frozen=True)
class StoredEntry:
    id: str
    source: str
    path: str
    link_key: str | None
    title: str
    link: str
    date: float
    updated: float
    first_seen: float
    summary: str
    lang: str
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    hash: str


_FEED_COLUMNS = tuple(FeedState.__dataclass_fields__)
_ENTRY_COLUMNS = tuple(StoredEntry.__dataclass_fields__)
_AUTHORS = _ENTRY_COLUMNS.index("authors")  # the columns that hold a JSON list
_TAGS = _ENTRY_COLUMNS.index("tags")


class _Cursor(sqlite3.Cursor):
    """A cursor whose every row reports a database it cannot use as StateError (a damaged page
    may be met at any row)."""

    connection: _Connection

    # try/except, not a context manager: these run for every row
    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise _reported(exc, self.connection.path) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise _reported(exc, self.connection.path) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise _reported(exc, self.connection.path) from None


class _Connection(sqlite3.Connection):
    """A connection whose every statement, and every row of its results, reports a database it
    cannot use (damaged, locked by another program past BUSY_TIMEOUT, not writable) as
    StateError, naming it and what to do."""

    path: Path

    # try/except, not a context manager: these run for every statement
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return self.cursor(_Cursor).execute(sql, parameters)
        except sqlite3.Error as exc:
            raise _reported(exc, self.path) from None

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return self.cursor(_Cursor).executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise _reported(exc, self.path) from None

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise _reported(exc, self.path) from None


class State:
    """One connection to the state database; every write happens inside `transaction()`."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        """Open (and create or upgrade) the database; StateError naming it and what to do when
        it cannot be used. A `readonly` caller still reads one that this process cannot write
        (no permission to write it or its folder, a full disk) when its file holds all of it."""
        self.path = path
        uri = path.absolute().as_uri()
        try:
            version = self._open(uri, upgrade=True)
        except StateUnwritableError:
            if not (readonly and _checkpointed(path)):
                raise
            # SQLite reads a WAL database through its -wal and -shm files, which it cannot make
            # here, unless told that the file does not change (true while no writer is at work)
            version = self._open(f"{uri}?mode=ro&immutable=1", upgrade=False)
        if version > SCHEMA_VERSION:  # nothing was written to it
            self.db.close()
            raise StateError(
                f"the state database {path} was made by a newer aggregator (schema "
                f"{version}; this one knows {SCHEMA_VERSION}): upgrade, or move it away"
            )

    def _open(self, uri: str, upgrade: bool) -> int:
        """Connect; with `upgrade`, turn WAL on (once: it stays on) and bring the schema up to
        date. The schema version the database had."""
        try:
            self.db = sqlite3.connect(
                uri, timeout=BUSY_TIMEOUT, isolation_level=None, factory=_Connection, uri=True
            )
        except sqlite3.Error as exc:
            raise _unusable(exc, self.path) from None
        self.db.path = self.path
        try:
            if upgrade and self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
            if upgrade and version < SCHEMA_VERSION:
                self.db.executescript(SCHEMA)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except StateError:
            self.db.close()
            raise
        except sqlite3.Error as exc:
            self.db.close()
            raise _unusable(exc, self.path) from None
        return version

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:  # SQLite ends it itself after some errors (a full disk)
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # feeds

    def feed(self, name: str) -> FeedState:
        row = self.db.execute(
            f"SELECT {', '.join(_FEED_COLUMNS)} FROM feeds WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return FeedState(name=name)
        values = dict(zip(_FEED_COLUMNS, row, strict=True))
        values["gone"] = bool(values["gone"])
        return FeedState(**values)

    def feeds(self) -> list[FeedState]:
        names = [r[0] for r in self.db.execute("SELECT name FROM feeds ORDER BY name")]
        return [self.feed(n) for n in names]

    def save_feed(self, feed: FeedState) -> None:
        values = [getattr(feed, c) for c in _FEED_COLUMNS]
        placeholders = ", ".join("?" for _ in _FEED_COLUMNS)
        self.db.execute(
            f"INSERT OR REPLACE INTO feeds ({', '.join(_FEED_COLUMNS)}) VALUES ({placeholders})",
            values,
        )

    def entry_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT source, COUNT(*) FROM entries GROUP BY source"))

    # entries

    def entry(self, entry_id: str) -> StoredEntry | None:
        row = self.db.execute(
            f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()
        return _entry(row) if row else None

    def find_entry(
        self, identity: str, entry_id: str, link_key: str | None, alias: str | None = None
    ) -> StoredEntry | None:
        """The stored entry with this alias (the most specific: link, title and date), else
        this identity, else this id (an entry indexed again from its file, its identity
        unknown), else this canonical link."""
        row = None
        for known in filter(None, (alias, identity)):
            row = self.db.execute(
                "SELECT id FROM identities WHERE identity = ?", (known,)
            ).fetchone()
            if row is not None:
                break
        if row is None:
            row = self.db.execute("SELECT id FROM entries WHERE id = ?", (entry_id,)).fetchone()
        if row is None and link_key:
            row = self.db.execute(
                "SELECT id FROM entries WHERE link_key = ? LIMIT 1", (link_key,)
            ).fetchone()
        return self.entry(row[0]) if row else None

    def first_seen(
        self, identities: Iterable[tuple[str, str | None, str | None]]
    ) -> dict[str, float]:
        """When the entry of each (identity, alias, link key) was first stored, found by its
        alias, else its identity, else its link; for entries without a date. A few queries for
        any number."""
        triples = list(identities)
        names = [name for identity, alias, _ in triples for name in (alias, identity) if name]
        by_identity: dict[str, float] = {}
        for chunk in _chunks(names):
            by_identity.update(
                self.db.execute(
                    "SELECT i.identity, e.first_seen FROM identities i "
                    f"JOIN entries e ON e.id = i.id WHERE i.identity IN ({_marks(chunk)})",
                    chunk,
                )
            )
        links = list({key for identity, _, key in triples if key and identity not in by_identity})
        by_link: dict[str, float] = {}
        for chunk in _chunks(links):
            rows = self.db.execute(
                f"SELECT link_key, first_seen FROM entries WHERE link_key IN ({_marks(chunk)})",
                chunk,
            )
            for key, stamp in rows:
                by_link.setdefault(key, stamp)
        out: dict[str, float] = {}
        for identity, alias, key in triples:
            stamp = by_identity.get(alias or identity, by_identity.get(identity))
            if stamp is None and key:
                stamp = by_link.get(key)
            if stamp is not None:
                out[identity] = stamp
        return out

    def save_entry(self, entry: StoredEntry, identity: str) -> None:
        """Insert or update an entry, its identity and its tags."""
        # an upsert, not INSERT OR REPLACE: a replace deletes the row first, and the cascade
        # would drop the entry's other identities and sources
        self.db.execute(_UPSERT_ENTRY, _entry_values(entry))
        self.add_identity(identity, entry.id)
        self._index_tags(entry)

    def _index_tags(self, entry: StoredEntry) -> None:
        """Make the entry's rows of entry_tags its tags (the triggers mark the tags dirty)."""
        self.db.execute("DELETE FROM entry_tags WHERE id = ?", (entry.id,))
        self.db.executemany(
            "INSERT INTO entry_tags (tag, id, date) VALUES (?, ?, ?)",
            [(tag, entry.id, entry.date) for tag in entry.tags],
        )

    def insert_entries(
        self, rows: Sequence[tuple[StoredEntry, Sequence[str]]], seen: float
    ) -> None:
        """Index entries that have no row yet, (entry, identities) each, with their tags as
        their own source's: what save_entry() and save_source_tags() do, a statement for all."""
        self.db.executemany(_UPSERT_ENTRY, [_entry_values(entry) for entry, _ in rows])
        self.db.executemany(
            "INSERT OR REPLACE INTO identities (identity, id) VALUES (?, ?)",
            [(identity, entry.id) for entry, identities in rows for identity in identities],
        )
        self.db.executemany(
            "INSERT INTO entry_tags (tag, id, date) VALUES (?, ?, ?)",
            [(tag, entry.id, entry.date) for entry, _ in rows for tag in entry.tags],
        )
        self.db.executemany(
            "INSERT INTO entry_sources (id, source, tags, seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id, source) DO UPDATE SET tags = excluded.tags",
            [(e.id, e.source, json.dumps(list(e.tags)), seen) for e, _ in rows],
        )

    def known(self, column: str, values: Iterable[str]) -> set[str]:
        """Which of `values` some entry already has (in `_KNOWN[column]`'s table)."""
        table, name = _KNOWN[column]
        found: set[str] = set()
        for chunk in _chunks(list(set(values))):
            rows = self.db.execute(
                f"SELECT {name} FROM {table} WHERE {name} IN ({_marks(chunk)})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def file_hashes(self, folder: str) -> dict[str, str]:
        """The text hash of every entry whose file is in `folder` of feeds/, by entry id."""
        rows = self.db.execute(f"SELECT id, hash FROM entries WHERE {_IN_FOLDER}", _folder(folder))
        return dict(rows.fetchall())

    def title_taken(self, title: str, entry_id: str) -> bool:
        """Whether another entry already has this title (Hugo keys menu entries by title)."""
        row = self.db.execute(
            "SELECT 1 FROM entries WHERE title = ? AND id != ? LIMIT 1", (title, entry_id)
        ).fetchone()
        return row is not None

    def add_identity(self, identity: str, entry_id: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO identities (identity, id) VALUES (?, ?)", (identity, entry_id)
        )

    def source_tags(self, entry_id: str) -> dict[str, tuple[str, ...]]:
        """The tags each source gives this entry, in the order the sources first gave it (the
        order of their rows: sources met in one run share their `seen`)."""
        rows = self.db.execute(
            "SELECT source, tags FROM entry_sources WHERE id = ? ORDER BY seen, rowid",
            (entry_id,),
        )
        return {source: tuple(json.loads(tags)) for source, tags in rows}

    def save_source_tags(
        self, entry_id: str, source: str, tags: tuple[str, ...], seen: float
    ) -> None:
        self.db.execute(
            "INSERT INTO entry_sources (id, source, tags, seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id, source) DO UPDATE SET tags = excluded.tags",
            (entry_id, source, json.dumps(list(tags)), seen),
        )

    def delete_entry(self, entry_id: str, when: float | None) -> None:
        """Drop an entry whose file a person deleted; with `when`, remember its identities and
        link, so that no fetch brings it back."""
        if when is not None:
            self.db.execute(
                "INSERT OR REPLACE INTO deleted_entries (identity, id, link_key, source, deleted) "
                "SELECT i.identity, e.id, e.link_key, e.source, ? FROM identities i "
                "JOIN entries e ON e.id = i.id WHERE e.id = ?",
                (when, entry_id),
            )
        self.db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))

    def forget_deleted(self, sources: Sequence[str]) -> int:
        """Let a fetch write the entries deleted by hand again (those that `sources` stored,
        all when empty): the validators and body hash of `sources`, of the feeds that stored
        them and of every other feed that listed them are dropped, so that the next fetch
        reads them whole. How many entries were forgotten (an entry's identities each have a
        row)."""
        values = list(sources)
        where = f"WHERE source IN ({_marks(values)})" if values else ""
        rows = self.db.execute(
            f"SELECT id, identity, source FROM deleted_entries {where}", values
        ).fetchall()
        feeds = {*values, *(source for _, _, source in rows)}
        feeds.update(filter(None, (identity_source(identity) for _, identity, _ in rows)))
        self.forget_validators(sorted(feeds))
        self.db.execute(f"DELETE FROM deleted_entries {where}", values)
        return len({entry_id for entry_id, _, _ in rows})

    def forget_validators(self, names: Sequence[str]) -> None:
        """Drop the ETag, Last-Modified and body hash of feeds, so that their next fetch reads
        and stores them whole."""
        for chunk in _chunks(list(names)):
            self.db.execute(
                "UPDATE feeds SET etag = NULL, last_modified = NULL, body_hash = NULL "
                f"WHERE name IN ({_marks(chunk)})",
                chunk,
            )

    def forget_deleted_entry(self, entry_id: str) -> None:
        """An entry's file was put back: its article is no longer deleted."""
        self.db.execute("DELETE FROM deleted_entries WHERE id = ?", (entry_id,))

    def tags(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT tag FROM entry_tags ORDER BY tag")]

    def newest(self, tag: str | None, limit: int) -> list[StoredEntry]:
        """The newest `limit` entries with `tag` (all entries when None), newest first."""
        columns = ", ".join(f"e.{c}" for c in _ENTRY_COLUMNS)
        return [_entry(r) for r in self._newest_rows(columns, tag, limit)]

    def _newest_rows(self, columns: str, tag: str | None, limit: int) -> list[tuple[object, ...]]:
        if tag is None:
            rows = self.db.execute(
                f"SELECT {columns} FROM entries e ORDER BY e.date DESC, e.id LIMIT ?", (limit,)
            )
        else:
            rows = self.db.execute(
                f"SELECT {columns} FROM entry_tags t JOIN entries e ON e.id = t.id "
                "WHERE t.tag = ? ORDER BY t.date DESC, t.id LIMIT ?",
                (tag, limit),
            )
        return rows.fetchall()

    def all_entries(self) -> list[StoredEntry]:
        rows = self.db.execute(f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries")
        return [_entry(r) for r in rows]

    # publishing: what each published file was built from, rendered HTML, entry file stats

    def feed_fingerprint(self, tag: str | None, limit: int) -> list[tuple[object, ...]]:
        """The raw rows of a feed's newest entries, source first: what its bytes depend on."""
        columns = "e.source, " + ", ".join(f"e.{c}" for c in _ENTRY_COLUMNS)
        return self._newest_rows(columns, tag, limit)

    def cached_html(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Rendered HTML by entry id: (hash of the entry file it was rendered from, html)."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(list(ids)):
            rows = self.db.execute(
                f"SELECT id, hash, html FROM entry_html WHERE id IN ({_marks(chunk)})", chunk
            ).fetchall()
            out.update((entry_id, (digest, html)) for entry_id, digest, html in rows)
        return out

    def save_html(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Store (id, hash, html) rows."""
        self.db.executemany(
            "INSERT OR REPLACE INTO entry_html (id, hash, html) VALUES (?, ?, ?)", rows
        )

    def outputs(self) -> dict[str, tuple[str, int, int]]:
        """Published files (relative to output/): (digest of their inputs, size, mtime_ns)."""
        rows = self.db.execute("SELECT path, digest, size, mtime_ns FROM outputs")
        return {path: (digest, size, mtime) for path, digest, size, mtime in rows}

    def save_output(self, path: str, digest: str, size: int, mtime_ns: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO outputs (path, digest, size, mtime_ns) VALUES (?, ?, ?, ?)",
            (path, digest, size, mtime_ns),
        )

    def drop_output(self, path: str) -> None:
        self.db.execute("DELETE FROM outputs WHERE path = ?", (path,))

    def entry_files(
        self, folder: str
    ) -> list[tuple[str, str, str, str | None, int | None, int | None]]:
        """Every entry under `folder`/: id, path, hash, and the hash, size and mtime_ns its file
        had when last checked (None when never checked)."""
        return self.db.execute(
            "SELECT e.id, e.path, e.hash, f.hash, f.size, f.mtime_ns "
            f"FROM entries e LEFT JOIN entry_files f ON f.id = e.id WHERE e.{_IN_FOLDER}",
            _folder(folder),
        ).fetchall()

    def entry_folders(self) -> set[str]:
        """The folders (first path component) that entries live in."""
        rows = self.db.execute("SELECT DISTINCT substr(path, 1, instr(path, '/') - 1) FROM entries")
        return {row[0] for row in rows}

    def folder_digests(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT folder, digest FROM entry_folders"))

    def save_folder_digest(self, folder: str, digest: str | None) -> None:
        """Remember (or, with None, forget) the listing digest of an entry folder."""
        if digest is None:
            self.db.execute("DELETE FROM entry_folders WHERE folder = ?", (folder,))
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO entry_folders (folder, digest) VALUES (?, ?)",
                (folder, digest),
            )

    def save_entry_files(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Record (id, text hash, size, mtime_ns) of entry files as just checked or written."""
        self.db.executemany(
            "INSERT OR REPLACE INTO entry_files (id, hash, size, mtime_ns) VALUES (?, ?, ?, ?)",
            rows,
        )

    def note_hand_edit(self, entry_id: str, fetched: str) -> None:
        """Remember the hash of the text the store wrote to an entry's file before a person
        edited it (the first edit's: later ones keep it)."""
        self.db.execute(
            "INSERT OR IGNORE INTO hand_edits (id, fetched) VALUES (?, ?)", (entry_id, fetched)
        )

    def hand_edit(self, entry_id: str) -> str | None:
        """The hash of the text the store last wrote to an entry's file, when a person has
        edited the file since; else None."""
        row = self.db.execute("SELECT fetched FROM hand_edits WHERE id = ?", (entry_id,))
        found = row.fetchone()
        return str(found[0]) if found else None

    def forget_hand_edit(self, entry_id: str) -> None:
        self.db.execute("DELETE FROM hand_edits WHERE id = ?", (entry_id,))

    def revise_entry(self, entry: StoredEntry) -> None:
        """Rewrite an entry's own fields and tags in place (an UPDATE: its identities stay)."""
        self.db.execute(
            "UPDATE entries SET title = ?, date = ?, updated = ?, summary = ?, lang = ?, tags = ?, "
            "hash = ? WHERE id = ?",
            (
                entry.title,
                entry.date,
                entry.updated,
                entry.summary,
                entry.lang,
                json.dumps(list(entry.tags)),
                entry.hash,
                entry.id,
            ),
        )
        self._index_tags(entry)

    def owned_by(self, source: str) -> list[StoredEntry]:
        """The entries whose files `source` stored."""
        rows = self.db.execute(
            f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries WHERE source = ?", (source,)
        )
        return [_entry(row) for row in rows]

    def listed_by(self, source: str) -> list[StoredEntry]:
        """The entries another source stored that `source` lists too (adding its tags)."""
        rows = self.db.execute(
            f"SELECT {', '.join('e.' + c for c in _ENTRY_COLUMNS)} FROM entry_sources s "
            "JOIN entries e ON e.id = s.id WHERE s.source = ? AND e.source != s.source",
            (source,),
        )
        return [_entry(row) for row in rows]

    def move_entry(self, entry: StoredEntry) -> None:
        """Rewrite an entry's source, path, tags and hash in place (its identities stay)."""
        self.db.execute(
            "UPDATE entries SET source = ?, path = ?, tags = ?, hash = ? WHERE id = ?",
            (entry.source, entry.path, json.dumps(list(entry.tags)), entry.hash, entry.id),
        )
        self._index_tags(entry)

    def rename_feed(self, old: str, new: str) -> None:
        """Give a feed's row, the identities and hand deletions of its entries (a guid, a title
        and date, an alias are a source's own) and its rows of the entries it lists the new
        name, the tag its name gave them renamed too. The entries themselves: move_entry()."""
        self.db.execute("UPDATE feeds SET name = ? WHERE name = ?", (new, old))
        for table in ("identities", "deleted_entries"):
            for low, start in zip(source_prefixes(old), source_prefixes(new), strict=True):
                rows = self.db.execute(
                    f"SELECT identity FROM {table} WHERE identity >= ? AND identity < ?",
                    (low, low[:-1] + "\x01"),  # the identities that begin with `low`
                ).fetchall()
                self.db.executemany(
                    f"UPDATE OR REPLACE {table} SET identity = ? WHERE identity = ?",
                    [(start + name[len(low) :], name) for (name,) in rows],
                )
        self.db.execute("UPDATE deleted_entries SET source = ? WHERE source = ?", (new, old))
        rows = self.db.execute(
            "SELECT id, tags FROM entry_sources WHERE source = ?", (old,)
        ).fetchall()
        self.db.executemany(
            "UPDATE OR REPLACE entry_sources SET source = ?, tags = ? WHERE id = ? AND source = ?",
            [
                (new, json.dumps([new if t == old else t for t in json.loads(tags)]), i, old)
                for i, tags in rows
            ],
        )

    def dirty_tags(self) -> set[str]:
        """Tags whose entries changed (added, edited, removed) since `clear_dirty_tags`."""
        return {row[0] for row in self.db.execute("SELECT tag FROM dirty_tags")}

    def clear_dirty_tags(self, tags: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM dirty_tags WHERE tag = ?", ((t,) for t in tags))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def feed_sources(self) -> list[tuple[str, str, str | None, str | None]]:
        """Every stored feed's name, URL, own title and site link."""
        return self.db.execute(
            "SELECT name, url, title, site_url FROM feeds ORDER BY name"
        ).fetchall()

    def drop_orphans(self) -> None:
        """Forget file stats and rendered HTML of entries that no longer exist."""
        for table in ("entry_files", "entry_html"):
            self.db.execute(f"DELETE FROM {table} WHERE id NOT IN (SELECT id FROM entries)")


def _reported(exc: sqlite3.Error, path: Path) -> Exception:
    """An error that makes the database unusable as StateError, naming it and what to do (move
    it away only when it is damaged: otherwise it is sound); any other error as it is."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code, if SQLite's
    where = f"cannot use the state database {path}: {exc}"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StateError(f"{where}; another program holds it, try again later")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StateDamagedError(
            f"{where}; move it away and the next fetch rebuilds it from feeds/"
        )
    if code in _DENIED:
        why = _denied(path)
    elif code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        why = _full(path)
    else:
        return exc
    return StateUnwritableError(f"{where}; {why}") if why else StateError(where)


_DENIED = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def _unusable(exc: sqlite3.Error, path: Path) -> StateError:
    """Any error met while opening the database as StateError."""
    reported = _reported(exc, path)
    if isinstance(reported, StateError):
        return reported
    return StateError(f"cannot use the state database {path}: {exc}")


def _files(path: Path) -> tuple[Path, Path, Path]:
    """The database file and the -wal and -shm files SQLite keeps beside it."""
    return path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")


def _denied(path: Path) -> str | None:
    """Which of the database's files, or its folder, this process may not write."""
    for file in _files(path):
        if file.exists() and not os.access(file, os.W_OK):
            return f"this user may not write {file}"
    if not os.access(path.parent, os.W_OK):
        return (
            f"this user may not write its folder {path.parent}, where SQLite keeps its -wal "
            "and -shm files"
        )
    return None


def _full(path: Path) -> str | None:
    """What keeps the database from growing, when it is plain: its disk is full, or the file
    size limit of this process is reached."""
    try:
        if shutil.disk_usage(path.parent).free < LOW_SPACE:
            return f"the disk of {path.parent} is full, free some space on it"
    except OSError:
        return None
    limit = _file_size_limit()
    sizes = [file.stat().st_size for file in _files(path)[:2] if file.exists()]
    if limit is not None and max(sizes, default=0) > limit - LOW_SPACE:
        return f"this process may not write files past {limit} bytes (ulimit -f)"
    return None


def _file_size_limit() -> int | None:
    """The largest file this process may write, in bytes; None without a limit."""
    if sys.platform == "win32":
        return None
    import resource

    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _checkpointed(path: Path) -> bool:
    """Whether the database file holds all of the database: no -wal file with changes in it."""
    try:
        return _files(path)[1].stat().st_size == 0
    except FileNotFoundError:
        return True


def _entry(row: Sequence[object]) -> StoredEntry:
    values = list(row)
    values[_AUTHORS] = _json_tuple(str(values[_AUTHORS]))
    values[_TAGS] = _json_tuple(str(values[_TAGS]))
    return StoredEntry(*values)  # type: ignore[arg-type]


@lru_cache(maxsize=4096)
def _json_tuple(text: str) -> tuple[Any, ...]:
    """A JSON list as a tuple, decoded once for the many entries that share it (tags, authors)."""
    return tuple(json.loads(text))


_UPSERT_ENTRY = (
    f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _ENTRY_COLUMNS)}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _ENTRY_COLUMNS[1:])}"
)
_KNOWN = {
    "identity": ("identities", "identity"),
    "id": ("entries", "id"),
    "link_key": ("entries", "link_key"),
    "title": ("entries", "title"),
    "deleted": ("deleted_entries", "identity"),
    "deleted_link_key": ("deleted_entries", "link_key"),
}


def _entry_values(entry: StoredEntry) -> list[object]:
    values: list[object] = [getattr(entry, c) for c in _ENTRY_COLUMNS]
    values[_AUTHORS] = json.dumps(list(entry.authors))
    values[_TAGS] = json.dumps(list(entry.tags))
    return values


# entries whose path lies under a folder, found through the index on path
_IN_FOLDER = "path >= ? AND path < ?"


def _folder(folder: str) -> tuple[str, str]:
    return f"{folder}/", f"{folder}0"  # "0" sorts right after "/"


_CHUNK = 500  # bound parameters in one IN (...), well under SQLite's limit


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))
