"""The worker pool: one worker more than the cores, none for a few jobs; its answer to a worker
that dies: no job is handed to a broken pool, and a job whose worker died reads as not done,
while a job's own error still reaches the caller; workers end when their maker is killed, and
at once when a cycle is stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from aggregator import defaults
from aggregator.pipeline import CLEAN, TEMPS_KEY
from aggregator.pool import Pool, finished, worker_pool
from tests.helpers import Route, http_server, make_project, rss, run_cli, serve_bytes, start_cli
from tests.hostile import hang, hostile_server
from tests.test_daemon import stop, wait_for
from tests.test_fetch import entries, fetch_config, good


def test_one_worker_more_than_the_cores_and_none_for_a_few_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker waiting for the disk leaves its core to the spare one; a single core, or a few
    jobs, get no workers at all."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    pool = worker_pool(200)
    assert pool is not None and (pool.size, pool.cores) == (3, 2)
    assert worker_pool(defaults.PARALLEL_MIN_FEEDS - 1) is None
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert worker_pool(200) is None


def test_a_dead_worker_reads_as_not_done_and_a_job_error_still_raises() -> None:
    pool = worker_pool(8)
    assert pool is not None
    try:
        assert finished(pool.submit(abs, -3)) == 3
        with pytest.raises(ValueError):
            finished(pool.submit(int, "not a number"))
        assert finished(pool.submit(os._exit, 1)) is None
        assert pool.submit(abs, -3) is None  # broken: the caller does its jobs itself
        assert finished(None) is None
    finally:
        pool.shutdown()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:  # ended meanwhile
            continue
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        children = _children(todo.pop())
        found.update(children)
        todo += children
    return found


def _running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_workers_end_when_the_fetch_that_made_them_is_killed(tmp_path: Path) -> None:
    """A fetch killed with SIGKILL (a cron timeout, the OOM killer) cannot stop its worker
    processes: they end by themselves, instead of living on and writing temp files later."""
    closing = threading.Event()
    feeds = {f"f{n}": f"/{n}.xml" for n in range(defaults.PARALLEL_MIN_FEEDS)}
    routes = {path: serve_bytes(good(name)) for name, path in feeds.items()}
    routes["/stuck.xml"] = hang(closing)
    with hostile_server(routes, closing) as (base, _):
        config = make_project(tmp_path, fetch_config(base, {**feeds, "stuck": "/stuck.xml"}))
        fetch = start_cli("fetch", "-c", str(config), log=tmp_path / "fetch.log")
        try:
            deadline = time.monotonic() + 60
            while len(tree := _descendants(fetch.pid)) < 2:  # the fork server and a worker
                assert time.monotonic() < deadline and fetch.poll() is None, "no workers"
                time.sleep(0.05)
            while not entries(tmp_path, "f0"):  # a worker has been busy
                assert time.monotonic() < deadline and fetch.poll() is None, "nothing stored"
                time.sleep(0.05)
            tree = _descendants(fetch.pid)
            fetch.send_signal(signal.SIGKILL)
            fetch.wait()
            deadline = time.monotonic() + 10
            while [pid for pid in tree if _running(pid)] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [pid for pid in tree if _running(pid)] == []
        finally:
            fetch.kill()
            closing.set()


BIG_ENTRIES = 6000  # a feed that keeps a worker busy for some 15 s


def _big_feed(name: str) -> bytes:
    text = " ".join(f"<p>Paragraph {k} of {name}: <b>bold</b> &amp; more.</p>" for k in range(5))
    return rss(f"Big {name}", [(f"{name}-{n}", f"{n}. {text}") for n in range(BIG_ENTRIES)])


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("fetching", [True, False], ids=["while-fetching", "while-storing"])
def test_a_stopped_daemon_ends_its_workers_at_once(tmp_path: Path, fetching: bool) -> None:
    """SIGTERM while workers convert big feeds: the daemon waited for the feed it was to store
    next, then for every conversion in the workers' hands, though it threw their results
    away (30 s and more); it now ends them at once. The stopped cycle does not count as clean,
    so the next one looks for the temp files they may have left."""
    closing = threading.Event()
    feeds = {f"big{n}": f"/big{n}.xml" for n in range(defaults.PARALLEL_MIN_FEEDS)}
    routes = {path: serve_bytes(_big_feed(name)) for name, path in feeds.items()}
    feeds["small"] = "/small.xml"
    routes["/small.xml"] = serve_bytes(good("small"))
    if fetching:
        feeds["stuck"] = "/stuck.xml"
        routes["/stuck.xml"] = hang(closing)
    with hostile_server(routes, closing) as (base, log):
        text = "[fetch]\nallow_private_networks = true\ntimeout = 60\n" + "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{base}{path}"\n' for name, path in feeds.items()
        )
        config = make_project(tmp_path, text)
        daemon = start_cli("run", "-c", str(config), log=tmp_path / "daemon.log")
        try:
            wait_for(  # the resource tracker, the fork server and a worker
                lambda: (
                    all(log.count(path) for path in routes) and len(_descendants(daemon.pid)) >= 3
                ),
                60,
                "workers at work",
            )
            workers = _descendants(daemon.pid) - _children(daemon.pid)
            stop(daemon)  # within 10 s
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        assert workers
        assert [pid for pid in workers if _running(pid)] == []
        with sqlite3.connect(tmp_path / defaults.STATE_DB_NAME) as db:
            (temps,) = db.execute("SELECT value FROM meta WHERE key = ?", (TEMPS_KEY,)).fetchone()
        assert temps != CLEAN
        after = run_cli("fetch", "small", "-c", str(config))
        assert after.returncode == 0, after.stderr
    assert entries(tmp_path, "small")
    assert not list((tmp_path / "feeds").rglob(".tmp-*"))
    assert "Traceback" not in (tmp_path / "daemon.log").read_text(encoding="utf-8")


def _good_feeds() -> tuple[dict[str, str], dict[str, Route]]:
    """Enough feeds for a fetch to start workers, and the routes serving them."""
    feeds = {f"f{n}": f"/{n}.xml" for n in range(defaults.PARALLEL_MIN_FEEDS + 2)}
    return feeds, {path: serve_bytes(good(name)) for name, path in feeds.items()}


def _hostile_modules(folder: Path, names: list[str], marker: Path) -> None:
    """Modules named like the standard library's in `folder`: each notes in `marker` the
    process that runs it, then fails."""
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.py").write_text(
            f"import os\nwith open({str(marker)!r}, 'a') as f:\n"
            f"    f.write('{name} %d\\n' % os.getpid())\nraise RuntimeError('not the stdlib')\n"
        )


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="no workers on a single core")
def test_workers_import_nothing_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork server starts as `python -c`, which puts the working directory first on
    sys.path: a `threading.py` (imported by multiprocessing itself) or `queue.py` there ran in
    it and in every worker, and a failing one ended the fetch."""
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    marker = tmp_path / "ran"
    work = tmp_path / "work"
    _hostile_modules(work, ["threading", "queue", "selectors", "socket"], marker)
    feeds, routes = _good_feeds()
    with http_server(routes) as base:
        config = make_project(tmp_path, fetch_config(base, feeds))
        proc = run_cli("-c", str(config), "fetch", cwd=work)
    assert not marker.exists(), marker.read_text()
    assert proc.returncode == 0, proc.stderr
    assert all(len(entries(tmp_path, name)) == 2 for name in feeds)


def test_the_safe_path_setting_goes_to_the_workers_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other programs this process starts (a test's `python -c`) keep the working directory."""
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    pool = Pool(1, 2)
    future = pool.submit(os.getenv, "PYTHONSAFEPATH")
    assert future is not None and future.result(timeout=60) == "1"
    pool.shutdown()
    assert "PYTHONSAFEPATH" not in os.environ


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="no workers on a single core")
def test_a_fork_server_that_dies_at_start_leaves_the_work_to_the_main_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork server that dies before it answers (EOFError on its pipe) used to end the whole
    fetch; the main process now prepares the feeds itself, as when a worker died."""
    marker = tmp_path / "died"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if 'multiprocessing.forkserver' in ' '.join(sys.orig_argv):\n"
        f"    open({str(marker)!r}, 'a').write('fork server %d\\n' % os.getpid())\n"
        "    os._exit(1)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    feeds, routes = _good_feeds()
    with http_server(routes) as base:
        config = make_project(tmp_path, fetch_config(base, feeds))
        proc = run_cli("-c", str(config), "fetch", cwd=tmp_path)
    assert marker.exists()  # the fork server did die
    assert proc.returncode == 0, proc.stderr
    assert all(len(entries(tmp_path, name)) == 2 for name in feeds)
