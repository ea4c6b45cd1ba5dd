"""`aggregator publish` from feeds/ without fetching: entry files edited or deleted by hand show
up in the feeds, a broken one is named and left as it was, and nothing else moves."""

from __future__ import annotations

import os
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from aggregator.config import load_config
from aggregator.pipeline import run_cycle
from aggregator.publish import publish
from aggregator.reconcile import reconcile
from aggregator.state import State
from tests.feedcheck import ATOM, check_atom
from tests.helpers import (
    http_server,
    make_project,
    rss,
    run_cli,
    serve_bytes,
    snapshot,
    validate_atom,
)
from tests.seed import BASE_TIME, add_entry, project

BASE = "http://127.0.0.1:8080/"


def feed_entries(path: Path) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Entry title ⇒ (id, updated, categories)."""
    root = ET.parse(path).getroot()
    return {
        e.findtext(f"{ATOM}title") or "": (
            e.findtext(f"{ATOM}id") or "",
            e.findtext(f"{ATOM}updated") or "",
            tuple(c.get("term") or "" for c in e.findall(f"{ATOM}category")),
        )
        for e in root.findall(f"{ATOM}entry")
    }


def test_hand_edits_and_deletions_reach_the_feeds(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        edited = add_entry(config, state, "edited", tags=("news",))
        deleted = add_entry(config, state, "deleted", tags=("news",), date=BASE_TIME + 60)
        add_entry(config, state, "kept", source="other", date=BASE_TIME + 120)
    proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 0, proc.stderr
    output = config.site.output_dir
    before = feed_entries(output / "all.xml")

    path = config.site.feeds_dir / edited.path
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('title: "Entry edited"', 'title: "Fixed by hand"').replace(
            '  - "news"\n', '  - "news"\n  - "handpicked"\n'
        ),
        encoding="utf-8",
    )
    (config.site.feeds_dir / deleted.path).unlink()
    proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 0, proc.stderr
    assert "1 entries edited and 1 deleted by hand" in proc.stderr

    after = feed_entries(output / "all.xml")
    assert set(after) == {"Fixed by hand", "Entry kept"}
    assert after["Fixed by hand"][0] == before["Entry edited"][0]
    assert after["Fixed by hand"][1] > before["Entry edited"][1]
    assert after["Fixed by hand"][2] == ("src", "news", "handpicked")
    assert after["Entry kept"] == before["Entry kept"]
    assert set(feed_entries(output / "tags" / "handpicked.xml")) == {"Fixed by hand"}
    assert set(feed_entries(output / "tags" / "news.xml")) == {"Fixed by hand"}
    for feed in output.rglob("*.xml"):
        url = BASE + feed.relative_to(output).as_posix()
        assert check_atom(feed.read_bytes(), url) == []

    settled = snapshot(output)
    time.sleep(0.02)
    proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 0 and "0 files written" in proc.stderr
    assert snapshot(output) == settled


def test_broken_entry_file_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        broken = add_entry(config, state, "broken", title="Fine title")
        add_entry(config, state, "fine", source="other")
    assert run_cli("publish", "-c", str(config.path)).returncode == 0
    path = config.site.feeds_dir / broken.path
    path.write_text(path.read_text().replace('date: "', 'date: "yesterday '), encoding="utf-8")
    proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 1
    problem = [line for line in proc.stderr.splitlines() if str(path) in line]
    assert len(problem) == 1 and "is not" in problem[0] and "stays as it was" in problem[0]
    assert set(feed_entries(config.site.output_dir / "all.xml")) == {"Fine title", "Entry fine"}


def test_a_whole_folder_deleted_before_any_publish_drops_its_entries(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        add_entry(config, state, "kept", source="kept")
        publish(config, state)
        assert reconcile(config, state, BASE_TIME).deleted == 0
        add_entry(config, state, "new", source="fresh")
        shutil.rmtree(config.site.feeds_dir / "fresh")
        started_over = reconcile(config, state, BASE_TIME)
        assert (started_over.deleted, started_over.dropped) == (0, 1)
        # a folder deleted whole is not remembered as deleted, file by file
        assert state.db.execute("SELECT COUNT(*) FROM deleted_entries").fetchone()[0] == 0
        publish(config, state)
        untouched = reconcile(config, state, BASE_TIME)
    assert (untouched.edited, untouched.deleted, untouched.problems) == (0, 0, [])
    assert set(feed_entries(config.site.output_dir / "all.xml")) == {"Entry kept"}
    assert not (config.site.output_dir / "tags" / "fresh.xml").exists()


def test_files_the_store_wrote_are_not_read_again_by_the_scan_for_hand_edits(
    tmp_path: Path,
) -> None:
    """The store records the size and mtime of each file it writes, as the scan would after
    reading it: the first publish after a fetch compares stats instead of reading every new
    file (a fetch of 100,000 entries made that publish take twice as long)."""
    config = load_config(make_project(tmp_path))
    assert not run_cycle(config, config.feeds).failed
    with State(config.state_path) as state:
        folders = state.entry_folders()
        rows = [row for folder in sorted(folders) for row in state.entry_files(folder)]
        assert len(rows) == len(list(config.site.feeds_dir.rglob("*.md"))) > 0
        for _, rel, digest, checked, size, mtime in rows:
            found = (config.site.feeds_dir / rel).stat()
            assert (checked, size, mtime) == (digest, found.st_size, found.st_mtime_ns)
        unread = config.site.feeds_dir / rows[0][1]  # changed, but its size and mtime kept
        before = unread.stat()
        unread.write_bytes(unread.read_bytes().replace(b"title:", b"TITLE:", 1))
        os.utime(unread, ns=(before.st_atime_ns, before.st_mtime_ns))
        edited = config.site.feeds_dir / rows[-1][1]
        edited.write_text(edited.read_text(encoding="utf-8") + "An edit by hand.\n", "utf-8")
        hand = reconcile(config, state, BASE_TIME)
    assert (hand.edited, hand.deleted, hand.problems) == (1, 0, [])


@contextmanager
def remote_project(tmp_path: Path, bodies: dict[str, bytes]) -> Iterator[Path]:
    """A project (its config) of one feed, `remote`, that a local server answers with
    `bodies["v"]` as it is at each request, its length as the ETag."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        serve_bytes(bodies["v"], etag=f'"{len(bodies["v"])}"')(handler)

    with http_server({"/feed.xml": route}) as base:
        yield make_project(
            tmp_path,
            "[fetch]\nallow_private_networks = true\n"
            f'[[feeds]]\nname = "remote"\nurl = "{base}/feed.xml"\n',
        )


def test_a_hand_edit_stands_until_the_source_changes_the_article(tmp_path: Path) -> None:
    """Fetches that read the feed again leave an edited entry file as the person left it,
    however often, until the source itself changes the article: then the source's text wins."""
    bodies = {"v": rss("Remote", [("a", "First"), ("b", "Second")])}
    with remote_project(tmp_path, bodies) as config:
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        folder = tmp_path / "feeds" / "remote"
        (path,) = [p for p in folder.glob("*.md") if 'title: "First"' in p.read_text("utf-8")]
        text = path.read_text("utf-8").replace('title: "First"', 'title: "Mine"')
        path.write_text(text, encoding="utf-8")
        assert "1 entries edited" in run_cli("publish", "-c", str(config)).stderr
        edited = path.read_bytes()
        for second in ("Second, revised", "Second, again"):
            bodies["v"] = rss("Remote", [("a", "First"), ("b", second)])
            assert run_cli("fetch", "-c", str(config), "--force").returncode == 0
            assert path.read_bytes() == edited
            assert set(feed_entries(tmp_path / "output" / "all.xml")) == {"Mine", second}
        bodies["v"] = rss("Remote", [("a", "First, corrected"), ("b", "Second, again")])
        assert run_cli("fetch", "-c", str(config), "--force").returncode == 0
    assert 'title: "First, corrected"' in path.read_text("utf-8")
    assert set(feed_entries(tmp_path / "output" / "all.xml")) == {
        "First, corrected",
        "Second, again",
    }


def test_an_entry_deleted_by_hand_stays_deleted_until_undeleted(tmp_path: Path) -> None:
    """`publish` takes a deleted entry file as the person's wish: the source still lists the
    article (its text changed, another guid), yet no fetch writes it again; `undelete` lets
    the next fetch write it, even though the server would answer 304."""
    bodies = {"v": rss("Remote", [("a", "Kept"), ("b", "Unwanted")])}
    with remote_project(tmp_path, bodies) as config:
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        folder = tmp_path / "feeds" / "remote"
        (unwanted,) = [p for p in folder.glob("*.md") if "Unwanted" in p.read_text("utf-8")]
        unwanted.unlink()
        proc = run_cli("publish", "-c", str(config))
        assert "0 entries edited and 1 deleted by hand" in proc.stderr, proc.stderr

        bodies["v"] = rss("Remote", [("a", "Kept, revised"), ("b", "Unwanted, revised")])
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
        # the unwanted article under another guid, at the same link
        bodies["v"] = bodies["v"].replace(b"<guid>b</guid>", b"<guid>b2</guid>")
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
        texts = [p.read_text("utf-8") for p in folder.glob("*.md")]
        assert len(texts) == 1 and "Kept, revised" in texts[0]
        feed = feed_entries(tmp_path / "output" / "all.xml")
        assert set(feed) == {"Kept, revised"}

        assert run_cli("undelete", "nope", "-c", str(config)).returncode == 2
        proc = run_cli("undelete", "remote", "-c", str(config))
        assert proc.returncode == 0 and "1 entries deleted by hand forgotten" in proc.stderr
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
    texts = [p.read_text("utf-8") for p in folder.glob("*.md")]
    assert len(texts) == 2 and any("Unwanted, revised" in t for t in texts)
    assert set(feed_entries(tmp_path / "output" / "all.xml")) == {
        "Kept, revised",
        "Unwanted, revised",
    }


def test_undelete_brings_back_an_article_that_only_another_source_still_lists(
    tmp_path: Path,
) -> None:
    """A cross-posted article deleted by hand, which its first source no longer lists: after
    `undelete`, the next `fetch --force` writes it from the other source, though that server
    would answer 304."""
    bodies = {
        "first": rss("First", [("1", "One"), ("2", "Two")]),
        "second": rss("Second", [("2", "Two"), ("9", "Nine")]),
    }

    def route(handler: BaseHTTPRequestHandler) -> None:
        body = bodies[handler.path.strip("/").removesuffix(".xml")]
        serve_bytes(body, etag=f'"{len(body)}"')(handler)

    with http_server({f"/{name}.xml": route for name in bodies}) as base:
        config = str(
            make_project(
                tmp_path,
                "[fetch]\nallow_private_networks = true\n"
                + "".join(f'[[feeds]]\nname = "{n}"\nurl = "{base}/{n}.xml"\n' for n in bodies),
            )
        )
        assert run_cli("fetch", "-c", config).returncode == 0
        (two,) = [p for p in tmp_path.glob("feeds/*/*.md") if "Two" in p.read_text("utf-8")]
        two.unlink()
        assert "1 deleted by hand" in run_cli("publish", "-c", config).stderr
        bodies["first"] = rss("First", [("1", "One"), ("3", "Three")])
        assert run_cli("fetch", "--force", "-c", config).returncode == 0
        proc = run_cli("undelete", "-c", config)
        assert "1 entries deleted by hand forgotten" in proc.stderr, proc.stderr
        assert run_cli("fetch", "--force", "-c", config).returncode == 0
    titles = set(feed_entries(tmp_path / "output" / "all.xml"))
    assert titles == {"One", "Two", "Three", "Nine"}


def test_a_folder_deleted_whole_is_written_again_by_the_next_fetch(tmp_path: Path) -> None:
    """Deleting a source's folder is starting over, not a deletion by hand: the next fetch
    that reads the source writes its articles again, although the server would answer 304 and
    the body is the same, whether `publish` ran in between or not."""
    bodies = {"v": rss("Remote", [("a", "First"), ("b", "Second")])}
    with remote_project(tmp_path, bodies) as config:
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        folder = tmp_path / "feeds" / "remote"
        files = {path: path.read_bytes() for path in folder.glob("*.md")}
        assert len(files) == 2
        shutil.rmtree(folder)
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
        assert {path: path.read_bytes() for path in folder.glob("*.md")} == files
        shutil.rmtree(folder)
        proc = run_cli("publish", "-c", str(config))
        assert "0 entries edited and 0 deleted by hand" in proc.stderr, proc.stderr
        assert feed_entries(tmp_path / "output" / "all.xml") == {}
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
    assert {path: path.read_bytes() for path in folder.glob("*.md")} == files
    assert set(feed_entries(tmp_path / "output" / "all.xml")) == {"First", "Second"}


def test_a_lost_state_database_is_rebuilt_from_the_entry_files(tmp_path: Path) -> None:
    """The entry files are the content of record: with the database gone, the next fetch
    indexes them again before storing anything, so an article its source no longer lists
    stays in the feeds, no file is written again, and every entry keeps its id, its date and
    its updated time (one that changed after its date: as the published feeds said)."""
    bodies = {"v": rss("Remote", [("a", "Old"), ("b", "Kept"), ("c", "Newer")])}
    with remote_project(tmp_path, bodies) as config:
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        first = feed_entries(tmp_path / "output" / "all.xml")
        bodies["v"] = rss("Remote", [("b", "Kept, revised"), ("c", "Newer")])
        assert run_cli("fetch", "-c", str(config), "--force").returncode == 0
        files = snapshot(tmp_path / "feeds")
        published = feed_entries(tmp_path / "output" / "all.xml")
        assert set(published) == {"Old", "Kept, revised", "Newer"}
        assert published["Kept, revised"][1] > first["Kept"][1]
        for lost in tmp_path.glob("aggregator-state.sqlite*"):
            lost.unlink()
        notes = tmp_path / "feeds" / "remote" / "notes.md"  # not named as entries are
        notes.write_text("not an entry\n", encoding="utf-8")

        assert run_cli("undelete", "-c", str(config)).returncode == 0  # makes a new database
        assert (tmp_path / "aggregator-state.sqlite").exists()
        proc = run_cli("fetch", "-c", str(config))
        assert proc.returncode == 0, proc.stderr
        assert "state database was new: 3 entry files in feeds/ indexed again" in proc.stderr
    notes.unlink()
    assert snapshot(tmp_path / "feeds") == files
    assert feed_entries(tmp_path / "output" / "all.xml") == published
    validate_atom(sorted((tmp_path / "output").rglob("*.xml")))


def test_an_entry_file_put_back_by_hand_is_no_longer_deleted(tmp_path: Path) -> None:
    """Deleting an entry file and putting it back undoes the deletion: `publish` indexes the
    file again, and the source's later changes reach it again."""
    bodies = {"v": rss("Remote", [("a", "Kept"), ("b", "Wanted after all")])}
    with remote_project(tmp_path, bodies) as config:
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        folder = tmp_path / "feeds" / "remote"
        (path,) = [p for p in folder.glob("*.md") if "Wanted" in p.read_text("utf-8")]
        saved = path.read_bytes()
        path.unlink()
        assert "1 deleted by hand" in run_cli("publish", "-c", str(config)).stderr
        path.write_bytes(saved)
        proc = run_cli("publish", "-c", str(config))
        assert "1 entry files the state did not know indexed" in proc.stderr, proc.stderr
        assert set(feed_entries(tmp_path / "output" / "all.xml")) == {"Kept", "Wanted after all"}

        bodies["v"] = rss("Remote", [("a", "Kept"), ("b", "Wanted, revised")])
        assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
    assert 'title: "Wanted, revised"' in path.read_text("utf-8")
    assert set(feed_entries(tmp_path / "output" / "all.xml")) == {"Kept", "Wanted, revised"}


def test_reading_an_entry_file_back_changes_only_what_was_edited(tmp_path: Path) -> None:
    """A title edited by hand, or the whole state database lost: the summary the front matter
    shows escaped is read back as the text it was, and a date in the hour that the end of DST
    repeats stays the instant it was (the file's local time alone names two)."""
    (tmp_path / "f.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://e.example/</link><item><title>Before</title>"
        "<link>https://e.example/1</link><pubDate>Sun, 01 Nov 2026 06:30:00 GMT</pubDate>"
        "<description>&lt;p&gt;If a &amp;lt; b and &amp;amp;amp; is text&lt;/p&gt;"
        "</description></item></channel></rss>",
        encoding="utf-8",
    )
    config = make_project(
        tmp_path,
        '[site]\nbase_url = "https://news.example.org/"\ntimezone = "America/New_York"\n'
        '[[feeds]]\nname = "t"\nurl = "f.xml"\n',
    )
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    [path] = (tmp_path / "feeds").rglob("*.md")
    text = path.read_text(encoding="utf-8")
    assert 'summary: "If a &lt; b and &amp;amp; is text"' in text
    assert 'date: "2026-11-01 01:30:00"' in text

    def entry() -> tuple[str, ...]:
        [node] = ET.parse(tmp_path / "output" / "all.xml").getroot().findall(f"{ATOM}entry")
        return tuple(
            node.findtext(f"{ATOM}{key}") or "" for key in ("title", "summary", "published")
        )

    shown = "If a &lt; b and &amp;amp; is text"  # the summary is type="html"
    assert entry() == ("Before", shown, "2026-11-01T06:30:00Z")
    path.write_text(text.replace('title: "Before"', 'title: "After"'), encoding="utf-8")
    proc = run_cli("publish", "-c", str(config))
    assert proc.returncode == 0 and "1 entries edited" in proc.stderr
    assert entry() == ("After", shown, "2026-11-01T06:30:00Z")

    for lost in tmp_path.glob("aggregator-state.sqlite*"):
        lost.unlink()
    assert run_cli("publish", "-c", str(config)).returncode == 0
    assert entry()[:2] == ("After", shown)
