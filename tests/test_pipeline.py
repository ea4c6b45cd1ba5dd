"""`aggregator fetch` end to end: entries and feeds from the shipped config, idempotent reruns,
incremental rewrites, a broken feed isolated, an http source, valid Atom."""

from __future__ import annotations

import ast
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aggregator.atomic import TEMP_PREFIX
from aggregator.config import Config, load_config
from aggregator.convert import convert_entry
from aggregator.defaults import PARALLEL_MIN_FEEDS
from aggregator.frontmatter import read
from aggregator.models import Fetched
from aggregator.parse import parse_feed
from aggregator.pipeline import CLEAN, TEMPS_KEY, FeedOutcome, Preparing, run_cycle
from aggregator.state import FEEDS_INDEXED, FeedState, State
from aggregator.store import store_posts
from bench.synth import feed_xml
from tests.entrycheck import FRONT_KEYS
from tests.helpers import (
    Route,
    http_server,
    make_project,
    run_cli,
    serve_bytes,
    snapshot,
    validate_atom,
)

T = TypeVar("T")


def test_shipped_config_produces_entries_and_valid_feeds(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    entries = sorted((tmp_path / "feeds").rglob("*.md"))
    assert len(entries) == 7
    for path in entries:
        meta, body = read(path.read_text(encoding="utf-8"))
        assert list(meta) == FRONT_KEYS
        categories = meta["categories"]
        assert isinstance(categories, list)
        assert body.rstrip("\n").splitlines()[-1].startswith(f"[{categories[0]}](")
    feeds = sorted((tmp_path / "output").rglob("*.xml"))
    names = {p.relative_to(tmp_path / "output").as_posix() for p in feeds}
    assert {"all.xml", "tags/tech.xml", "tags/science.xml", "tags/keji.xml"} <= names
    validate_atom(feeds)
    assert (tmp_path / "aggregator-state.sqlite").exists()


def test_second_run_touches_nothing(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    before = snapshot(tmp_path / "feeds", tmp_path / "output")
    time.sleep(0.05)
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert snapshot(tmp_path / "feeds", tmp_path / "output") == before


def test_changed_entry_rewrites_only_its_file_and_feeds(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    before = snapshot(tmp_path / "feeds", tmp_path / "output")
    sample = tmp_path / "samples" / "science-atom.xml"
    sample.write_text(
        sample.read_text(encoding="utf-8").replace(
            "accurate to a few centimetres", "accurate to two centimetres"
        ),
        encoding="utf-8",
    )
    time.sleep(0.05)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    after = snapshot(tmp_path / "feeds", tmp_path / "output")
    changed = {p.relative_to(tmp_path).as_posix() for p in after if after[p] != before.get(p)}
    entry = [c for c in changed if c.startswith("feeds/")]
    assert len(entry) == 1 and entry[0].startswith("feeds/science-notes/")
    assert "two centimetres" in (tmp_path / entry[0]).read_text(encoding="utf-8")
    assert {c for c in changed if c.startswith("output/")} == {
        "output/all.xml",
        "output/tags/science.xml",
        "output/tags/science-notes.xml",
    }


def test_broken_feed_is_named_and_others_still_land(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    tech = sorted((tmp_path / "feeds" / "tech-wire").glob("*.md"))
    kept = {p: p.read_bytes() for p in tech}
    (tmp_path / "samples" / "tech-rss.xml").write_text(
        "<html><body>gone</body></html>", encoding="utf-8"
    )
    extra = config.read_text(encoding="utf-8") + (
        '\n[[feeds]]\nname = "missing"\nurl = "samples/nope.xml"\ntags = ["tech"]\n'
    )
    config.write_text(extra, encoding="utf-8")
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert any(line.startswith("tech-wire: ") and "not a feed" in line for line in lines)
    assert any(line.startswith("missing: ") and "cannot read" in line for line in lines)
    assert {p: p.read_bytes() for p in tech} == kept
    assert len(list((tmp_path / "feeds").rglob("*.md"))) == 7


def test_a_feed_whose_entries_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    """A folder that cannot be written (here a file in its place; a full disk is the same
    error) fails its feed, named with the reason and the path; the others are stored and
    published."""
    config = make_project(tmp_path)
    blocked = tmp_path / "feeds" / "tech-wire"
    blocked.parent.mkdir()
    blocked.write_text("not a folder", encoding="utf-8")
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("tech-wire: ")]
    assert "cannot store its entries: File exists" in line and str(blocked) in line
    stored = {p.parent.name for p in (tmp_path / "feeds").rglob("*.md")}
    assert stored == {"keji", "science-notes"}
    published = (tmp_path / "output" / "all.xml").read_text(encoding="utf-8")
    assert published.count("</entry>") == len(list((tmp_path / "feeds").rglob("*.md")))
    blocked.unlink()
    assert run_cli("fetch", "--force", "-c", str(config)).returncode == 0
    assert list(blocked.glob("*.md"))


def test_a_directory_in_place_of_an_entry_file_is_named(tmp_path: Path) -> None:
    """The reason names the path in the way, not the temp file that was to replace it (and was
    removed by then)."""
    config = make_project(tmp_path)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    [entry] = [
        p
        for p in (tmp_path / "feeds" / "science-notes").glob("*.md")
        if "few centimetres" in p.read_text(encoding="utf-8")
    ]
    entry.unlink()
    entry.mkdir()
    sample = tmp_path / "samples" / "science-atom.xml"
    text = sample.read_text(encoding="utf-8")
    sample.write_text(text.replace("a few centimetres", "two centimetres"), encoding="utf-8")
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("science-notes: ")]
    assert line == f"science-notes: cannot store its entries: Is a directory ({entry})"


def test_a_cycle_stopped_while_storing_leaves_the_mark_to_look_for_temps(tmp_path: Path) -> None:
    """Stopped after its first feed is stored, a cycle leaves the others' temp files for the
    next one to remove: it must not mark itself clean."""
    config = load_config(make_project(tmp_path))
    stop = threading.Event()
    report = run_cycle(config, config.feeds, progress=lambda outcome: stop.set(), stop=stop)
    assert len([o for o in report.outcomes if o.new]) < len(config.feeds)
    with State(config.state_path) as state:
        assert state.meta(TEMPS_KEY) != CLEAN


def test_http_source_and_named_fetch(tmp_path: Path) -> None:
    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Remote</title>'
        b"<link>https://remote.example/</link><item><title>Over HTTP</title>"
        b"<link>https://remote.example/1</link><guid>r1</guid>"
        b"<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
        b"<description>&lt;p&gt;fetched with httpx&lt;/p&gt;</description></item>"
        b"</channel></rss>"
    )
    with http_server({"/feed.xml": serve_bytes(feed, etag='"v1"')}) as base:
        config = make_project(
            tmp_path,
            (
                "[fetch]\nallow_private_networks = true\n"
                f'[[feeds]]\nname = "remote"\nurl = "{base}/feed.xml"\ntags = ["web"]\n'
                '[[feeds]]\nname = "local"\nurl = "samples/tech-rss.xml"\n'
            ),
        )
        proc = run_cli("fetch", "remote", "-c", str(config))
        assert proc.returncode == 0, proc.stderr
        files = list((tmp_path / "feeds").rglob("*.md"))
        assert [p.parent.name for p in files] == ["remote"]
        assert "fetched with httpx" in files[0].read_text(encoding="utf-8")
        assert (tmp_path / "output" / "tags" / "web.xml").exists()
        unknown = run_cli("fetch", "nope", "-c", str(config))
        assert unknown.returncode == 2 and "nope" in unknown.stderr


@contextmanager
def _preparing(
    tmp_path: Path, names: list[str]
) -> Iterator[tuple[Config, Preparing, dict[str, Fetched]]]:
    """A config of feeds `names` never stored before, a Preparing for all of them, and a small
    fetched body for each."""
    tables = "".join(f'\n[[feeds]]\nname = "{n}"\nurl = "https://x.example/{n}"\n' for n in names)
    (tmp_path / "config.toml").write_text("[site]\n" + tables, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    states = {n: FeedState(name=n) for n in names}
    now = datetime(2026, 11, 28, tzinfo=UTC)
    fetched = {
        n: Fetched(n, feed_xml(i, entries=3), f"https://x.example/{n}") for i, n in enumerate(names)
    }
    with (
        State(config.state_path) as state,
        Preparing(config, state, states, now, config.feeds) as preparing,
    ):
        yield config, preparing, fetched


def test_only_a_few_prepared_feeds_wait_for_the_store(tmp_path: Path) -> None:
    """Workers get the next feeds to be stored, a few at a time, however many were fetched."""
    names = [f"feed-{n:02d}" for n in range(24)]
    with _preparing(tmp_path, names) as (config, p, fetched):
        assert p.pool is not None
        limit = 4 * p.pool.size
        for source in reversed(config.feeds):  # fetches complete in any order
            p.start(source, fetched[source.name])
            assert len(p.futures) <= limit
        assert len(p.futures) == limit and len(p.bodies) == len(names) - limit
        for i, source in enumerate(config.feeds):  # the store takes them in config order
            prepared = p.result(source, fetched[source.name])
            assert prepared.feed.title == f"News {i}" or prepared.feed.title == f"新闻 {i}"
            assert len(p.futures) <= limit
        assert not p.futures and not p.bodies


@contextmanager
def _served(tmp_path: Path, count: int, routes: dict[int, Route]) -> Iterator[Config]:
    """A project of feeds `feed-0` ... served on 127.0.0.1, three entries each, feed n answered
    by `routes[n]` where given, while the server runs."""
    served = {
        f"/{n}.xml": routes.get(n) or serve_bytes(feed_xml(n, entries=3)) for n in range(count)
    }
    with http_server(served) as base:
        tables = "".join(
            f'\n[[feeds]]\nname = "feed-{n}"\nurl = "{base}/{n}.xml"\n' for n in range(count)
        )
        yield load_config(
            make_project(tmp_path, "[fetch]\nallow_private_networks = true\n" + tables)
        )


def _fetch_loading(args: list[str], *modules: str) -> tuple[str, list[str]]:
    """`aggregator fetch ARGS` run in a fresh interpreter: its stderr, and which of `modules` it
    imported."""
    probe = (
        "import sys\n"
        "from aggregator.cli import main\n"
        f"main(['fetch', *{args!r}])\n"
        f"print(sorted(set({list(modules)!r}) & set(sys.modules)))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stderr, ast.literal_eval(ran.stdout.strip().splitlines()[-1])


def test_a_cycle_with_nothing_to_parse_loads_no_worker_machinery(tmp_path: Path) -> None:
    """Every feed fetched again and unchanged: no worker process is made, and neither
    multiprocessing nor the grapheme module is even imported (40 ms of such a run's start)."""
    with _served(tmp_path, 6, {}) as config:
        assert len(run_cycle(config, config.feeds).outcomes) == 6
        stderr, loaded = _fetch_loading(
            ["--force", "-c", str(config.path)], "multiprocessing", "regex"
        )
    assert "6 feeds, 0 failed, 0 new, 0 updated" in stderr
    assert loaded == []


def test_a_first_cycle_with_no_entry_files_reads_none_back(tmp_path: Path) -> None:
    """A new project's state database has no entry files to index: its first cycle notes so
    without loading the reader of entry files (and YAML)."""
    config = make_project(tmp_path)
    assert _fetch_loading(["-c", str(config)], "aggregator.reconcile", "yaml")[1] == []
    with State(tmp_path / "aggregator-state.sqlite") as state:
        assert state.meta(FEEDS_INDEXED) == "yes"


def test_feeds_are_stored_while_a_slow_one_is_still_being_fetched(tmp_path: Path) -> None:
    """The first feed is stored (and reported) while the second one's server still holds its
    answer back: storing does not wait for the slowest fetch."""
    first_stored = threading.Event()
    held_until_stored: list[bool] = []

    def slow(handler: BaseHTTPRequestHandler) -> None:
        held_until_stored.append(first_stored.wait(timeout=20))
        serve_bytes(feed_xml(1, entries=3))(handler)

    with _served(tmp_path, 4, {1: slow}) as config:
        order: list[str] = []

        def progress(outcome: FeedOutcome) -> None:
            order.append(outcome.name)
            if outcome.name == "feed-0":
                first_stored.set()

        report = run_cycle(config, config.feeds, progress=progress)
    assert held_until_stored == [True]
    assert order == ["feed-0", "feed-1", "feed-2", "feed-3"]
    assert [o.new for o in report.outcomes] == [3, 3, 3, 3] and not report.failed


def test_each_feed_reports_its_own_seconds(tmp_path: Path) -> None:
    """A feed's seconds are its fetch and its storing: the quick feeds listed after a slow one
    are stored after it, but do not report its wait as theirs."""
    delay = 1.5

    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(delay)
        serve_bytes(feed_xml(0, entries=3))(handler)

    with _served(tmp_path, 3, {0: slow}) as config:
        report = run_cycle(config, config.feeds)
    seconds = {o.name: o.seconds for o in report.outcomes}
    assert not report.failed
    assert seconds["feed-0"] >= delay, seconds
    assert seconds["feed-1"] < delay / 2 and seconds["feed-2"] < delay / 2, seconds


def test_feeds_are_prepared_here_once_a_worker_died(tmp_path: Path) -> None:
    """A worker that died (killed, or out of memory) costs at most the feeds in its hands: the
    rest are prepared in the main process, and the cycle goes on."""
    names = [f"feed-{n}" for n in range(6)]
    with _preparing(tmp_path, names) as (config, p, fetched):
        assert p.pool is not None
        with pytest.raises(BrokenProcessPool):
            p.pool.executor.submit(os._exit, 1).result()
        for source in config.feeds:
            p.start(source, fetched[source.name])
        assert p.lost and not p.futures
        prepared = [p.result(s, fetched[s.name]) for s in config.feeds]
        assert not p.bodies
    assert [len(one.posts) for one in prepared] == [3] * 6
    assert [one.posts[0].source for one in prepared] == names


def test_temp_files_are_looked_for_only_after_a_cycle_that_did_not_end_cleanly(
    tmp_path: Path,
) -> None:
    """Walking every entry folder for a killed cycle's temp files is skipped after a clean end."""
    config = load_config(make_project(tmp_path))
    run_cycle(config, config.feeds)
    with State(config.state_path) as state:
        assert state.meta(TEMPS_KEY) == CLEAN
    folder = next(p for p in config.site.feeds_dir.iterdir() if p.is_dir())
    planted = folder / f"{TEMP_PREFIX}planted"
    planted.write_bytes(b"half a file")
    run_cycle(config, config.feeds)
    assert planted.exists()
    with State(config.state_path) as state, state.transaction():
        state.set_meta(TEMPS_KEY, "cycle")  # what a cycle killed halfway leaves
    run_cycle(config, config.feeds)
    assert not planted.exists()


def test_a_cycle_is_marked_unclean_while_it_runs(tmp_path: Path) -> None:
    """A kill at any moment of a cycle leaves the mark that has the next one look for temps."""
    seen: list[str | None] = []

    def record_mark(handler: BaseHTTPRequestHandler) -> None:
        with sqlite3.connect(tmp_path / "aggregator-state.sqlite") as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (TEMPS_KEY,)).fetchone()
        seen.append(row and row[0])
        serve_bytes(feed_xml(0, entries=3))(handler)

    with http_server({"/feed.xml": record_mark}) as base:
        config = load_config(
            make_project(
                tmp_path,
                "[fetch]\nallow_private_networks = true\n"
                f'[[feeds]]\nname = "f"\nurl = "{base}/feed.xml"\n',
            )
        )
        run_cycle(config, config.feeds)
    assert seen == ["cycle"]
    with State(config.state_path) as state:
        assert state.meta(TEMPS_KEY) == CLEAN


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def _kill_workers() -> None:
    """SIGKILL this process's worker processes (the fork server's children)."""
    for server in _children(os.getpid()):
        if b"forkserver" in Path(f"/proc/{server}/cmdline").read_bytes():
            for worker in _children(server):
                os.kill(worker, signal.SIGKILL)


def test_a_cycle_whose_worker_died_is_left_unclean(tmp_path: Path) -> None:
    """The feeds a killed worker had in hand may have left temp files: the next cycle looks."""
    routes: dict[str, Route] = {
        f"/{n}.xml": serve_bytes(feed_xml(n, entries=3)) for n in range(2 * PARALLEL_MIN_FEEDS)
    }
    last = f"/{2 * PARALLEL_MIN_FEEDS - 1}.xml"
    served = routes[last]

    def kill_then_serve(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.5)  # the other feeds are with the workers by now
        _kill_workers()
        served(handler)

    routes[last] = kill_then_serve
    with http_server(routes) as base:
        tables = "".join(f'[[feeds]]\nname = "f{r[1:-4]}"\nurl = "{base}{r}"\n' for r in routes)
        config = load_config(
            make_project(tmp_path, "[fetch]\nallow_private_networks = true\n" + tables)
        )
        report = run_cycle(config, config.feeds)
    assert len(report.outcomes) == len(routes)
    with State(config.state_path) as state:
        assert state.meta(TEMPS_KEY) != CLEAN


def _raising_for(real: Callable[..., T], fails: Callable[[], bool]) -> Callable[..., T]:
    """`real`, raising as a bug would on the calls `fails` picks: no real input is known to
    make converting or storing fail (each one found was fixed), so one is made to."""

    def call(*args: Any, **kwargs: Any) -> T:
        if fails():
            raise KeyError("broken")
        return real(*args, **kwargs)

    return call


def _calls(*failing: int) -> Callable[[], bool]:
    """True on the calls numbered `failing` (from 1)."""
    count = itertools.count(1)
    return lambda: next(count) in failing


def test_an_entry_that_fails_to_convert_costs_that_entry_not_its_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug one entry meets leaves that entry out, named in its feed's notice with the reason;
    the feed's other entries are stored, and neither the body nor the validators are kept, so
    the next fetch reads the feed whole and tries the entry again (here: and stores it)."""
    body = feed_xml(0, entries=3)
    with http_server({"/feed.xml": serve_bytes(body, etag='"v1"')}) as base:
        config = load_config(make_project(tmp_path, _one_feed(f"{base}/feed.xml")))
        convert = _raising_for(convert_entry, _calls(2))
        monkeypatch.setattr("aggregator.workers.convert_entry", convert)
        [outcome] = run_cycle(config, config.feeds).outcomes
        second = parse_feed(body, "application/rss+xml", f"{base}/feed.xml").entries[1].link
        assert outcome.ok and outcome.new == 2
        assert outcome.notice == (
            f"1 entry left out, the conversion failed ({second}: KeyError: 'broken');"
            " tried again at the next fetch"
        )
        assert len(list((tmp_path / "feeds").rglob("*.md"))) == 2
        with State(config.state_path) as state:
            kept = state.feed("wire")
        assert kept.body_hash is None and kept.etag is None
        monkeypatch.undo()
        [again] = run_cycle(config, config.feeds).outcomes
    assert again.ok and again.new == 1 and again.notice is None
    assert len(list((tmp_path / "feeds").rglob("*.md"))) == 3


def test_a_feed_whose_storing_meets_a_bug_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while storing a feed (other than an unusable database) fails that
    feed, named with the reason, and leaves nothing of it half stored; the feeds after it are
    stored and published, and the next cycle stores it."""
    config = load_config(make_project(tmp_path))
    first = config.feeds[0].name
    store = _raising_for(store_posts, _calls(1))
    monkeypatch.setattr("aggregator.pipeline.store_posts", store)
    report = run_cycle(config, config.feeds)
    [failed] = report.failed
    assert failed.name == first
    assert failed.reason == "unexpected error while storing: KeyError: 'broken'"
    assert [o.ok for o in report.outcomes] == [False, True, True]
    folders = {p.parent.name for p in (tmp_path / "feeds").rglob("*.md")}
    assert folders == {f.name for f in config.feeds[1:]}
    assert not [p for p in (tmp_path / "feeds").rglob("*") if p.name.startswith(TEMP_PREFIX)]
    with State(config.state_path) as state:
        assert state.feed(first).failures == 1 and state.file_hashes(first) == {}
    published = (tmp_path / "output" / "all.xml").read_text(encoding="utf-8")
    assert published.count("</entry>") == len(list((tmp_path / "feeds").rglob("*.md")))
    monkeypatch.undo()
    assert not run_cycle(config, config.feeds).failed
    assert len(list((tmp_path / "feeds").rglob("*.md"))) == 7


def _one_feed(url: str) -> str:
    return f'[fetch]\nallow_private_networks = true\n\n[[feeds]]\nname = "wire"\nurl = "{url}"\n'
