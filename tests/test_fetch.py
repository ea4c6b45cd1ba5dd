"""The fetcher against a hostile HTTP server on 127.0.0.1, beside good feeds: every bad feed is
named with its reason, the good ones land, the run is bounded in time and memory, and the next
run is conditional and polite."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from aggregator.config import load_config
from aggregator.errors import FeedError
from aggregator.fetch import fetch_all
from aggregator.health import describe_time
from aggregator.models import Fetched
from aggregator.state import State
from bench.measure import run_measured
from tests.helpers import CLI, http_server, make_project, rss, serve_bytes, snapshot
from tests.hostile import (
    brotli_bomb,
    compressed,
    cut,
    drip,
    flood,
    gzip_bomb,
    hang,
    hostile_server,
    redirect,
    status,
)

TIMEOUT = 3  # [fetch] timeout of these tests, seconds
BOMB_HEADROOM_MB = 96  # memory the hostile feeds may add to a fetch of the good ones alone
BOMB = 256 * 1024 * 1024
LAST_MODIFIED = "Mon, 02 Nov 2026 10:00:00 GMT"

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>Hi</body></html>"
NO_ENTRIES = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
)
WRONG_ENCODING = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\xe9</title>'
    "<item><guid>enc-1</guid><title>Caf\xe9 cr\xe8me br\xfbl\xe9e</title>"
    "<link>https://example.org/enc-1</link><description>d\xe9j\xe0 vu</description></item>"
    "</channel></rss>"
).encode("latin-1")
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><rss version="2.0"><channel><title>Laughs</title><item><guid>lol-1</guid>'
    b"<title>Laughing</title><link>https://example.org/lol-1</link>"
    b"<description>&lol9;</description></item></channel></rss>"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    b'<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd">\n%remote;\n]>\n'
    b'<rss version="2.0"><channel><title>XXE</title><item><guid>xxe-1</guid>'
    b"<title>Leak &xxe;</title><link>https://example.org/xxe-1</link>"
    b"<description>before &xxe; after</description></item></channel></rss>"
)
QUADRATIC = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "'
    + b"x" * 100_000
    + b'">\n]>\n<rss version="2.0"><channel><title>Q</title><item><guid>q-1</guid>'
    b"<title>Q</title><description>" + b"&a;" * 20_000 + b"</description></item></channel></rss>"
)
SCRIPTED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Scripts</title><item>'
    b"<guid>js-1</guid><title>Click here</title>"
    b'<link>javascript:alert(1)</link><description>&lt;p onclick="alert(2)"&gt;Text'
    b"&lt;script&gt;alert(3)&lt;/script&gt;&lt;img src=x onerror=alert(4)&gt;"
    b'&lt;a href="javascript:alert(5)"&gt;link&lt;/a&gt;'
    b"&lt;iframe src=https://evil.example/&gt;&lt;/iframe&gt;&lt;/p&gt;</description>"
    b"</item></channel></rss>"
)
ILLFORMED = (
    b'<rss version="2.0"><channel><title>Broken</title><item><guid>ill-1</guid>'
    b"<title>Salvaged & saved</title><link>https://example.org/ill-1</link>"
    b"<description>still <b>readable</description></item>"
)
UNSAFE_MARKERS = ("<script", "javascript:", "onerror", "onclick", "<iframe", "root:x:0:0", "lollol")


def good(name: str) -> bytes:
    return rss(f"Good {name}", [(f"{name}-1", f"{name} first"), (f"{name}-2", f"{name} second")])


def fetch_config(base: str, feeds: dict[str, str], fetch: str = "") -> str:
    """A config reading `feeds` (name: path on the server, or a local path) from `base`."""
    text = (
        "[fetch]\nallow_private_networks = true\n"
        f"timeout = {TIMEOUT}\nconnect_timeout = {TIMEOUT}\n{fetch}"
    )
    for name, path in feeds.items():
        url = path if path.startswith(("samples/", "http")) else base + path
        text += f'[[feeds]]\nname = "{name}"\nurl = "{url}"\ntags = ["web"]\n'
    return text


def entries(project: Path, feed: str) -> list[Path]:
    return sorted((project / "feeds" / feed).glob("*.md"))


def failure_lines(stderr: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stderr.splitlines() if ": " in line)


def test_hostile_server_beside_good_feeds(tmp_path: Path) -> None:
    closing = threading.Event()
    secret = tmp_path / "secret-feed.xml"
    secret.write_bytes(rss("Secret", [("secret-1", "SECRET LOCAL FILE")]))
    routes = {
        "/good-etag.xml": serve_bytes(good("good-etag"), etag='"v1"'),
        "/good-lastmod.xml": serve_bytes(good("good-lastmod"), last_modified=LAST_MODIFIED),
        "/good-plain.xml": serve_bytes(good("good-plain")),
        "/new-home.xml": serve_bytes(good("moved")),
        "/moved.xml": redirect("/new-home.xml", 301),
        "/drip.xml": drip(closing),
        "/hang.xml": hang(closing),
        "/error.xml": status(500),
        "/limited.xml": status(429, [("Retry-After", "3600")]),
        "/gone.xml": status(410),
        "/loop-a.xml": redirect("/loop-b.xml"),
        "/loop-b.xml": redirect("/loop-a.xml", 307),
        **{f"/hop{i}.xml": redirect(f"/hop{i + 1}.xml") for i in range(7)},
        "/to-file.xml": redirect("file:///etc/passwd"),
        "/huge.xml": flood(200 * 1024 * 1024),
        "/gzip-bomb.xml": compressed(gzip_bomb(BOMB), "gzip"),
        "/br-bomb.xml": compressed(brotli_bomb(BOMB), "br"),
        "/html.xml": serve_bytes(HTML_PAGE, "text/html"),
        "/empty.xml": serve_bytes(b""),
        "/quiet.xml": serve_bytes(NO_ENTRIES),
        "/encoding.xml": serve_bytes(WRONG_ENCODING, "application/rss+xml; charset=utf-8"),
        "/laughs.xml": serve_bytes(LAUGHS),
        "/xxe.xml": serve_bytes(XXE),
        "/quadratic.xml": serve_bytes(QUADRATIC),
        "/scripted.xml": serve_bytes(SCRIPTED),
        "/illformed.xml": serve_bytes(ILLFORMED),
        "/path.xml": serve_bytes(str(secret).encode()),
    }
    failing = {
        "drip": ("/drip.xml", f"timed out after {TIMEOUT} s"),
        "hang": ("/hang.xml", f"timed out after {TIMEOUT} s"),
        "error": ("/error.xml", "HTTP 500 Internal Server Error"),
        "limited": ("/limited.xml", "HTTP 429 Too Many Requests, asked to wait 1 h"),
        "gone": ("/gone.xml", "gone (HTTP 410), will retry weekly"),
        "loop": ("/loop-a.xml", "redirect loop"),
        "hops": ("/hop0.xml", "more than 5 redirects"),
        "to-file": ("/to-file.xml", "redirect to a non-http(s) URL refused (file:///etc/passwd)"),
        "huge": ("/huge.xml", "larger than 15 MiB"),
        "gzip-bomb": ("/gzip-bomb.xml", "larger than 15 MiB"),
        "br-bomb": ("/br-bomb.xml", "larger than 15 MiB"),
        "html": ("/html.xml", "not a feed (an HTML page)"),
        "empty": ("/empty.xml", "empty body"),
        "quiet": ("/quiet.xml", "feed has no entries"),
        "quadratic": ("/quadratic.xml", "entity bomb refused"),
        "path": ("/path.xml", "not a feed"),
    }
    landing = {
        "good-etag": "/good-etag.xml",
        "good-lastmod": "/good-lastmod.xml",
        "good-plain": "/good-plain.xml",
        "moved": "/moved.xml",
        "encoding": "/encoding.xml",
        "laughs": "/laughs.xml",
        "xxe": "/xxe.xml",
        "scripted": "/scripted.xml",
        "illformed": "/illformed.xml",
    }
    with hostile_server(routes, closing) as (base, log):
        calm = make_project(tmp_path / "calm", fetch_config(base, landing))
        baseline = run_measured([str(CLI), "fetch", "-c", str(calm)], timeout=120)
        assert baseline.returncode == 0, baseline.stderr
        feeds = {name: path for name, (path, _) in failing.items()} | landing
        config = make_project(tmp_path, fetch_config(base, feeds))
        first = run_measured([str(CLI), "fetch", "-c", str(config)], timeout=120)

        assert first.returncode == 1, first.stderr
        assert first.seconds < 8 * TIMEOUT, first.seconds
        # the bombs inflate to 256 MiB each: costing little means staying near a calm run
        assert first.peak_mb < baseline.peak_mb + BOMB_HEADROOM_MB, (first, baseline)
        reasons = failure_lines(first.stderr)
        for name, (_, reason) in failing.items():
            assert reason in reasons.get(name, ""), (name, reasons.get(name))
        for name in landing:
            assert entries(tmp_path, name), (name, first.stderr)
        assert f"moved to {base}/new-home.xml, update the config" in reasons["moved"]
        encoded = entries(tmp_path, "encoding")[0].read_text(encoding="utf-8")
        assert "Café crème brûlée" in encoded
        written = [p.read_text(encoding="utf-8") for p in (tmp_path / "feeds").rglob("*.md")]
        written += [p.read_text(encoding="utf-8") for p in (tmp_path / "output").rglob("*.*")]
        for marker in (*UNSAFE_MARKERS, "SECRET LOCAL FILE"):
            assert not any(marker in text for text in written), marker

        before = snapshot(tmp_path / "feeds", tmp_path / "output")
        second = run_measured([str(CLI), "fetch", "--verbose", "-c", str(config)], timeout=120)

        assert second.returncode == 0, second.stderr
        assert snapshot(tmp_path / "feeds", tmp_path / "output") == before
        assert log.last("/good-etag.xml").headers.get("If-None-Match") == '"v1"'
        assert log.last("/good-lastmod.xml").headers.get("If-Modified-Since") == LAST_MODIFIED
        lines = failure_lines(second.stderr)
        assert lines["good-plain"].startswith("not modified"), lines["good-plain"]
        for name, (path, _) in failing.items():
            assert log.count(path) == 1, (name, log.count(path))
            assert lines[name].startswith("skipped until "), lines[name]
        assert lines["limited"].endswith(failing["limited"][1])
        with State(tmp_path / "aggregator-state.sqlite") as state:
            limited = state.feed("limited")
            gone = state.feed("gone")
        assert limited.next_due is not None and limited.last_attempt is not None
        assert 3600 <= limited.next_due - limited.last_attempt <= 3600 + first.seconds
        assert f"skipped until {describe_time(limited.next_due)}" in lines["limited"]
        assert gone.gone and gone.failures == 1


def test_loopback_is_refused_by_default_before_any_connection(tmp_path: Path) -> None:
    closing = threading.Event()
    with hostile_server({"/feed.xml": serve_bytes(good("local"))}, closing) as (base, log):
        port = base.rsplit(":", 1)[1]
        feeds = {
            "literal": f"{base}/feed.xml",
            "named": f"http://localhost:{port}/feed.xml",
            "mapped": f"http://[::ffff:127.0.0.1]:{port}/feed.xml",
            "sample": "samples/tech-rss.xml",
        }
        text = "".join(f'[[feeds]]\nname = "{n}"\nurl = "{u}"\n' for n, u in feeds.items())
        config = make_project(tmp_path, text)
        run = run_measured([str(CLI), "fetch", "-c", str(config)], timeout=60)
    assert run.returncode == 1
    reasons = failure_lines(run.stderr)
    assert reasons["literal"] == "refused: 127.0.0.1 is a loopback address"
    assert reasons["named"].startswith("refused: localhost resolves to ")
    assert reasons["named"].endswith("a loopback address")
    assert reasons["mapped"] == "refused: ::ffff:127.0.0.1 is a loopback address"
    assert log.hits == []
    assert entries(tmp_path, "sample")


class _ImportLog:
    """A meta path finder that finds nothing and counts what it was asked for: every lookup
    of a module not already imported."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.asked[name] += 1
        return None


def test_requests_do_not_search_for_modules_again_and_again(tmp_path: Path) -> None:
    """httpcore imports sniffio on every request when it is missing, and a failed import
    searches every folder of sys.path again: 0.2 s of a 0.8 s run of 200 unchanged feeds."""
    routes = {f"/{n}.xml": serve_bytes(good(str(n)), etag='"v1"') for n in range(8)}
    with http_server(routes) as base:
        feeds = {f"feed-{n}": f"/{n}.xml" for n in range(8)}
        config = load_config(make_project(tmp_path, fetch_config(base, feeds)))
        log = _ImportLog()
        sys.meta_path.insert(0, log)
        try:
            results = asyncio.run(fetch_all(config.feeds, config.fetch, {}, "test"))
        finally:
            sys.meta_path.remove(log)
    assert all(getattr(r, "body", None) for r in results)
    assert [name for name, times in log.asked.items() if times > 1] == []


def test_a_connection_cut_before_the_answer_is_asked_once_more(tmp_path: Path) -> None:
    """A GET whose connection breaks before any answer (a kept-alive connection the server
    closed just then) is sent once more; a server that cuts it every time fails the feed, named
    with the reason, after two requests."""
    closing = threading.Event()
    routes = {
        "/closed.xml": cut(1, serve_bytes(good("closed"))),
        "/reset.xml": cut(1, serve_bytes(good("reset")), reset=True),
        "/always.xml": cut(9, serve_bytes(good("always")), reset=True),
    }
    with hostile_server(routes, closing) as (base, log):
        feeds = {name: f"/{name}.xml" for name in ("closed", "reset", "always")}
        config = load_config(make_project(tmp_path, fetch_config(base, feeds)))
        results = asyncio.run(fetch_all(config.feeds, config.fetch, {}, "test"))
    closed, reset, always = results
    assert isinstance(closed, Fetched) and b"closed first" in (closed.body or b"")
    assert isinstance(reset, Fetched) and b"reset first" in (reset.body or b"")
    assert isinstance(always, FeedError)
    assert always.reason == "connection lost: Connection reset by peer"
    assert [log.count(f"/{name}.xml") for name in feeds] == [2, 2, 2]
