"""The fetcher's rules, one cycle at a time against real servers on 127.0.0.x: the SSRF guard on
every hop, limits per host and overall, moves, Retry-After, backoff, gone feeds, cache lifetimes,
the User-Agent and the decoded size limit."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import zlib
from dataclasses import replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import httpx
import pytest

from aggregator import defaults
from aggregator.config import FeedConfig, FetchConfig, FrontMatterDefaults, load_config
from aggregator.fetch import FetchError, default_user_agent, fetch_one
from aggregator.models import Fetched
from aggregator.netguard import IPAddress, make_transport
from aggregator.pipeline import CUT_OFF_NOTICE, FeedOutcome, run_cycle, settings_hash
from aggregator.state import FeedState, State
from aggregator.status import as_json, as_table, collect
from tests.helpers import Route, make_project, serve_bytes
from tests.hostile import Log, Switch, compressed, hostile_server, redirect, slow, status
from tests.test_fetch import entries, fetch_config, good


def cycle(config: Path, force: bool = False) -> dict[str, FeedOutcome]:
    loaded = load_config(config)
    return {o.name: o for o in run_cycle(loaded, loaded.feeds, force=force).outcomes}


def stored(project: Path, name: str) -> FeedState:
    with State(project / defaults.STATE_DB_NAME) as state:
        return state.feed(name)


def waits(state: FeedState) -> float:
    """Seconds between the last attempt and the next due time."""
    assert state.next_due is not None and state.last_attempt is not None
    return state.next_due - state.last_attempt


def stat_key(path: Path) -> tuple[int, int]:
    """A file's inode and mtime: both stay while it is not written again (a write replaces it)."""
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


def fetch_through_guard(url: str, refuse: str) -> Fetched:
    """One fetch with a guard that refuses only the address `refuse`."""

    def policy(address: IPAddress) -> str | None:
        return "off limits in this test" if str(address) == refuse else None

    async def go() -> Fetched:
        transport = make_transport(httpx.Limits(), policy)
        async with httpx.AsyncClient(transport=transport) as client:
            feed = FeedConfig(
                name="probe", url=url, lang=None, tags=(), front=FrontMatterDefaults()
            )
            return await fetch_one(client, feed, FetchConfig(timeout=5), FeedState("probe"))

    return asyncio.run(go())


def test_every_redirect_hop_is_vetted_before_connecting() -> None:
    closing = threading.Event()
    inner_routes = {"/feed.xml": serve_bytes(good("inner"))}
    with hostile_server(inner_routes, closing, host="127.0.0.2") as (inner, inner_log):
        outer_routes = {
            "/start.xml": redirect(f"{inner}/feed.xml"),
            "/own.xml": serve_bytes(good("outer")),
        }
        with hostile_server(outer_routes, closing) as (outer, outer_log):
            with pytest.raises(FetchError, match=r"refused: 127\.0\.0\.2 is off limits in this"):
                fetch_through_guard(f"{outer}/start.xml", refuse="127.0.0.2")
            port = outer.rsplit(":", 1)[1]
            named = fetch_through_guard(f"http://localhost:{port}/own.xml", refuse="127.0.0.2")
    assert named.body == good("outer")
    assert outer_log.count("/start.xml") == 1
    assert inner_log.hits == []


def test_requests_are_bounded_per_host_and_overall(tmp_path: Path) -> None:
    closing = threading.Event()
    shared = Log()
    names = [f"s{i}" for i in range(6)]
    routes = {f"/{n}.xml": slow(good(n), 0.3) for n in names}
    with (
        hostile_server(routes, closing, "127.0.0.1", shared) as (one, _),
        hostile_server(routes, closing, "127.0.0.2", shared) as (two, _),
    ):
        feeds = {n: f"{one}/{n}.xml" for n in names} | {f"{n}b": f"{two}/{n}.xml" for n in names}
        per_host = make_project(tmp_path / "a", fetch_config("", feeds, "per_host = 2\n"))
        assert all(o.ok for o in cycle(per_host).values())
        assert shared.most_in_flight == 4
        shared.most_in_flight = 0
        overall = make_project(tmp_path / "b", fetch_config("", feeds, "concurrency = 3\n"))
        assert all(o.ok for o in cycle(overall).values())
        assert shared.most_in_flight == 3


def test_a_permanent_move_is_reported_then_followed(tmp_path: Path) -> None:
    closing = threading.Event()
    routes = {
        "/old.xml": redirect("/new.xml", 301),
        "/new.xml": serve_bytes(good("moved")),
        "/temp.xml": redirect("/elsewhere.xml", 307),
        "/elsewhere.xml": serve_bytes(good("temp")),
    }
    with hostile_server(routes, closing) as (base, log):
        config = make_project(
            tmp_path, fetch_config(base, {"moved": "/old.xml", "temp": "/temp.xml"})
        )
        for run in range(1, defaults.MOVED_CONFIRMATIONS + 1):
            outcomes = cycle(config)
            notice = outcomes["moved"].notice or ""
            assert notice.startswith(f"moved to {base}/new.xml, update the config"), notice
            if run < defaults.MOVED_CONFIRMATIONS:
                assert f"seen {run} of {defaults.MOVED_CONFIRMATIONS} times" in notice
            assert outcomes["temp"].notice is None
        assert log.count("/old.xml") == defaults.MOVED_CONFIRMATIONS
        outcomes = cycle(config)
        assert log.count("/old.xml") == defaults.MOVED_CONFIRMATIONS
        assert log.count("/new.xml") == defaults.MOVED_CONFIRMATIONS + 1
        assert "the new URL is used from now on" in (outcomes["moved"].notice or "")
        assert stored(tmp_path, "temp").moved_to is None
        config.write_text(config.read_text().replace("/old.xml", "/new.xml"), encoding="utf-8")
        outcomes = cycle(config)
    assert outcomes["moved"].ok and outcomes["moved"].notice is None
    assert stored(tmp_path, "moved").moved_to is None
    assert entries(tmp_path, "moved") and entries(tmp_path, "temp")


def test_credentials_in_a_feed_url_stay_on_its_origin_and_out_of_sight(tmp_path: Path) -> None:
    """A `user:pass@` URL keeps its credentials on a redirect to the same origin, even one with
    an absolute Location, never sends them to another origin, and never shows the password."""
    closing = threading.Event()
    expected = "Basic " + base64.b64encode(b"user:secret").decode()

    def private(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") == expected:
            serve_bytes(good("private"))(handler)
        else:
            status(401, [("WWW-Authenticate", 'Basic realm="feeds"')])(handler)

    with hostile_server({"/open.xml": serve_bytes(good("open"))}, closing, "127.0.0.2") as (
        other,
        other_log,
    ):
        slash = Switch(status(500))
        routes: dict[str, Route] = {
            "/away.xml": redirect(f"{other}/open.xml", 301),
            "/private": slash,
            "/private/": private,
        }
        with hostile_server(routes, closing) as (base, log):
            slash.current = redirect(f"{base}/private/", 301)  # as web servers add a slash
            secret = base.replace("http://", "http://user:secret@")
            feeds = {"private": f"{secret}/private", "away": f"{secret}/away.xml"}
            config = make_project(tmp_path, fetch_config(base, feeds))
            outcomes = cycle(config)
    assert outcomes["private"].ok, outcomes["private"].reason
    assert log.last("/private/").headers.get("Authorization") == expected
    assert outcomes["away"].ok and "Authorization" not in other_log.last("/open.xml").headers
    masked = base.replace("http://", "http://user:***@")
    assert outcomes["private"].notice == (
        f"moved to {masked}/private/, update the config "
        f"(seen 1 of {defaults.MOVED_CONFIRMATIONS} times before it is used)"
    )
    rows = collect(load_config(config))
    shown = f"{as_table(rows, 'UTC')} {as_json(rows)}"
    assert f"moved to {masked}/private/" in shown and "secret" not in shown


def test_credentials_in_a_feed_url_are_never_published(tmp_path: Path) -> None:
    """Links made from a `user:pass@` feed URL (an entry link relative to it, an entry and a
    feed with no link at all, the published source's self link) carry no credentials."""
    closing = threading.Event()
    items = (
        "<item><guid>r</guid><title>Relative</title><link>/posts/r</link></item>"
        '<item><guid isPermaLink="false">n</guid><title>No link</title></item>'
    )
    body = f'<rss version="2.0"><channel><title>Priv</title>{items}</channel></rss>'
    with hostile_server({"/feed.xml": serve_bytes(body.encode())}, closing) as (base, _):
        feeds = {"private": base.replace("http://", "http://user:secret@") + "/feed.xml"}
        config = make_project(tmp_path, fetch_config(base, feeds))
        assert cycle(config)["private"].ok
    published = [p for p in (tmp_path / "feeds").rglob("*.md")] + list(
        (tmp_path / "output").rglob("*.*")
    )
    assert len(published) > 3
    text = "".join(p.read_text(encoding="utf-8") for p in published)
    assert f"({base}/posts/r)" in text and f"({base}/feed.xml)" in text
    assert "secret" not in text and "user:" not in text


def test_retry_after_holds_across_runs_unless_forced(tmp_path: Path) -> None:
    closing = threading.Event()
    routes = {
        "/busy.xml": status(503, [("Retry-After", formatdate(time.time() + 7200, usegmt=True))]),
        "/far.xml": status(429, [("Retry-After", str(30 * 86400))]),
        "/fine.xml": serve_bytes(good("fine")),
    }
    feeds = {"busy": "/busy.xml", "far": "/far.xml", "fine": "/fine.xml"}
    with hostile_server(routes, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, feeds))
        first = cycle(config)
        assert first["busy"].reason == "HTTP 503 Service Unavailable, asked to wait 2 h"
        assert 7200 - 5 <= waits(stored(tmp_path, "busy")) <= 7200 + 5
        assert waits(stored(tmp_path, "far")) == pytest.approx(defaults.RETRY_AFTER_CAP, abs=5)
        second = cycle(config)
        assert (log.count("/busy.xml"), log.count("/far.xml"), log.count("/fine.xml")) == (1, 1, 2)
        assert (second["busy"].skipped or "").endswith(first["busy"].reason)
        assert second["fine"].ok and not second["fine"].skipped
        cycle(config, force=True)
        assert (log.count("/busy.xml"), log.count("/far.xml")) == (2, 2)
    assert entries(tmp_path, "fine")


def test_validators_a_server_gets_wrong_never_stop_a_feed(tmp_path: Path) -> None:
    """A 304 to a request that was not conditional is a failure, not "unchanged" (else the feed
    would stay empty for good); an ETag or Last-Modified that is not printable ASCII is not kept
    (sent back, it would fail every later request of the feed)."""
    closing = threading.Event()
    routes = {
        "/lazy.xml": status(304, [("ETag", '"x"')]),
        "/odd.xml": serve_bytes(good("odd"), etag='"café"', last_modified="lundi 2 novembre é"),
    }
    with hostile_server(routes, closing) as (base, log):
        config = make_project(
            tmp_path, fetch_config(base, {"lazy": "/lazy.xml", "odd": "/odd.xml"})
        )
        first = cycle(config)
        assert first["lazy"].reason == "HTTP 304 Not Modified to a request that was not conditional"
        assert stored(tmp_path, "lazy").etag is None
        assert first["odd"].ok and len(entries(tmp_path, "odd")) == 2
        assert (stored(tmp_path, "odd").etag, stored(tmp_path, "odd").last_modified) == (None, None)
        again = cycle(config, force=True)
        assert again["odd"].ok, again["odd"].reason
        assert log.count("/odd.xml") == 2
        assert "If-None-Match" not in log.last("/odd.xml").headers


def test_a_body_cut_off_never_replaces_a_whole_entry(tmp_path: Path) -> None:
    """A body that stops inside its last entry (and says nothing of it in its headers): the
    whole entries are read, the one cut is left as stored before, the operator is told, and
    no validator is kept, so the next fetch reads the whole body again."""
    closing = threading.Event()
    whole = good("cut")
    feed = Switch(serve_bytes(whole, etag='"1"'))
    with hostile_server({"/cut.xml": feed}, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, {"cut": "/cut.xml"}))
        assert cycle(config)["cut"].new == 2
        before = {path: path.read_bytes() for path in entries(tmp_path, "cut")}
        changed = whole.replace(b"cut second", b"cut second, changed")
        feed.current = serve_bytes(changed[: changed.rindex(b"second, changed") + 6], etag='"2"')
        second = cycle(config, force=True)
        assert second["cut"].ok and (second["cut"].new, second["cut"].updated) == (0, 0)
        assert second["cut"].notice == CUT_OFF_NOTICE
        assert {path: path.read_bytes() for path in entries(tmp_path, "cut")} == before
        assert stored(tmp_path, "cut").etag is None
        feed.current = serve_bytes(changed, etag='"3"')
        third = cycle(config, force=True)
        assert "If-None-Match" not in log.last("/cut.xml").headers
        assert third["cut"].updated == 1 and third["cut"].notice is None


def test_failures_back_off_with_jitter_and_reset_on_success(tmp_path: Path) -> None:
    closing = threading.Event()
    flaky = Switch(status(500))
    with hostile_server({"/flaky.xml": flaky}, closing) as (base, _):
        config = make_project(tmp_path, fetch_config(base, {"flaky": "/flaky.xml"}))
        for failures in range(1, 5):
            assert cycle(config, force=True)["flaky"].reason == "HTTP 500 Internal Server Error"
            state = stored(tmp_path, "flaky")
            ceiling = min(defaults.BACKOFF_CAP, defaults.BACKOFF_BASE * 2 ** (failures - 1))
            assert state.failures == failures
            assert ceiling / 2 <= waits(state) <= ceiling
        skipped = cycle(config)["flaky"].skipped or ""
        assert skipped.endswith("after 4 failures in a row: HTTP 500 Internal Server Error")
        flaky.current = serve_bytes(good("flaky"))
        assert cycle(config, force=True)["flaky"].new == 2
    state = stored(tmp_path, "flaky")
    assert (state.failures, state.last_error, state.next_due) == (0, None, None)
    assert state.last_success == state.last_attempt


def test_a_gone_feed_is_tried_weekly_and_can_come_back(tmp_path: Path) -> None:
    closing = threading.Event()
    gone = Switch(status(410))
    with hostile_server({"/gone.xml": gone}, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, {"gone": "/gone.xml"}))
        assert cycle(config)["gone"].reason == "gone (HTTP 410), will retry weekly"
        state = stored(tmp_path, "gone")
        assert state.gone and waits(state) == defaults.GONE_RETRY
        assert "gone (HTTP 410)" in (cycle(config)["gone"].skipped or "")
        assert log.count("/gone.xml") == 1
        gone.current = serve_bytes(good("gone"))
        assert cycle(config, force=True)["gone"].ok
    assert not stored(tmp_path, "gone").gone


def test_cache_lifetimes_and_ttl_set_a_minimum_interval(tmp_path: Path) -> None:
    closing = threading.Event()
    now = time.time()
    with_ttl = good("ttl").replace(b"<link>", b"<ttl>90</ttl><link>", 1)
    routes = {
        "/max-age.xml": serve_bytes(good("max-age"), headers=[("Cache-Control", "max-age=600")]),
        "/expires.xml": serve_bytes(
            good("expires"),
            headers=[("Expires", formatdate(now + 1800, usegmt=True))],
        ),
        "/year.xml": serve_bytes(good("year"), headers=[("Cache-Control", "max-age=31536000")]),
        "/aged.xml": serve_bytes(  # a CDN's copy, 3000 s old of its 3600
            good("aged"), headers=[("Cache-Control", "public, max-age=3600"), ("Age", "3000")]
        ),
        "/no-cache.xml": serve_bytes(
            good("no-cache"), headers=[("Cache-Control", "no-cache, max-age=600")]
        ),
        "/ttl.xml": serve_bytes(with_ttl, etag='"t1"'),
    }
    feeds = {path.strip("/").removesuffix(".xml"): path for path in routes}
    with hostile_server(routes, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, feeds))
        cycle(config)
        assert waits(stored(tmp_path, "max-age")) == 600
        assert 1800 - 5 <= waits(stored(tmp_path, "expires")) <= 1800 + 5
        assert waits(stored(tmp_path, "year")) == defaults.FRESHNESS_CAP
        assert waits(stored(tmp_path, "aged")) == 600
        assert waits(stored(tmp_path, "ttl")) == 90 * 60
        assert stored(tmp_path, "no-cache").next_due is None
        again = cycle(config)
        assert [n for n, o in again.items() if not o.skipped] == ["no-cache"]
        assert "still fresh" in (again["ttl"].skipped or "")
        assert cycle(config, force=True)["ttl"].not_modified
        assert log.last("/ttl.xml").headers.get("If-None-Match") == '"t1"'
    assert waits(stored(tmp_path, "ttl")) == 90 * 60


def test_user_agent_default_and_configured(tmp_path: Path) -> None:
    closing = threading.Event()
    with hostile_server({"/ua.xml": serve_bytes(good("ua"))}, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, {"ua": "/ua.xml"}))
        cycle(config)
        headers = log.last("/ua.xml").headers
        assert headers["User-Agent"] == default_user_agent(defaults.SITE_BASE_URL)
        assert headers["User-Agent"].startswith("aggregator/")
        assert headers["Accept-Encoding"] == "gzip, deflate, br"
        config.write_text(
            fetch_config(base, {"ua": "/ua.xml"}, 'user_agent = "Planet/2.0"\n'), encoding="utf-8"
        )
        cycle(config)
        assert log.last("/ua.xml").headers["User-Agent"] == "Planet/2.0"
        # a header value is ASCII: an IDN host goes as punycode, the path percent-encoded
        site = '[site]\nbase_url = "https://bücher.example/café/"\n'
        config.write_text(site + fetch_config(base, {"ua": "/ua.xml"}), encoding="utf-8")
        assert cycle(config)["ua"].ok
        agent = log.last("/ua.xml").headers["User-Agent"]
        assert agent.endswith("(+https://xn--bcher-kva.example/caf%C3%A9/)")


def test_size_limit_counts_decoded_bytes(tmp_path: Path) -> None:
    closing = threading.Event()
    padded = good("padded") + b"<!--" + b"x" * 5000 + b"-->"
    raw_deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    routes = {
        "/padded.xml": compressed(zlib.compress(padded, 9, wbits=31), "gzip"),
        "/declared.xml": serve_bytes(padded),
        "/gzip.xml": compressed(zlib.compress(good("gzip"), wbits=31), "gzip"),
        "/deflate.xml": compressed(
            raw_deflate.compress(good("deflate")) + raw_deflate.flush(), "deflate"
        ),
        "/br.xml": compressed(brotli.compress(good("br")), "br"),
        "/broken.xml": compressed(
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20, "gzip"
        ),
        "/truncated.xml": compressed(b"\x1f\x8b\x08", "gzip"),
        "/odd.xml": compressed(good("odd"), "compress"),
    }
    feeds = {path.strip("/").removesuffix(".xml"): path for path in routes}
    with hostile_server(routes, closing) as (base, _):
        config = make_project(tmp_path, fetch_config(base, feeds, "max_bytes = 2000\n"))
        outcomes = cycle(config)
    assert len(zlib.compress(padded, 9, wbits=31)) < 2000 < len(padded)
    assert outcomes["padded"].reason == "larger than 2000 bytes"
    assert outcomes["declared"].reason == "larger than 2000 bytes"
    assert (outcomes["broken"].reason or "").startswith("broken gzip encoding (")
    assert outcomes["truncated"].reason == "broken gzip encoding (truncated)"
    assert outcomes["odd"].reason == "unsupported Content-Encoding 'compress'"
    for name in ("gzip", "deflate", "br"):
        assert outcomes[name].new == 2, outcomes[name]


def test_a_changed_url_starts_afresh(tmp_path: Path) -> None:
    closing = threading.Event()
    routes = {"/broken.xml": status(500), "/fixed.xml": serve_bytes(good("fixed"))}
    with hostile_server(routes, closing) as (base, _):
        config = make_project(tmp_path, fetch_config(base, {"feed": "/broken.xml"}))
        assert not cycle(config)["feed"].ok
        assert stored(tmp_path, "feed").next_due is not None
        config.write_text(config.read_text().replace("/broken.xml", "/fixed.xml"), encoding="utf-8")
        assert cycle(config)["feed"].new == 2
    assert stored(tmp_path, "feed").url == f"{base}/fixed.xml"


def test_changed_settings_reach_the_entries_of_a_feed_answering_304(tmp_path: Path) -> None:
    """A feed whose settings changed since its body was stored is asked without validators, so
    its entries are made again with them (only those whose bytes change are rewritten); the
    other feeds, every feed of an unchanged config and a changed schedule are still asked
    conditionally."""
    closing = threading.Event()
    routes = {f"/{name}.xml": serve_bytes(good(name), etag=f'"{name}"') for name in "ab"}
    with hostile_server(routes, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, {"a": "/a.xml", "b": "/b.xml"}))
        text = config.read_text(encoding="utf-8")

        def conditional() -> dict[str, bool]:
            return {name: "If-None-Match" in log.last(f"/{name}.xml").headers for name in "ab"}

        assert {o.new for o in cycle(config).values()} == {2}
        assert all(o.not_modified for o in cycle(config).values())
        tagged_text = text.replace('tags = ["web"]', 'tags = ["web", "linux"]', 1)  # a's
        config.write_text(tagged_text, encoding="utf-8")
        tagged = cycle(config)
        assert conditional() == {"a": False, "b": True}
        assert (tagged["a"].updated, tagged["b"].not_modified) == (2, True)
        assert all('  - "linux"' in path.read_text() for path in entries(tmp_path, "a"))
        linux = (tmp_path / "output" / "tags" / "linux.xml").read_text(encoding="utf-8")
        assert linux.count("<entry>") == 2
        assert stored(tmp_path, "b").etag == '"b"'
        assert all(o.not_modified for o in cycle(config).values())
        assert conditional() == {"a": True, "b": True}
        before = {path: stat_key(path) for path in entries(tmp_path, "b")}
        # b's summaries: "b first" stays whole, "b second" is cut
        config.write_text(tagged_text + "summary_length = 7\n", encoding="utf-8")
        cut = cycle(config)
        assert conditional() == {"a": True, "b": False}
        assert (cut["a"].not_modified, cut["b"].updated) == (True, 1)
        after = {path: stat_key(path) for path in entries(tmp_path, "b")}
        assert sorted(before[path] == after[path] for path in before) == [False, True]
        assert all(o.not_modified for o in cycle(config).values())
        assert conditional() == {"a": True, "b": True}
        # a schedule shapes no entry
        config.write_text(tagged_text + 'summary_length = 7\ninterval = "2h"\n', encoding="utf-8")
        assert all(o.not_modified for o in cycle(config).values())
        assert conditional() == {"a": True, "b": True}


def test_a_body_hash_stored_without_settings_takes_the_current_ones_at_a_304(
    tmp_path: Path,
) -> None:
    """A body hash stored before it began with the settings (a database of an earlier version)
    keeps the validators: the 304 that confirms the body adds the current settings to it, so
    that a later change of them is noticed."""
    closing = threading.Event()
    with hostile_server({"/a.xml": serve_bytes(good("a"), etag='"a"')}, closing) as (base, log):
        config = make_project(tmp_path, fetch_config(base, {"a": "/a.xml"}))
        assert cycle(config)["a"].new == 2
        with State(tmp_path / defaults.STATE_DB_NAME) as state, state.transaction():
            state.save_feed(replace(state.feed("a"), body_hash="0" * 64))
        assert cycle(config)["a"].not_modified
        assert "If-None-Match" in log.last("/a.xml").headers
        loaded = load_config(config)
        assert (
            stored(tmp_path, "a").body_hash
            == f"{settings_hash(loaded.feeds[0], loaded)}:{'0' * 64}"
        )
        config.write_text(
            config.read_text().replace('tags = ["web"]', 'tags = ["linux"]'), encoding="utf-8"
        )
        assert cycle(config)["a"].updated == 2
        assert "If-None-Match" not in log.last("/a.xml").headers


def _dated_rss(count: int, undated: set[int]) -> bytes:
    """RSS of `count` items listed oldest first, an hour apart, those in `undated` without a
    date; item i links to /i."""
    items = "".join(
        f"<item><title>Item {i}</title><link>https://d.example/{i}</link><guid>g{i}</guid>"
        + ("" if i in undated else f"<pubDate>{formatdate(1_700_000_000 + 3600 * i)}</pubDate>")
        + "<description>text</description></item>"
        for i in range(count)
    )
    channel = f"<title>Dated</title><link>https://d.example/</link>{items}"
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}</channel></rss>'.encode()


def _linked(project: Path, name: str) -> set[str]:
    """The links of a feed's stored entries (their source line)."""
    return {
        p.read_text(encoding="utf-8").rsplit("(", 1)[1].rstrip(")\n")
        for p in entries(project, name)
    }


def test_a_document_longer_than_max_entries_gives_only_its_newest(tmp_path: Path) -> None:
    """Past `max_entries`, the newest entries by date are read (then undated ones), whatever
    the order the document lists them in, and the feed's line says how many were not; raising
    the limit reads the document again (behind its ETag) and takes the rest."""
    body = _dated_rss(12, undated={3, 7})
    with hostile_server({"/d.xml": serve_bytes(body, etag='"d1"')}, threading.Event()) as (
        base,
        _,
    ):
        config = make_project(tmp_path, fetch_config(base, {"d": "/d.xml"}, "max_entries = 5\n"))
        first = cycle(config)["d"]
        assert first.ok and first.new == 5
        assert first.notice == "12 entries, more than max_entries: only the newest 5 were read"
        assert _linked(tmp_path, "d") == {f"https://d.example/{i}" for i in (6, 8, 9, 10, 11)}
        assert cycle(config)["d"].not_modified
        config.write_text(
            config.read_text(encoding="utf-8").replace("max_entries = 5", "max_entries = 12"),
            encoding="utf-8",
        )
        raised = cycle(config)["d"]
    assert raised.ok and raised.new == 7 and raised.notice is None
    assert _linked(tmp_path, "d") == {f"https://d.example/{i}" for i in range(12)}
