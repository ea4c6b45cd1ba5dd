"""The operator's terminal, through the real console script: config errors for humans, `check`,
`status` after a failing feed (also while another process writes), progress on a TTY and plain
lines elsewhere, the lock's exit code 3, no traceback unless --verbose."""

from __future__ import annotations

import json
import os
import pty
import re
import resource
import shutil
import sqlite3
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from filelock import FileLock

from aggregator import __version__, state
from aggregator.cli import COMMANDS, main
from aggregator.errors import StateError
from aggregator.state import SCHEMA_VERSION, State
from tests.helpers import CLI, REPO, http_server, make_project, rss, run_cli, serve_bytes
from tests.test_state import damage, page_of

GOOD_AND_BAD = (
    "[fetch]\nallow_private_networks = true\n"
    '[[feeds]]\nname = "good"\nurl = "samples/tech-rss.xml"\ntags = ["tech"]\n'
    '[[feeds]]\nname = "bad"\nurl = "{base}/broken.xml"\n'
)


def server_error(handler: BaseHTTPRequestHandler) -> None:
    handler.send_error(500)


def run_in_tty(*args: str) -> tuple[int, str]:
    """The console script with a pseudo-terminal as stdout and stderr; its exit code and output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(CLI), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"aggregator {__version__}"


@pytest.mark.parametrize(
    "command", [["check"], ["list"], ["status"], ["run"], ["export-opml"], ["add", "x.xml"]]
)
def test_a_broken_config_is_named_by_every_command(tmp_path: Path, command: list[str]) -> None:
    config = make_project(
        tmp_path, '[site]\ntitle = "x"\n\n[[feeds]]\nname = "a"\nurl = "a.xml"\ninterval = "soon"\n'
    )
    proc = run_cli(*command, "-c", str(config))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{config}:7" in line
    assert "feeds[0] (a).interval" in line and 'expected an interval like "30s"' in line


def test_check_online_tries_each_feed_and_writes_nothing(tmp_path: Path) -> None:
    with http_server({"/broken.xml": server_error}) as base:
        config = make_project(tmp_path, GOOD_AND_BAD.format(base=base))
        offline = run_cli("check", "-c", str(config))
        assert offline.returncode == 0 and f"{config}: OK, 2 feeds" in offline.stderr
        proc = run_cli("check", "--online", "-c", str(config))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert any(line.startswith("good: ok, 3 entries") for line in lines)
    assert any(line.startswith("bad: ") and "500" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "samples"]


def test_status_after_a_failing_feed(tmp_path: Path) -> None:
    with http_server({"/broken.xml": server_error}) as base:
        config = make_project(tmp_path, GOOD_AND_BAD.format(base=base))
        fetched = run_cli("fetch", "-c", str(config))
    assert fetched.returncode == 1
    assert any(line.startswith("bad: ") for line in fetched.stderr.splitlines())

    lock = FileLock(tmp_path / "aggregator.lock")
    with lock, State(tmp_path / "aggregator-state.sqlite") as writer, writer.transaction():
        proc = run_cli("status", "--json", "-c", str(config))
        text = run_cli("status", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    good, bad = json.loads(proc.stdout)
    assert good["health"] == "ok" and good["entries"] == 3 and good["failures"] == 0
    assert good["last_success"] is not None and good["next_due"] > good["last_success"]
    assert bad["health"] == "failing" and bad["failures"] == 1 and bad["entries"] == 0
    assert bad["last_success"] is None and "500" in bad["last_error"]
    assert bad["moved_to"] is None and bad["gone"] is False
    assert text.returncode == 0
    header, *rows = (line.split("\t") for line in text.stdout.splitlines())
    assert header == ["feed", "health", "entries", "last success", "next due", "last error"]
    assert rows[1][:3] == ["bad", "failing (1 in a row)", "0"] and "500" in rows[1][5]


def test_fetch_terminal_modes(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    code, screen = run_in_tty("fetch", "-c", str(config))
    assert code == 0
    assert "fetching" in screen and "━" in screen
    assert "3 feeds, 0 failed, 7 new, 0 updated entries" in screen

    quiet = run_cli("fetch", "-q", "-c", str(config))
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = run_cli("fetch", "-v", "-c", str(config))
    lines = verbose.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["tech-wire", "science-notes", "keji"]
    assert "\x1b[" not in verbose.stderr
    assert lines[-1].startswith("3 feeds, 0 failed, 0 new, 0 updated entries")


def test_plain_lines_name_the_feeds_with_news(tmp_path: Path) -> None:
    with http_server({"/news.xml": serve_bytes(rss("News", [("n1", "Hello")]))}) as base:
        config = make_project(
            tmp_path,
            "[fetch]\nallow_private_networks = true\n"
            f'[[feeds]]\nname = "news"\nurl = "{base}/news.xml"\n',
        )
        proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0
    first, summary = proc.stderr.splitlines()
    assert first.startswith("news: 1 new, 0 updated (")
    assert summary.startswith("1 feeds, 0 failed, 1 new, 0 updated entries")


def test_a_held_lock_exits_3(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    with FileLock(tmp_path / "aggregator.lock"):
        proc = run_cli("publish", "--lock-wait", "0.2", "-c", str(config))
    assert proc.returncode == 3
    assert proc.stderr.startswith("aggregator: another aggregator process holds the lock")


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "soon"])
def test_a_lock_wait_that_is_not_a_finite_number_of_seconds_is_a_usage_error(
    tmp_path: Path, wait: str
) -> None:
    """filelock waits forever for a negative timeout, and refuses nan with a ValueError."""
    config = make_project(tmp_path)
    with FileLock(tmp_path / "aggregator.lock"):
        proc = run_cli("publish", f"--lock-wait={wait}", "-c", str(config), timeout=30)
    assert proc.returncode == 2
    assert f"--lock-wait: expected a number of seconds, 0 or more, got '{wait}'" in proc.stderr


def test_a_lock_file_that_cannot_be_used_is_named(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    (tmp_path / "aggregator.lock").mkdir()
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 2
    lock = tmp_path / "aggregator.lock"
    assert proc.stderr == f"aggregator: cannot use the lock file {lock}: Is a directory\n"


def test_no_traceback_unless_verbose(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'feeds_dir = "feeds"', 'feeds_dir = "config.toml"'
        ),
        encoding="utf-8",
    )
    terse = run_cli("fetch", "-c", str(config))
    assert terse.returncode == 1
    assert terse.stderr.strip().startswith("aggregator: unexpected error: FileExistsError")
    assert "Traceback" not in terse.stderr and "--verbose" in terse.stderr
    verbose = run_cli("fetch", "--verbose", "-c", str(config))
    assert verbose.returncode == 1 and "Traceback (most recent call last)" in verbose.stderr


def test_output_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`aggregator list | head`: more lines than a pipe holds, read by no one."""
    name = "a feed whose name is long enough that 1,000 of them fill a pipe"
    feeds = "".join(f'[[feeds]]\nname = "{name} {i}"\nurl = "s/{i}.xml"\n' for i in range(1000))
    config = make_project(tmp_path, feeds)
    proc = subprocess.Popen(
        [str(CLI), "list", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"name")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


def test_a_state_database_that_cannot_be_used_is_named_with_what_to_do(tmp_path: Path) -> None:
    """Unreadable (garbage), or made by a newer version: one line naming the file and what to
    do, exit 2, no traceback; the newer one is left as it was."""
    config = make_project(tmp_path)
    database = tmp_path / "aggregator-state.sqlite"
    database.write_bytes(b"not a database at all, " * 200)
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot use the state database {database}: file is not a database" in proc.stderr
    assert "move it away and the next fetch rebuilds it from feeds/" in proc.stderr
    database.unlink()
    with sqlite3.connect(database) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 4}")
    proc = run_cli("status", "-c", str(config))
    assert proc.returncode == 2
    assert f"{database} was made by a newer aggregator" in proc.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 4


def test_a_state_database_with_a_damaged_page_is_named_with_what_to_do(tmp_path: Path) -> None:
    """A broken page past the header (the tables of feeds and of entries): whatever statement
    meets it, one line naming the file and what to do, exit 2, no traceback."""
    config = make_project(tmp_path)
    assert main(["fetch", "-q", "-c", str(config)]) == 0
    database = tmp_path / "aggregator-state.sqlite"
    for table in ("feeds", "entries"):
        damage(database, page_of(database, table))
    for command in ("fetch", "publish"):
        proc = run_cli(command, "-c", str(config))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == (
            f"aggregator: cannot use the state database {database}: database disk image is "
            "malformed; move it away and the next fetch rebuilds it from feeds/\n"
        )


def test_a_state_database_locked_by_another_program_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Locked past the busy timeout by a program that is not an aggregator, at any statement
    (here a fetch's first write, once the database is open): exit 2, one line naming it."""
    config = make_project(tmp_path)
    assert main(["fetch", "-q", "-c", str(config)]) == 0
    monkeypatch.setattr(state, "BUSY_TIMEOUT", 0.2)
    database = tmp_path / "aggregator-state.sqlite"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["fetch", "--force", "-c", str(config)]) == 2
        assert main(["undelete", "-c", str(config)]) == 2
    finally:
        holder.close()
    expected = (
        f"aggregator: cannot use the state database {database}: database is locked; "
        "another program holds it, try again later"
    )
    assert capsys.readouterr().err.splitlines()[-2:] == [expected, expected]


def limit_file_size(limit: int) -> None:
    """Let this process write no file past `limit` bytes (`ulimit -f`), as a full disk would."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_state_database_the_disk_refuses_to_grow_is_not_called_damaged(tmp_path: Path) -> None:
    """A file size limit, like a full disk, keeps SQLite from making the 32 KiB -shm file it
    reads a WAL database through: fetch and publish name that (exit 2) instead of telling to
    move a sound database away, and status reads it all the same."""
    config = make_project(tmp_path)
    assert main(["fetch", "-q", "-c", str(config)]) == 0
    database = tmp_path / "aggregator-state.sqlite"
    limit = 16 * 1024
    for command in ("fetch", "publish"):
        proc = subprocess.run(
            [str(CLI), command, "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: limit_file_size(limit),
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == (
            f"aggregator: cannot use the state database {database}: disk I/O error; this "
            f"process may not write files past {limit} bytes (ulimit -f)\n"
        )
    status = subprocess.run(
        [str(CLI), "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: limit_file_size(limit),
    )
    assert status.returncode == 0, status.stderr
    assert [row["entries"] for row in json.loads(status.stdout)] == [3, 2, 2]
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_write_refused_inside_a_transaction_is_named_as_such(tmp_path: Path) -> None:
    """SQLite ends the transaction itself when a write in it fails for want of room: the
    reason is reported, not the failure of a second rollback."""
    with State(tmp_path / "aggregator-state.sqlite") as state:
        state.db.execute("PRAGMA cache_size=10")  # pages go to the -wal file as they are made
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit_file_size(1 << 20)
        try:
            with (
                pytest.raises(StateError, match="may not write files past 1048576 bytes"),
                state.transaction(),
            ):
                for n in range(1000):
                    state.set_meta(f"key {n}", "x" * 4000)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert state.meta("key 0") is None


def test_a_state_database_this_user_may_not_write_is_named_and_still_read(
    tmp_path: Path,
) -> None:
    """Another user's project: status reads it, a command that writes names what it may not
    write (exit 2) instead of telling to move the database away."""
    config = make_project(tmp_path)
    assert main(["fetch", "-q", "-c", str(config)]) == 0
    (tmp_path / "aggregator-state.sqlite").chmod(0o444)
    tmp_path.chmod(0o555)
    limited: list[str] = []
    if os.access(tmp_path, os.W_OK):  # root: its commands run without CAP_DAC_OVERRIDE
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            tmp_path.chmod(0o755)
            pytest.skip("root may write any folder, and setpriv is missing")
        limited = [setpriv, "--bounding-set=-all"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*limited, str(CLI), *args, "-c", str(config)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    try:
        status = run("status", "--json")
        undelete = run("undelete")
    finally:
        tmp_path.chmod(0o755)
    assert status.returncode == 0, status.stderr
    assert [row["entries"] for row in json.loads(status.stdout)] == [3, 2, 2]
    assert undelete.returncode == 2
    assert undelete.stderr.startswith(
        f"aggregator: cannot use the state database {tmp_path / 'aggregator-state.sqlite'}: "
    )
    assert "this user may not write" in undelete.stderr and "move it away" not in undelete.stderr


def test_the_readme_names_every_command_that_waits_for_the_lock() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| 3 |"))
    named = set(re.findall(r"`([a-z-]+)`", row.partition("(")[2].partition(")")[0]))
    assert named == {name for name, spec in COMMANDS.items() if spec.writes}
