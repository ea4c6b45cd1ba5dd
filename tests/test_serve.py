"""`aggregator serve` and a real feed reader subscribed through it across runs: every published
feed read in full, no new or changed entry after a run with nothing new, only the touched feeds
changed by a new source; and the server's own HTTP: content types, 304s, gzip, no traversal."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from reader import UpdatedFeed, make_reader

from aggregator.opml import parse_opml
from aggregator.serve import make_server
from aggregator.state import State
from tests.feedcheck import check_atom
from tests.helpers import make_project, run_cli, snapshot, validate_atom

EXTRA_SOURCE = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Extra</title><link>https://extra.example.org/</link>
<description>more science</description>
<item><title>Tides on Europa</title><link>https://extra.example.org/europa</link>
<guid isPermaLink="false">x1</guid><pubDate>Fri, 27 Nov 2026 10:00:00 +0000</pubDate>
<description>&lt;p&gt;Europa flexes.&lt;/p&gt;</description></item>
<item><title>Moss on Mars?</title><link>https://extra.example.org/moss</link>
<guid isPermaLink="false">x2</guid><pubDate>Fri, 27 Nov 2026 11:00:00 +0000</pubDate>
<description>&lt;p&gt;Probably not.&lt;/p&gt;</description></item>
</channel></rss>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(config: Path, port: int) -> Iterator[str]:
    """The real `aggregator serve` in a subprocess; yields its base URL."""
    exe = Path(sys.executable).with_name("aggregator")
    proc = subprocess.Popen(
        [str(exe), "serve", "-c", str(config), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def subscribed_feeds(base: str) -> list[str]:
    """The feed URLs a person would subscribe to, from the served feeds.opml."""
    opml = httpx.get(base + "feeds.opml", trust_env=False)
    assert opml.status_code == 200
    assert opml.headers["content-type"] == "text/x-opml; charset=utf-8"
    return sorted(o.xml_url for o in parse_opml(opml.content))


def test_feed_reader_subscribed_across_runs(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = make_project(tmp_path)
    config.write_text(
        config.read_text().replace('base_url = "http://localhost:8080/"', f'base_url = "{base}"')
    )
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    output = tmp_path / "output"
    sources = (output / "all.xml").read_text()
    assert "<title>Sample Science Notes</title>" in sources  # atom:source names the feed
    assert 'href="https://science.example.org/"' in sources
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    with serving(config, port):
        feeds = subscribed_feeds(base)
        assert len(feeds) == 6
        for url in feeds:
            reader.add_feed(url)
            served = httpx.get(url, trust_env=False)
            assert served.headers["content-type"] == "application/atom+xml; charset=utf-8"
            assert check_atom(served.content, url) == []
        first = {r.url: r.value for r in reader.update_feeds_iter(scheduled=False)}
        assert all(isinstance(v, UpdatedFeed) and v.new > 0 for v in first.values()), first
        with State(tmp_path / "aggregator-state.sqlite") as state:
            stored = len(state.all_entries())
            for tag in state.tags():
                count = len(state.newest(tag, 50))
                assert len(list(reader.get_entries(feed=f"{base}tags/{tag}.xml"))) == count
        read = {e.id: (e.updated, e.content[0].value) for e in reader.get_entries()}
        assert len(list(reader.get_entries(feed=base + "all.xml"))) == stored == 7
        assert all(content for _, content in read.values())

        before = snapshot(output)
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        assert snapshot(output) == before
        again = [r.value for r in reader.update_feeds_iter(scheduled=False)]
        assert all(
            v is None or (isinstance(v, UpdatedFeed) and not v.new + v.modified) for v in again
        )
        assert {e.id: (e.updated, e.content[0].value) for e in reader.get_entries()} == read

        (tmp_path / "samples" / "extra.xml").write_text(EXTRA_SOURCE, encoding="utf-8")
        with config.open("a") as handle:
            handle.write('\n[[feeds]]\nname = "extra"\nurl = "samples/extra.xml"\n')
            handle.write('tags = ["science"]\n')
        assert run_cli("fetch", "-c", str(config)).returncode == 0
        after = snapshot(output)
        changed = {p.relative_to(output).as_posix() for p in after if after[p] != before.get(p)}
        assert changed == {
            "all.xml",
            "tags/science.xml",
            "tags/extra.xml",
            "index.html",
            "feeds.opml",
        }
        new_feeds = sorted(set(subscribed_feeds(base)) - set(feeds))
        assert new_feeds == [base + "tags/extra.xml"]
        reader.add_feed(new_feeds[0])
        third = {r.url: r.value for r in reader.update_feeds_iter(scheduled=False)}
        news = {url: v.new for url, v in third.items() if isinstance(v, UpdatedFeed) and v.new}
        assert news == {base + "all.xml": 2, base + "tags/science.xml": 2, new_feeds[0]: 2}
        assert all(
            v is None or (isinstance(v, UpdatedFeed) and not v.modified) for v in third.values()
        )
    reader.close()
    validate_atom(sorted(output.rglob("*.xml")))


@contextmanager
def local_server(root: Path) -> Iterator[str]:
    server = make_server(root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_http_details(tmp_path: Path) -> None:
    root = tmp_path / "output"
    (root / "tags").mkdir(parents=True)
    feed = b'<?xml version="1.0" encoding="utf-8"?>\n<feed>' + b"x" * 2000 + b"</feed>\n"
    (root / "all.xml").write_bytes(feed)
    (root / "index.html").write_text("<!DOCTYPE html><title>t</title>")
    (root / "all.json").write_text("{}")
    (root / "all.rss").write_text("<rss/>")
    (root / "feeds.opml").write_text("<opml/>")
    (root / ".tmp-half").write_text("half")
    (tmp_path / "config.toml").write_text("secret")
    with local_server(root) as base, httpx.Client(base_url=base, trust_env=False) as client:
        full = client.get("all.xml", headers={"Accept-Encoding": "identity"})
        assert full.status_code == 200 and full.content == feed
        assert full.headers["content-type"] == "application/atom+xml; charset=utf-8"
        assert "content-encoding" not in full.headers
        etag, modified = full.headers["etag"], full.headers["last-modified"]
        assert client.get("all.xml", headers={"If-None-Match": etag}).status_code == 304
        cached = client.get("all.xml", headers={"If-Modified-Since": modified})
        assert cached.status_code == 304 and cached.content == b""
        stale = client.get("all.xml", headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200

        zipped = client.get("all.xml", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == feed  # httpx decodes it
        assert int(zipped.headers["content-length"]) < len(feed) // 4
        assert zipped.headers["vary"] == "Accept-Encoding"
        zipped_etag = zipped.headers["etag"]
        assert zipped_etag != etag
        again = client.get("all.xml", headers={"If-None-Match": zipped_etag})
        assert again.status_code == 304
        refused = client.get("all.xml", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers

        head = client.head("all.xml", headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(feed))

        index = client.get("")
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        assert client.get("all.json").headers["content-type"].startswith("application/feed+json")
        assert client.get("feeds.opml").headers["content-type"].startswith("text/x-opml")
        assert client.get("all.rss").headers["content-type"].startswith("application/rss+xml")
        for bad in ("../config.toml", "%2e%2e/config.toml", "tags/../../config.toml", ".tmp-half"):
            response = httpx.get(base + bad, trust_env=False)
            assert response.status_code == 404, bad
        assert client.get("tags/").status_code == 404
        assert client.get("missing.xml").status_code == 404

        (root / "all.xml").write_bytes(feed.replace(b"x", b"y"))
        changed = client.get("all.xml", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert gzip.decompress(gzip.compress(changed.content)) == feed.replace(b"x", b"y")


def test_a_port_that_cannot_be_served_is_a_usage_error(tmp_path: Path) -> None:
    """A port in use, out of range, or from a base_url out of range: exit 2 and one line."""
    config = make_project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("serve", "-c", str(config), "--port", str(port), timeout=30)
    assert busy.returncode == 2, busy.stderr
    assert busy.stderr.strip().splitlines() == [
        f"aggregator: cannot serve on 127.0.0.1:{port}: Address already in use "
        "(choose another --port)"
    ]
    for bad in ("70000", "-1", "http"):
        wrong = run_cli("serve", "-c", str(config), "--port", bad, timeout=30)
        assert wrong.returncode == 2
        assert f"--port: expected a port from 0 to 65535, got '{bad}'" in wrong.stderr
    config.write_text('[site]\nbase_url = "http://localhost:70000/"\n', encoding="utf-8")
    unusable = run_cli("serve", "-c", str(config), timeout=30)
    assert unusable.returncode == 2 and "site.base_url: an absolute http(s) URL" in unusable.stderr
