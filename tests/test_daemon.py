"""`aggregator run` in a subprocess against a local server whose feed grows every two seconds:
entries land on schedule, a one-shot fetch beside it is serialized by the writer lock (or exits
3 when the lock stays held), SIGTERM stops it cleanly, SIGHUP reloads the config."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from filelock import FileLock

from aggregator import defaults, state
from aggregator.config import load_config
from aggregator.daemon import Daemon, due_feeds
from aggregator.errors import ConfigError
from aggregator.frontmatter import read
from aggregator.schedule import crontab_days, make_trigger, schedule_groups
from aggregator.state import FeedState, State
from tests.helpers import Route, http_server, make_project, rss, run_cli, serve_bytes, start_cli
from tests.test_state import damage, page_of

GROWTH_SECONDS = 1.0
HOLD_LIMIT = 30.0


def growing_feed(every: float) -> Route:
    """A feed that gains one item every `every` seconds after the first request."""
    started: list[float] = []

    def route(handler: BaseHTTPRequestHandler) -> None:
        started.append(started[0] if started else time.monotonic())
        count = 1 + int((time.monotonic() - started[0]) / every)
        serve_bytes(rss("Growing", [(f"g{i}", f"Item {i}") for i in range(count)]))(handler)

    return route


class GatedFeed:
    """A feed that, while its gate is closed, holds each request until the gate opens (so the
    fetching process holds the writer lock as long as a test wants); it records how many
    requests were in flight at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.requested = threading.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Close the gate and wait until a request is being held."""
        self.requested.clear()
        self.gate.clear()
        wait_for(self.requested.is_set, 10, "a request to hold")

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.requested.set()
        try:
            self.gate.wait(HOLD_LIMIT)
            serve_bytes(rss("Gated", [("s1", "Gated item")]))(handler)
        finally:
            with self._lock:
                self.in_flight -= 1


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def entry_count(folder: Path) -> int:
    return len(list(folder.glob("*.md"))) if folder.is_dir() else 0


def stop(daemon: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> float:
    """Send `sig`; the seconds the daemon took to exit (it must exit 0)."""
    sent = time.monotonic()
    daemon.send_signal(sig)
    try:
        code = daemon.wait(timeout=10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        raise AssertionError(f"the daemon did not stop within 10 s of {sig.name}") from None
    assert code == 0
    return time.monotonic() - sent


def assert_files_whole(root: Path) -> None:
    assert not list(root.rglob(".tmp-*")), "temp files left behind"
    for path in (root / "feeds").rglob("*.md"):
        read(path.read_text(encoding="utf-8"))
    published = list((root / "output").rglob("*.xml"))
    assert published
    for path in published:
        ET.parse(path)


def test_daemon_on_schedule_serialized_by_lock_and_stops_on_sigterm(tmp_path: Path) -> None:
    gated = GatedFeed()
    routes: dict[str, Route] = {"/grow.xml": growing_feed(GROWTH_SECONDS), "/gated.xml": gated}
    with http_server(routes) as base:
        config = make_project(
            tmp_path,
            "[fetch]\nallow_private_networks = true\n"
            '[schedule]\ninterval = "1s"\n'
            f'[[feeds]]\nname = "grow"\nurl = "{base}/grow.xml"\n'
            f'[[feeds]]\nname = "gated"\nurl = "{base}/gated.xml"\n',
        )
        log = tmp_path / "daemon.log"
        daemon = start_cli("run", "-c", str(config), log=log)
        try:
            grow = tmp_path / "feeds" / "grow"
            wait_for(lambda: entry_count(grow) >= 1, 20, "the first cycle")
            first = entry_count(grow)
            wait_for(lambda: entry_count(grow) >= first + 2, 10, "entries to grow on schedule")

            gated.hold()
            loser = run_cli("fetch", "grow", "-c", str(config), "--lock-wait", "0.3")
            assert loser.returncode == 3, loser.stderr
            assert "another aggregator process holds the lock" in loser.stderr
            waiter = start_cli("fetch", "-c", str(config), log=tmp_path / "waiter.log")
            time.sleep(1)
            assert waiter.poll() is None, "the one-shot fetch did not wait for the lock"
            gated.gate.set()
            assert waiter.wait(timeout=20) == 0, (tmp_path / "waiter.log").read_text()
            assert gated.most_in_flight == 1, "two processes fetched at once"

            gated.hold()
            assert stop(daemon) < 10
        finally:
            gated.gate.set()
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    assert_files_whole(tmp_path)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert any(" INFO grow: 1 new, 0 updated (" in line for line in lines)
    assert any(" INFO publish: " in line for line in lines)
    assert "Traceback" not in log.read_text(encoding="utf-8")


def test_daemon_reloads_on_sighup_and_keeps_config_when_broken(tmp_path: Path) -> None:
    """A broken config is logged and the old one kept; a good one adds feed b and gives feed a
    a tag, which reaches its entry although its server answers 304 to a conditional request."""
    routes = {
        "/a.xml": serve_bytes(rss("A", [("a1", "First of A")]), etag='"a"'),
        "/b.xml": serve_bytes(rss("B", [("b1", "First of B"), ("b2", "Second of B")])),
    }
    with http_server(routes) as base:
        head = '[fetch]\nallow_private_networks = true\n[schedule]\ninterval = "2s"\n'
        feed_a = f'[[feeds]]\nname = "a"\nurl = "{base}/a.xml"\n'
        config = make_project(tmp_path, head + feed_a)
        log = tmp_path / "daemon.log"
        daemon = start_cli("run", "-c", str(config), "--log-format", "json", log=log)

        def events() -> list[dict[str, object]]:
            complete = log.read_text(encoding="utf-8").rpartition("\n")[0]
            return [json.loads(line) for line in complete.splitlines()]

        try:
            wait_for(lambda: entry_count(tmp_path / "feeds" / "a") == 1, 20, "feed a")
            second = run_cli("run", "-c", str(config), timeout=10)
            assert second.returncode == 3 and "holds the lock" in second.stderr
            config.write_text(head + feed_a + "[[feeds]]\nname = 3\n", encoding="utf-8")
            daemon.send_signal(signal.SIGHUP)
            wait_for(
                lambda: any("reload failed" in str(e["message"]) for e in events()),
                10,
                "the reload error",
            )
            reported = len(events())
            wait_for(
                lambda: any(e.get("feed") == "a" for e in events()[reported:]),
                10,
                "a cycle with the old config",
            )
            assert daemon.poll() is None

            table_b = f'[[feeds]]\nname = "b"\nurl = "{base}/b.xml"\n'
            config.write_text(head + feed_a + 'tags = ["linux"]\n' + table_b, encoding="utf-8")
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: entry_count(tmp_path / "feeds" / "b") == 2, 10, "the new feed b")
            entry_a = next((tmp_path / "feeds" / "a").glob("*.md"))
            wait_for(lambda: '"linux"' in entry_a.read_text(encoding="utf-8"), 10, "a's new tag")
            assert stop(daemon, signal.SIGINT) < 10
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    failure = next(e for e in events() if "reload failed" in str(e["message"]))
    assert failure["level"] == "error" and "feeds[1].name" in str(failure["message"])
    feed_b = next(e for e in events() if e.get("feed") == "b")
    assert feed_b["outcome"] == "changed" and feed_b["new"] == 2
    assert {"time", "seconds", "updated"} <= feed_b.keys()
    assert_files_whole(tmp_path)


def test_sighup_with_new_site_settings_publishes_at_once(tmp_path: Path) -> None:
    """A new base_url (or title, formats…) reaches output/ at the reload, not at the next run."""
    head = '[schedule]\ninterval = "1d"\n[[feeds]]\nname = "a"\nurl = "samples/tech-rss.xml"\n'
    config = make_project(tmp_path, '[site]\nbase_url = "https://old.example/"\n' + head)
    all_xml = tmp_path / "output" / "all.xml"
    log = tmp_path / "daemon.log"
    daemon = start_cli("run", "-c", str(config), log=log)
    try:
        wait_for(all_xml.exists, 20, "the first publish")
        assert 'href="https://old.example/all.xml"' in all_xml.read_text(encoding="utf-8")
        config.write_text(
            '[site]\nbase_url = "https://new.example/"\nformats = ["atom", "json"]\n' + head,
            encoding="utf-8",
        )
        daemon.send_signal(signal.SIGHUP)

        def republished() -> bool:
            atom = all_xml.read_text(encoding="utf-8")
            return (
                'href="https://new.example/all.xml"' in atom
                and all_xml.with_suffix(".json").exists()
            )

        wait_for(republished, 10, "the new base_url and format in output/")
        assert stop(daemon) < 10
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert log.read_text(encoding="utf-8").count(" INFO a: ") == 1  # published, not fetched


def test_feeds_sharing_a_schedule_are_grouped(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        '[schedule]\ninterval = "15m"\njitter = 5\n'
        '[[feeds]]\nname = "a"\nurl = "a.xml"\n'
        '[[feeds]]\nname = "b"\nurl = "b.xml"\n'
        '[[feeds]]\nname = "c"\nurl = "c.xml"\ncron = "0 9 * * 1-5"\n'
        '[[feeds]]\nname = "d"\nurl = "d.xml"\ninterval = "15m"\n',
    )
    groups = schedule_groups(load_config(config))
    assert sorted(names for _, names in groups.values()) == [["a", "b", "d"], ["c"]]
    for make, _ in groups.values():
        assert make().jitter == 5


@pytest.mark.parametrize(
    ("crontab", "names"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("5-7", "sun,fri,sat"),
        ("sat-sun", "sun,sat"),
        ("fri-mon", "sun,mon,fri,sat"),
    ],
)
def test_crontab_weekdays_count_from_sunday(crontab: str, names: str) -> None:
    assert crontab_days(crontab) == names


def test_cron_trigger_fires_on_crontab_weekdays() -> None:
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    trigger = make_trigger("cron", "0 9 * * 1", 0)
    fire = trigger.get_next_fire_time(None, monday)
    assert fire is not None and fire.weekday() == 0 and fire.hour == 9


def test_crontab_runs_on_either_day_when_both_are_given() -> None:
    """As crontab reads `0 9 1 * 1`: the 1st of each month, and every Monday."""
    trigger = make_trigger("cron", "0 9 1 * 1", 0)
    fires: list[datetime] = []
    after = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(3):
        fire = trigger.get_next_fire_time(fires[-1] if fires else None, after)
        assert fire is not None
        fires.append(fire)
        after = fire + timedelta(seconds=1)
    assert [f.date().isoformat() for f in fires] == ["2026-01-01", "2026-01-05", "2026-01-12"]


@pytest.mark.parametrize("cron", ["0 9 * * 7", "0 9 * * 5-7", "0 9 * * sat-sun", "0 9 1 * 1"])
def test_the_config_takes_what_the_daemon_schedules(tmp_path: Path, cron: str) -> None:
    """The config is checked by the very reading the daemon schedules with (a line the check
    let through once stopped the daemon at its start, or at a reload)."""
    text = f'[schedule]\ncron = "{cron}"\n[[feeds]]\nname = "a"\nurl = "a.xml"\n'
    [(make, _)] = schedule_groups(load_config(make_project(tmp_path, text))).values()
    assert make().get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC)) is not None


@pytest.mark.parametrize("cron", ["0 9 * * 8", "0 9 * * funday", "0 9 * *"])
def test_a_crontab_line_crontab_would_refuse_is_a_config_error(tmp_path: Path, cron: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        load_config(make_project(tmp_path, f'[schedule]\ncron = "{cron}"\n'))


def test_feeds_not_yet_due_are_left_alone(tmp_path: Path) -> None:
    config = load_config(
        make_project(
            tmp_path,
            '[[feeds]]\nname = "later"\nurl = "https://a.example/rss"\n'
            '[[feeds]]\nname = "due"\nurl = "https://b.example/rss"\n'
            '[[feeds]]\nname = "moved"\nurl = "https://c.example/new"\n'
            '[[feeds]]\nname = "local"\nurl = "samples/tech-rss.xml"\n',
        )
    )
    now = time.time()
    with State(config.state_path) as state, state.transaction():
        state.save_feed(FeedState("later", url="https://a.example/rss", next_due=now + 3600))
        state.save_feed(FeedState("due", url="https://b.example/rss", next_due=now - 1))
        state.save_feed(FeedState("moved", url="https://c.example/old", next_due=now + 3600))
        state.save_feed(FeedState("local", next_due=now + 3600))
    due = due_feeds(config, config.feeds, now)
    assert [f.name for f in due] == ["due", "moved", "local"]


def test_a_json_log_stays_json_when_another_daemon_holds_the_project(tmp_path: Path) -> None:
    config = make_project(tmp_path, '[[feeds]]\nname = "a"\nurl = "a.xml"\n')
    with FileLock(tmp_path / defaults.DAEMON_LOCK_NAME):
        proc = run_cli("run", "--log-format", "json", "-c", str(config), timeout=60)
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)
    assert "another aggregator process holds the lock" in json.loads(lines[-1])["message"]


def test_a_state_database_that_cannot_be_used_stops_the_daemon_at_its_start(
    tmp_path: Path,
) -> None:
    config = make_project(tmp_path, '[[feeds]]\nname = "a"\nurl = "samples/tech-rss.xml"\n')
    database = tmp_path / defaults.STATE_DB_NAME
    database.write_bytes(b"not a database at all, " * 200)
    proc = run_cli("run", "-c", str(config), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot use the state database {database}: file is not a database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_cycle_that_finds_the_state_database_damaged_stops_the_daemon(tmp_path: Path) -> None:
    """Every later cycle would fail the same way: the daemon ends with exit 2 and the message
    that names the file and what to do, as when it finds the database unusable at its start."""
    config = make_project(tmp_path, '[[feeds]]\nname = "a"\nurl = "samples/tech-rss.xml"\n')
    assert run_cli("fetch", "-q", "-c", str(config)).returncode == 0
    database = tmp_path / defaults.STATE_DB_NAME
    damage(database, page_of(database, "feeds"))  # past the header: the start finds it sound
    proc = run_cli("run", "-c", str(config), timeout=60)
    assert proc.returncode == 2, proc.stderr
    *_, last = proc.stderr.splitlines()
    assert last.endswith(
        f" ERROR cannot use the state database {database}: database disk image is malformed; "
        "move it away and the next fetch rebuilds it from feeds/"
    )
    assert "cycle failed" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_cycle_that_finds_the_state_database_locked_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another program may hold the database for a while: that cycle is lost, not the daemon."""
    config = load_config(
        make_project(tmp_path, '[[feeds]]\nname = "a"\nurl = "samples/tech-rss.xml"\n')
    )
    State(config.state_path).close()
    monkeypatch.setattr(state, "BUSY_TIMEOUT", 0.2)
    holder = sqlite3.connect(config.state_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        daemon = Daemon(config)
        daemon.mark_due(["a"])
        daemon._cycle()
    finally:
        holder.close()
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "database is locked; another program holds it" in record.getMessage()
    assert "tried again at their next run" in record.getMessage()
    assert record.exc_info is None
