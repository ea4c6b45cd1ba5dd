"""Storing a feed's posts with its new ones indexed together ends exactly where storing them
one at a time does: same files, same rows, whatever mix of new posts, repeats, shared links,
twin titles and cross-posts the batch holds."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.atomic import TEMP_PREFIX, discard
from aggregator.config import FeedConfig, FrontMatterDefaults
from aggregator.convert import convert_entry, identify_entries
from aggregator.models import Post
from aggregator.parse import parse_feed
from aggregator.state import SCHEMA_VERSION, FeedState, State
from aggregator.store import store_posts
from aggregator.workers import Prewrite, _prewrite
from tests.helpers import snapshot
from tests.test_identity import item, rss

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
Row = tuple[object, ...]
TABLES = ("entries", "identities", "entry_tags", "entry_sources", "entry_html")


def posts_of(source: str, document: str) -> list[Post]:
    config = FeedConfig(
        name=source,
        url=f"https://{source}.example/feed",
        lang=None,
        tags=("news",),
        front=FrontMatterDefaults(),
    )
    feed = parse_feed(document.encode())
    identities = identify_entries(feed.entries, feed, config)
    return [
        convert_entry(entry, feed, config, ZoneInfo("UTC"), NOW, identity)
        for entry, identity in zip(feed.entries, identities, strict=True)
    ]


BATCHES = [
    posts_of(
        "blog",
        rss(
            item("One", "https://blog.example/1", "g1"),
            item("Two", "https://blog.example/2", "g2"),
            item("Two", "https://blog.example/3", "g3"),  # a twin title
            item("One again", "https://blog.example/1", "g1"),  # the same guid twice
            item("Four", "https://blog.example/4", "g4"),
            item("Moved", "https://blog.example/4", "g5"),  # another guid, the same link
            item("Six", "https://blog.example/6", "g6"),
        ),
    ),
    posts_of(
        "mirror",
        rss(
            item("Mirror first", "https://mirror.example/1", "m1"),
            item("Two, mirrored", "https://blog.example/2?utm_source=x", "m2"),  # a cross-post
            item("Mirror last", "https://mirror.example/3", "m3"),
        ),
    ),
    posts_of("blog", rss(item("Seven", "https://blog.example/7", "g7"))),
]


def stored(
    root: Path, together: bool, ahead: bool = False
) -> tuple[dict[str, bytes], dict[str, list[Row]]]:
    """The files and rows after storing BATCHES; `ahead`: with every post's file written
    ahead to a temp file, as worker processes do."""
    feeds = root / "feeds"
    feeds.mkdir(parents=True)
    with State(root / "state.sqlite") as state:
        for posts in BATCHES:
            temps = (
                _prewrite(tuple(posts), Prewrite(feeds, state.file_hashes("blog"))) if ahead else {}
            )
            with state.transaction():
                store_posts(state, feeds, posts, NOW, temps, together=together)
            discard(temps.values())
    db = sqlite3.connect(root / "state.sqlite")
    rows = {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    db.close()
    files = {str(p.relative_to(feeds)): data for p, (data, _) in snapshot(feeds).items()}
    return files, rows


def test_a_batch_stores_what_posts_one_by_one_store(tmp_path: Path) -> None:
    together = stored(tmp_path / "together", together=True)
    one_by_one = stored(tmp_path / "alone", together=False)
    assert together == one_by_one
    files, rows = together
    # the blog's 7 posts less a repeat, the mirror's 3 less its cross-post, and one more
    assert len(files) == len(rows["entries"]) == 9
    titles = sorted(str(row[4]) for row in rows["entries"])
    assert titles.count("Two") == 1 and "Two (2026-11-02)" in titles
    assert sum(1 for row in rows["entry_sources"] if row[1] == "mirror") == 3


def test_files_written_ahead_are_installed_or_removed(tmp_path: Path) -> None:
    ahead = stored(tmp_path / "ahead", together=True, ahead=True)
    assert ahead == stored(tmp_path / "here", together=True)
    assert not list((tmp_path / "ahead").rglob(f"{TEMP_PREFIX}*"))


def test_a_file_written_ahead_is_the_one_installed(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    posts = BATCHES[0]
    with State(tmp_path / "state.sqlite") as state:
        temps = _prewrite(tuple(posts), Prewrite(feeds, {}))
        assert temps  # every post listed once was written ahead
        inodes = {Path(tmp).stat().st_ino for tmp in temps.values()}
        with state.transaction():
            store_posts(state, feeds, posts, NOW, temps)
        discard(temps.values())
    installed = [p for p in feeds.rglob("*.md") if p.stat().st_ino in inodes]
    assert len(installed) == len(inodes) - 1  # the twin title changed: written here


@contextmanager
def older_database(path: Path, version: int, undo: str) -> Iterator[State]:
    """A database made, taken back to schema `version` by the statement `undo`, and opened
    again (which brings it up to date)."""
    with State(path) as state:
        state.db.execute(undo)
        state.db.execute(f"PRAGMA user_version={version}")
    with State(path) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        yield state


def test_an_older_database_gets_the_index_the_feed_of_everything_reads(tmp_path: Path) -> None:
    """The newest entries of all come from an index, not a scan and sort of every entry (65 ms
    a publish on 100,000 entries); a version 1 database gets the index when it is opened."""
    with older_database(tmp_path / "state.sqlite", 1, "DROP INDEX entries_newest") as state:
        statements: list[str] = []
        state.db.set_trace_callback(statements.append)
        state.newest(None, 50)
        state.db.set_trace_callback(None)
        (query,) = [s for s in statements if s.startswith("SELECT")]
        plan = " ".join(row[-1] for row in state.db.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "USING INDEX entries_newest" in plan and "TEMP B-TREE" not in plan, plan


def test_an_article_whose_file_was_deleted_by_hand_is_not_written_again(tmp_path: Path) -> None:
    """A fetch that meets an entry whose file is gone takes it as deleted by hand: the file
    stays gone, and so does the article when met again under its guid or its link, until the
    deletions are forgotten."""
    feeds = tmp_path / "feeds"
    with State(tmp_path / "state.sqlite") as state:
        with state.transaction():
            store_posts(state, feeds, BATCHES[0], NOW)
        (six,) = [p for p in BATCHES[0] if p.title == "Six"]
        (feeds / "blog" / f"{six.entry_id}.md").unlink()
        files = snapshot(feeds)

        revised = posts_of("blog", rss(item("Six, revised", "https://blog.example/6", "g6")))
        with state.transaction():
            assert not store_posts(state, feeds, revised, NOW).changed
        assert state.entry(six.entry_id) is None
        again = posts_of(
            "blog",
            rss(
                item("Six under a new guid", "https://blog.example/6?utm_source=x", "g9"),
                item("Eight", "https://blog.example/8", "g8"),
            ),
        )
        with state.transaction():
            result = store_posts(state, feeds, again, NOW)
        assert (result.new, result.updated) == (1, 0)
        written = set(snapshot(feeds)) - set(files)
        assert [p.name for p in written] == [f"{again[1].entry_id}.md"]

        with state.transaction():
            assert state.forget_deleted(["mirror"]) == 0
            assert state.forget_deleted(["blog"]) == 1
        with state.transaction():
            assert store_posts(state, feeds, revised, NOW).new == 1
    assert "Six, revised" in (feeds / "blog" / f"{six.entry_id}.md").read_text("utf-8")


def test_undeleting_counts_entries_not_their_identities(tmp_path: Path) -> None:
    """A cross-posted article deleted by hand is remembered under each source's guid: forgetting
    it forgets one entry."""
    feeds = tmp_path / "feeds"
    with State(tmp_path / "state.sqlite") as state:
        for posts in BATCHES[:2]:
            with state.transaction():
                store_posts(state, feeds, posts, NOW)
        (two,) = [p for p in BATCHES[0] if p.link == "https://blog.example/2"]
        (feeds / "blog" / f"{two.entry_id}.md").unlink()
        with state.transaction():
            store_posts(state, feeds, BATCHES[0], NOW)
        assert len(state.known("deleted", ["guid\0blog\0g2", "guid\0mirror\0m2"])) == 2
        with state.transaction():
            assert state.forget_deleted([]) == 1


def test_an_older_database_gets_the_table_of_deletions(tmp_path: Path) -> None:
    with older_database(tmp_path / "state.sqlite", 2, "DROP TABLE deleted_entries") as state:
        assert state.known("deleted", ["g1"]) == set()


def test_an_entry_indexed_from_its_file_is_found_by_its_id(tmp_path: Path) -> None:
    """An entry indexed again from its file (the database was lost) has no known identity,
    and may have no link key: a post of the same article is still that entry, by its id, and
    leaves its file as it is."""
    feeds = tmp_path / "feeds"
    with State(tmp_path / "state.sqlite") as state:
        with state.transaction():
            store_posts(state, feeds, BATCHES[0], NOW)
        files = snapshot(feeds)
        with state.transaction():
            state.db.execute("UPDATE identities SET identity = 'file' || char(0) || id")
            state.db.execute("UPDATE entries SET link_key = NULL")
        with state.transaction():
            result = store_posts(state, feeds, BATCHES[0], NOW)
        assert (result.new, result.updated) == (0, 0)
        assert state.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == len(files)
    assert snapshot(feeds) == files


def test_a_folder_deleted_whole_is_written_again(tmp_path: Path) -> None:
    """Deleting a source's whole folder is starting over, not deleting each article: the next
    fetch writes its files again, as they were."""
    feeds = tmp_path / "feeds"
    with State(tmp_path / "state.sqlite") as state:
        with state.transaction():
            store_posts(state, feeds, BATCHES[0], NOW)
        files = {p: data for p, (data, _) in snapshot(feeds).items()}
        shutil.rmtree(feeds / "blog")
        with state.transaction():
            store_posts(state, feeds, BATCHES[0], NOW)
        assert state.db.execute("SELECT COUNT(*) FROM deleted_entries").fetchone()[0] == 0
    assert {p: data for p, (data, _) in snapshot(feeds).items()} == files


def test_undeleting_a_feed_drops_its_validators(tmp_path: Path) -> None:
    """`undelete NAME` has the named feed read whole by its next fetch, deletions or not."""
    with State(tmp_path / "state.sqlite") as state, state.transaction():
        for name in ("blog", "mirror"):
            state.save_feed(FeedState(name, etag='"1"', last_modified="Mon", body_hash="h"))
        assert state.forget_deleted(["blog"]) == 0
        assert state.feed("blog") == FeedState("blog")
        assert state.feed("mirror").etag == '"1"'
