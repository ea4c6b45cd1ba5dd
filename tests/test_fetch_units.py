"""The fetcher's pure parts: which addresses the SSRF guard refuses, Retry-After and cache
header arithmetic, backoff bounds, move tracking, and bounded decompression."""

from __future__ import annotations

import ipaddress
import random
import zlib
from email.utils import formatdate

import brotli  # type: ignore[import-untyped]
import pytest

from aggregator import defaults, health
from aggregator.decoding import PIECE, DecodeError, decoder_for
from aggregator.models import Fetched
from aggregator.netguard import address_kind
from aggregator.state import FeedState

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "a private address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fd12:3456::1", "a private address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),
        ("2002:a9fe:a9fe::", "a link-local address"),
        ("64:ff9b::a00:1", "a private address"),
        ("2001:db8::1", "a private address"),
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_guard_refuses_every_non_public_address(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_retry_after_takes_seconds_or_a_date_and_is_capped() -> None:
    assert health.retry_at("120", NOW) == NOW + 120
    assert health.retry_at(formatdate(NOW + 7200, usegmt=True), NOW) == NOW + 7200
    assert health.retry_at(formatdate(NOW - 60, usegmt=True), NOW) == NOW
    assert health.retry_at("99999999", NOW) == NOW + defaults.RETRY_AFTER_CAP
    for junk in (None, "", "soon", "-5", "1e9", "²"):
        assert health.retry_at(junk, NOW) is None


def test_cache_headers_give_a_capped_freshness() -> None:
    assert health.fresh_for("public, max-age=600", None, None, NOW) == 600
    assert health.fresh_for('max-age="90"', None, None, NOW) == 90
    assert health.fresh_for("s-maxage=600", None, None, NOW) is None
    assert health.fresh_for("no-cache, max-age=600", None, None, NOW) is None
    assert health.fresh_for("no-store", formatdate(NOW + 60), None, NOW) is None
    assert health.fresh_for("max-age=0", None, None, NOW) is None
    assert health.fresh_for("max-age=9999999", None, None, NOW) == defaults.FRESHNESS_CAP
    date, expires = formatdate(NOW - 100, usegmt=True), formatdate(NOW + 500, usegmt=True)
    assert health.fresh_for(None, expires, date, NOW) == 600
    assert health.fresh_for(None, expires, None, NOW) == 500
    assert health.fresh_for(None, "0", None, NOW) is None
    # a copy a cache in between has held for `Age` seconds is fresh for what is left of it
    assert health.fresh_for("max-age=3600", None, None, NOW, "3590") == 10
    assert health.fresh_for("max-age=3600", None, None, NOW, "3600") is None
    assert health.fresh_for(None, expires, date, NOW, " 100 ") == 500
    for junk in ("", "soon", "-5", "1e3"):
        assert health.fresh_for("max-age=3600", None, None, NOW, junk) == 3600
    assert health.min_interval(600, 90) == 5400
    assert health.min_interval(None, 0) is None
    assert health.min_interval(None, 100_000) == defaults.FRESHNESS_CAP


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for failures in range(1, 20):
        ceiling = min(defaults.BACKOFF_CAP, defaults.BACKOFF_BASE * 2 ** (failures - 1))
        delays = [health.backoff(failures, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert health.backoff(10_000, rng) <= defaults.BACKOFF_CAP


def test_a_move_counts_consecutive_sightings_and_resets() -> None:
    state = FeedState("f", url="https://a.example/feed")
    new = "https://b.example/feed"
    for seen in range(1, defaults.MOVED_CONFIRMATIONS + 1):
        assert health.request_url(state.url, state) == state.url
        state = health.succeeded(state, Fetched("f", moved_to=new), NOW, None)
        assert (state.moved_to, state.moved_count) == (new, seen)
    assert health.request_url(state.url, state) == new
    followed = health.succeeded(state, Fetched("f"), NOW, None)
    assert (followed.moved_to, followed.moved_count) == (new, defaults.MOVED_CONFIRMATIONS)
    elsewhere = health.succeeded(state, Fetched("f", moved_to="https://c.example/"), NOW, None)
    assert (elsewhere.moved_to, elsewhere.moved_count) == ("https://c.example/", 1)
    back = health.succeeded(elsewhere, Fetched("f"), NOW, None)
    assert (back.moved_to, back.moved_count) == (None, 0)
    assert health.for_url(state, new).moved_to is None


def test_a_hold_set_by_a_clock_that_ran_fast_does_not_outlast_the_longest_hold() -> None:
    """Every hold is at most a week (Retry-After, gone): a next due time a year ahead was set
    while the clock ran fast, and the feed is due again once the clock is right."""
    gone = health.failed(FeedState("f"), "gone (HTTP 410)", NOW, gone=True)
    assert not health.is_due(gone, NOW + defaults.GONE_RETRY - 60)
    assert health.is_due(gone, NOW + defaults.GONE_RETRY)
    ahead = health.failed(FeedState("f"), "HTTP 500 Internal Server Error", NOW + 365 * 86400)
    assert health.is_due(ahead, NOW)


def test_local_feeds_are_never_held_back() -> None:
    state = FeedState("local", failures=3)
    assert health.failed(state, "cannot read", NOW, polled=False).next_due is None
    fresh = Fetched("local", fresh_for=600)
    assert health.succeeded(state, fresh, NOW, 60, polled=False).next_due is None


def test_skip_reasons_say_until_when_and_why() -> None:
    failing = health.failed(FeedState("f"), "HTTP 500 Internal Server Error", NOW)
    assert health.skip_reason(failing).startswith("skipped until 2027-01-15 ")
    assert health.skip_reason(failing).endswith("after 1 failure: HTTP 500 Internal Server Error")
    gone = health.failed(FeedState("f"), "gone (HTTP 410), will retry weekly", NOW, gone=True)
    assert health.skip_reason(gone).endswith(": gone (HTTP 410), will retry weekly")
    assert gone.next_due == NOW + defaults.GONE_RETRY
    fresh = health.succeeded(FeedState("f"), Fetched("f", fresh_for=60), NOW, None)
    assert "still fresh" in health.skip_reason(fresh)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5 s"),
        (90, "90 s"),
        (120, "2 min"),
        (3599.6, "1 h"),
        (5400, "90 min"),
        (7199.4, "2 h"),
        (86400, "1 day"),
        (7 * 86400, "7 days"),
    ],
)
def test_durations_read_as_a_person_would_say_them(seconds: float, text: str) -> None:
    assert health.describe_duration(seconds) == text


def decode_all(encoding: str, data: bytes, step: int = 65536) -> tuple[int, int]:
    """Total decoded size and the largest piece, feeding `data` in network-sized steps."""
    decoder = decoder_for(encoding)
    total = largest = 0
    for start in range(0, len(data), step):
        for piece in decoder.feed(data[start : start + step]):
            total, largest = total + len(piece), max(largest, len(piece))
    for piece in decoder.flush():
        total, largest = total + len(piece), max(largest, len(piece))
    return total, largest


def test_bombs_decode_in_bounded_pieces() -> None:
    size = 32 * 1024 * 1024
    zeros = bytes(size)
    raw = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    bombs = {
        "gzip": zlib.compress(zeros, 1, wbits=31),
        "deflate": zlib.compress(zeros, 1),
        "br": brotli.compress(zeros, quality=1),
    }
    bombs["x-gzip, identity"] = bombs["gzip"]
    for encoding, bomb in [*bombs.items(), ("deflate", raw.compress(zeros) + raw.flush())]:
        total, largest = decode_all(encoding, bomb)
        assert total == size, encoding
        assert largest <= 2 * PIECE, (encoding, largest)


def test_bad_encodings_are_errors() -> None:
    with pytest.raises(DecodeError, match="unsupported Content-Encoding 'zstd'"):
        decoder_for("zstd")
    with pytest.raises(DecodeError, match="unsupported"):
        decoder_for("gzip, br")
    with pytest.raises(DecodeError, match="broken br encoding"):
        decode_all("br", b"\xff" * 64)
    assert decode_all("identity", b"plain") == (5, 5)


@pytest.mark.parametrize("cut", [1, 8, 100])
def test_a_compressed_body_cut_short_is_an_error_not_a_shorter_feed(cut: int) -> None:
    """A body that stops before its stream ends (the gzip checksum, the last brotli block) is
    a partial feed: taking it would store entries cut off mid-text."""
    text = b"<rss>" + b"".join(b"<item>%d</item>" % i for i in range(2000)) + b"</rss>"
    for encoding, whole in [
        ("gzip", zlib.compress(text, wbits=31)),
        ("deflate", zlib.compress(text)),
        ("br", brotli.compress(text)),
    ]:
        assert decode_all(encoding, whole) == (len(text), len(text)), encoding
        with pytest.raises(DecodeError, match=rf"broken {encoding} encoding \(truncated\)"):
            decode_all(encoding, whole[:-cut])


def decode_chunks(encoding: str, chunks: list[bytes]) -> bytes:
    decoder = decoder_for(encoding)
    pieces = [piece for chunk in chunks for piece in decoder.feed(chunk)]
    return b"".join([*pieces, *decoder.flush()])


@pytest.mark.parametrize("first", [1, 2, 3, 100_000])
def test_how_a_body_is_cut_into_chunks_never_changes_what_it_decodes_to(first: int) -> None:
    """A raw deflate body (no zlib header) was refused as 'incorrect header check' when its
    first chunk held a single byte, too few for zlib to check the header and fall back."""
    text = b"<rss>" + b"".join(b"<item>%d</item>" % i for i in range(2000)) + b"</rss>"
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    for encoding, whole in [
        ("gzip", zlib.compress(text, wbits=31)),
        ("deflate", zlib.compress(text)),
        ("deflate", raw.compress(text) + raw.flush()),
        ("br", brotli.compress(text)),
    ]:
        assert decode_chunks(encoding, [whole[:first], whole[first:]]) == text, encoding
        with pytest.raises(DecodeError, match=rf"broken {encoding} encoding \(truncated\)"):
            decode_chunks(encoding, [whole[:1]])


def test_every_member_of_a_gzip_body_is_decoded_whatever_the_chunks() -> None:
    """A gzip body may be several members one after another (RFC 1952 2.2: `cat a.gz b.gz`, a
    streaming compressor); only the first was read, and the document was cut off. Bytes after
    the last member that start none (zero padding, junk) are ignored, as they always were."""
    text = b"<rss>" + b"".join(b"<item>%d</item>" % i for i in range(2000)) + b"</rss>"
    first = zlib.compress(text[:30_000], wbits=31)
    whole = first + zlib.compress(text[30_000:], wbits=31)
    for cut in range(len(first) - 3, len(first) + 4):  # the second member's magic split too
        assert decode_chunks("gzip", [whole[:cut], whole[cut:]]) == text, cut
        for tail in (b"\0" * 8, b"\n", b"junk"):
            assert decode_chunks("gzip", [whole[:cut], whole[cut:], tail]) == text, (cut, tail)
    with pytest.raises(DecodeError, match=r"broken gzip encoding \(truncated\)"):
        decode_chunks("gzip", [whole[:-8]])
    with pytest.raises(DecodeError, match="broken gzip encoding"):
        decode_chunks("gzip", [whole[: len(first) + 2] + b"\xff" * 64])
