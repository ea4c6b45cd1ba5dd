"""Config mistakes exit 2 naming the file, the key and what was expected, with no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import interval_seconds, load_config
from aggregator.errors import ConfigError
from tests.helpers import REPO, run_cli

GOOD_FEED = '[[feeds]]\nname = "a"\nurl = "a.xml"\n'


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[site]\ntitel = "x"\n', "site.titel", "unknown key"),
        ('[site]\nentries_per_feed = "many"\n', "site.entries_per_feed", "whole number"),
        ('[[feeds]]\nurl = "a.xml"\n', "feeds[0].name", "missing"),
        ('[[feeds]]\nname = "a"\n', "feeds[0] (a).url", "missing"),
        (GOOD_FEED + GOOD_FEED, "feeds[1].name", "used twice"),
        # one folder of feeds/ for two feeds would mix their entries
        (GOOD_FEED + GOOD_FEED.replace('"a"', '"A"'), "feeds[1].name", "both write to feeds/a/"),
        ('[schedule]\ninterval = "often"\n', "schedule.interval", "interval"),
        ('[schedule]\ncron = "61 * * * *"\n', "schedule.cron", "crontab"),
        (
            '[schedule]\ninterval = "1h"\ncron = "0 * * * *"\n',
            "schedule.interval",
            "either interval or cron, not both",
        ),
        (
            GOOD_FEED + 'cron = "0 * * * *"\ninterval = "1h"\n',
            "feeds[0] (a).interval",
            "either interval or cron, not both",
        ),
        ("[fetch]\ntimeout = true\n", "fetch.timeout", "positive number"),
        # a header value: not sent at all (non-ASCII), or splitting the request (CR LF)
        ('[fetch]\nuser_agent = "Lecteur (café)"\n', "fetch.user_agent", "printable ASCII"),
        ('[fetch]\nuser_agent = "a\\r\\nX-Evil: 1"\n', "fetch.user_agent", "printable ASCII"),
        ('[site]\ntimezone = "Mars/Olympus"\n', "site.timezone", "time zone"),
        ('[site]\nhub = "pubsubhubbub"\n', "site.hub", "URL of a WebSub hub"),
        ('[[feeds]]\nname = "a"\nurl = "ftp://x/y"\n', "feeds[0] (a).url", "http(s) URL"),
        (
            '[[feeds]]\nname = "a"\nurl = "a.xml"\ninclude = ["("]\n',
            "include",
            "regular expression",
        ),
        ("[site\n", "(syntax)", "valid TOML"),
        # Hugo makes each tag a page at /tags/<tag>/: `..` would be the home page
        (GOOD_FEED + 'tags = [".."]\n', "feeds[0] (a).tags", "a letter or digit"),
        (GOOD_FEED + 'tags = ["news/tech"]\n', "feeds[0] (a).tags", "no '/'"),
        (GOOD_FEED + 'tags = ["a\\u0007"]\n', "feeds[0] (a).tags", "control character"),
        (GOOD_FEED + 'tags = ["  "]\n', "feeds[0] (a).tags", "a letter or digit"),
        ('[[feeds]]\nname = ".."\nurl = "a.xml"\n', "feeds[0].name", "first category and tag"),
    ],
)
def test_config_mistakes_are_named(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    assert expected in message


def test_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[site]\ntitle = "x"\nbase_url = 3\n', encoding="utf-8")
    proc = run_cli("fetch", "-c", str(path))
    assert proc.returncode == 2
    assert "site.base_url" in proc.stderr and "config.toml:3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_config_exits_2(tmp_path: Path) -> None:
    proc = run_cli("fetch", cwd=tmp_path)
    assert proc.returncode == 2
    assert "config.toml" in proc.stderr


def test_shipped_config_is_valid_and_relative_paths_resolve() -> None:
    config = load_config(REPO / "config.toml")
    assert len(config.feeds) >= 3
    assert all(f.local_path is not None and f.local_path.exists() for f in config.feeds)
    assert len({t for f in config.feeds for t in f.tags}) >= 2
    assert config.site.feeds_dir == REPO / "feeds"


def test_feed_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[defaults]\ncomments = true\nwidgets = ["a"]\n' + GOOD_FEED + "toc = true\n",
        encoding="utf-8",
    )
    feed = load_config(path).feeds[0]
    assert feed.front.comments and feed.front.toc and feed.front.widgets == ("a",)
    assert feed.local_path == tmp_path / "a.xml"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_intervals(text: str, seconds: int) -> None:
    assert interval_seconds(text) == seconds


HUGE = 99999999999999999999


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (f"[site]\nentries_per_feed = {HUGE}\n", "site.entries_per_feed", "from 1 to 10000"),
        (f"[defaults]\nsummary_length = {HUGE}\n", "defaults.summary_length", "from 1 to 10000"),
        ("[fetch]\ntimeout = 1e300\n", "fetch.timeout", "a positive number up to 3600"),
        ("[fetch]\nconnect_timeout = 3601\n", "fetch.connect_timeout", "up to 3600"),
        (f"[fetch]\nmax_bytes = {HUGE}\n", "fetch.max_bytes", "from 1 to 1073741824"),
        (f"[fetch]\nconcurrency = {HUGE}\n", "fetch.concurrency", "from 1 to 1000"),
        ("[fetch]\nmax_entries = 0\n", "fetch.max_entries", "from 1 to 1000000"),
        ("[fetch]\nper_host = 1001\n", "fetch.per_host", "from 1 to 1000"),
        (f"[schedule]\njitter = {HUGE}\n", "schedule.jitter", "from 0 to 86400"),
        ('[schedule]\ninterval = "366d"\n', "schedule.interval", 'at most "365d"'),
        (GOOD_FEED + 'interval = "8761h"\n', "feeds[0] (a).interval", 'at most "365d"'),
        (GOOD_FEED + "summary_length = 10001\n", "feeds[0] (a).summary_length", "to 10000"),
    ],
)
def test_numbers_past_their_bounds_are_named(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    """An absurd number is refused by the check, with its line, not met deep in a fetch."""
    path = tmp_path / "config.toml"
    path.write_text("# limits\n" + text, encoding="utf-8")
    proc = run_cli("check", "-c", str(path))
    assert proc.returncode == 2
    line = 3 if "[[feeds]]" not in text else len(text.splitlines()) + 1
    assert f"{path}:{line}: {key}: expected " in proc.stderr and expected in proc.stderr


def test_numbers_at_their_bounds_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[site]\nentries_per_feed = 10000\n[defaults]\nsummary_length = 10000\n"
        "[fetch]\ntimeout = 3600\nconnect_timeout = 3600\nmax_bytes = 1073741824\n"
        'concurrency = 1000\nper_host = 1000\n[schedule]\ninterval = "365d"\njitter = 86400\n'
        + GOOD_FEED
        + 'interval = "8760h"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.fetch.max_bytes == 1024**3 and config.feeds[0].interval == "8760h"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # a wrong value: its own line, not the first line assigning a key of that name
        (
            '[defaults]\nlang = "en"\n\n'
            + GOOD_FEED
            + "\n"
            + GOOD_FEED.replace('"a"', '"b"', 1)
            + "lang = 5\n",
            11,
        ),
        # a name used twice: the second one
        (GOOD_FEED + "\n" + GOOD_FEED.replace('"a"', '"b"', 1) + "\n" + GOOD_FEED, 10),
        # a missing key: the header of its table
        (GOOD_FEED + '\n[[feeds]]\nname = "b"\ntags = ["x"]\n', 5),
        ('[site]\ntitle = "x"\n\n[fetch]\ntimeout = 30\ntitle = "y"\n', 6),
    ],
)
def test_config_mistakes_name_their_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:{line}:" in str(caught.value)
