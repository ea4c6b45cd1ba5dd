"""Get each feed's bytes: httpx for http(s) URLs (many at once, a few per host, bounded in time
and size, through the SSRF guard, redirects followed one checked hop at a time), disk for the
local paths named in the config."""

from __future__ import annotations

import asyncio
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from urllib.parse import quote

import httpx

from aggregator import __version__, defaults
from aggregator.config import FeedConfig, FetchConfig
from aggregator.decoding import DecodeError, decoder_for
from aggregator.errors import FeedError
from aggregator.health import describe_duration, fresh_for, request_url, retry_at
from aggregator.models import Fetched
from aggregator.netguard import Refused, address_kind, make_transport
from aggregator.state import FeedState
from aggregator.text import one_line

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})
# the connection failed under a request before its response: worth sending it once more
CONNECTION_LOST = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
RATE_LIMITED = frozenset({429, 503})
MAX_VALIDATOR = 1024  # characters of an ETag or Last-Modified value worth keeping
ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


class FetchError(FeedError):
    """A feed that could not be fetched, with what the server asked of us: not before
    `retry_after` (a timestamp), or never again for a while (`gone`)."""

    def __init__(
        self, feed: str, reason: str, retry_after: float | None = None, gone: bool = False
    ) -> None:
        super().__init__(feed, reason)
        self.retry_after = retry_after
        self.gone = gone


def default_user_agent(base_url: str) -> str:
    """`aggregator/<version> (+<base_url>)`, the URL in ASCII as a header value must be."""
    return f"aggregator/{__version__} (+{ascii_url(base_url)})"


def ascii_url(url: str) -> str:
    """The URL with an IDN host in punycode and the rest percent-encoded (non-ASCII, spaces and
    control characters), or all of it percent-encoded when httpx cannot read it."""
    try:
        return str(httpx.URL(url))
    except httpx.InvalidURL:
        return quote(url, safe=string.punctuation)


def describe_size(size: int) -> str:
    mib = 1024 * 1024
    if size >= mib:
        return f"{size // mib} MiB" if size % mib == 0 else f"{size / mib:.1f} MiB"
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} bytes"


def read_local(feed: FeedConfig, settings: FetchConfig) -> Fetched:
    """A local source file named in the config (never one named by a feed or a redirect)."""
    assert feed.local_path is not None
    try:
        with feed.local_path.open("rb") as handle:
            body = handle.read(settings.max_bytes + 1)
    except OSError as exc:
        raise FeedError(feed.name, f"cannot read {feed.local_path}: {exc.strerror}") from None
    if len(body) > settings.max_bytes:
        raise FeedError(feed.name, f"larger than {describe_size(settings.max_bytes)}")
    return Fetched(feed=feed.name, body=body, url=str(feed.local_path))


def validator(value: str | None) -> str | None:
    """An ETag or Last-Modified value that can be sent back: printable ASCII of a sane length
    (another one, sent as it came, would fail every later request of the feed)."""
    if value and len(value) <= MAX_VALIDATOR and value.isascii() and value.isprintable():
        return value
    return None


async def fetch_one(
    client: httpx.AsyncClient, feed: FeedConfig, settings: FetchConfig, state: FeedState
) -> Fetched:
    """One feed over HTTP within `settings.timeout` in all, redirects included."""
    headers: dict[str, str] = {}
    if etag := validator(state.etag):
        headers["If-None-Match"] = etag
    if last_modified := validator(state.last_modified):
        headers["If-Modified-Since"] = last_modified
    url = request_url(feed.url, state)
    try:
        async with asyncio.timeout(settings.timeout):
            return await _follow(client, feed.name, url, headers, settings, state)
    except TimeoutError:
        raise FetchError(feed.name, f"timed out after {settings.timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchError(feed.name, _describe(exc, settings)) from None
    except httpx.InvalidURL as exc:
        raise FetchError(feed.name, f"invalid URL ({one_line(str(exc))})") from None
    except (Refused, DecodeError) as exc:
        raise FetchError(feed.name, str(exc)) from None


async def _follow(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    headers: dict[str, str],
    settings: FetchConfig,
    state: FeedState,
) -> Fetched:
    seen = {str(httpx.URL(url))}
    moved_to: str | None = None
    permanent = True
    for _ in range(defaults.MAX_REDIRECTS + 1):
        response = await _send(client, url, headers)
        try:
            if response.status_code not in REDIRECTS:
                return await _answer(response, name, settings, state, moved_to, bool(headers))
            target = _redirect_target(response, name)
        finally:
            await response.aclose()
        if target in seen:
            raise FetchError(name, "redirect loop")
        seen.add(target)
        permanent = permanent and response.status_code in PERMANENT
        if permanent:
            moved_to = target
        url = target
    raise FetchError(name, f"more than {defaults.MAX_REDIRECTS} redirects")


async def _send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """The response to a GET (its body still to read), the request sent again once when the
    connection broke before any response came: a kept-alive connection that the server closed
    just then, or one that httpcore's pool closed under the request (encode/httpcore#1110, seen
    here when the event loop falls behind). A GET may be repeated (RFC 9110, 9.2.2)."""
    request = client.build_request("GET", url, headers=headers)
    try:
        return await client.send(request, stream=True)
    except CONNECTION_LOST:
        return await client.send(request, stream=True)


def _redirect_target(response: httpx.Response, name: str) -> str:
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchError(name, f"HTTP {response.status_code} redirect without a Location")
    try:
        target = response.url.join(location).copy_with(fragment=None)
    except httpx.InvalidURL:
        raise FetchError(name, f"redirect to an invalid URL ({one_line(location)})") from None
    if target.scheme not in ("http", "https"):
        raise FetchError(name, f"redirect to a non-http(s) URL refused ({one_line(location)})")
    return str(_with_credentials(target, response.url))


def _with_credentials(target: httpx.URL, source: httpx.URL) -> httpx.URL:
    """`target` with the user and password of the URL redirected from when both have one origin
    (scheme, host and port), as httpx would send them: an absolute Location on the same server
    rarely repeats them. They never go to another origin."""
    if target.userinfo or not source.userinfo:
        return target
    if (target.scheme, target.host, target.port) != (source.scheme, source.host, source.port):
        return target
    return target.copy_with(userinfo=source.userinfo)


async def _answer(
    response: httpx.Response,
    name: str,
    settings: FetchConfig,
    state: FeedState,
    moved_to: str | None,
    conditional: bool,
) -> Fetched:
    """The answer as fetched: `conditional` when the request sent a validator."""
    status = response.status_code
    headers = response.headers
    now = time.time()
    fresh = fresh_for(
        headers.get("cache-control"),
        headers.get("expires"),
        headers.get("date"),
        now,
        headers.get("age"),
    )
    if status == 304:
        if not conditional:
            raise FetchError(name, "HTTP 304 Not Modified to a request that was not conditional")
        return Fetched(
            feed=name,
            not_modified=True,
            url=str(response.url),
            etag=validator(headers.get("etag")) or state.etag,
            last_modified=validator(headers.get("last-modified")) or state.last_modified,
            moved_to=moved_to,
            fresh_for=fresh,
        )
    if status == 410:
        raise FetchError(name, "gone (HTTP 410), will retry weekly", gone=True)
    if not 200 <= status < 300:
        reason = _status(status)
        when = retry_at(headers.get("retry-after"), now) if status in RATE_LIMITED else None
        if when is not None:
            reason += f", asked to wait {describe_duration(when - now)}"
        raise FetchError(name, reason, retry_after=when)
    return Fetched(
        feed=name,
        body=await _read_body(response, name, settings.max_bytes),
        url=str(response.url),
        content_type=headers.get("content-type", ""),
        etag=validator(headers.get("etag")),
        last_modified=validator(headers.get("last-modified")),
        moved_to=moved_to,
        fresh_for=fresh,
    )


async def _read_body(response: httpx.Response, name: str, limit: int) -> bytes:
    """The decoded body, streamed; abandoned as soon as it grows past `limit`."""
    encoding = response.headers.get("content-encoding", "")
    declared = response.headers.get("content-length", "")
    body = _Body(name, limit)
    if not encoding and declared.isdigit() and int(declared) > limit:
        raise body.too_large()
    decoder = decoder_for(encoding)
    async for raw in response.aiter_raw():
        body.extend(decoder.feed(raw))
    body.extend(decoder.flush())
    return b"".join(body.parts)


class _Body:
    """Decoded pieces of a body, refused once they add up to more than `limit` bytes."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def extend(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            self.size += len(piece)
            if self.size > self.limit:
                raise self.too_large()
            self.parts.append(piece)

    def too_large(self) -> FetchError:
        return FetchError(self.name, f"larger than {describe_size(self.limit)}")


def _status(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _describe(exc: httpx.HTTPError, settings: FetchConfig) -> str:
    detail = one_line(ERRNO_PREFIX.sub("", str(exc)))
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {settings.connect_timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {settings.timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {detail or 'connection failed'}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"broken HTTP response: {detail or 'connection closed'}"
    if isinstance(exc, httpx.NetworkError):
        return f"connection lost: {detail or _system_error(exc) or type(exc).__name__}"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _system_error(exc: BaseException) -> str | None:
    """The system's words for the OSError under an httpx error: httpcore drops it from the
    chain of causes (`raise ... from None`), but it stays as the context."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return None


async def fetch_all(
    feeds: Sequence[FeedConfig],
    settings: FetchConfig,
    states: Mapping[str, FeedState],
    user_agent: str,
    on_result: Callable[[FeedConfig, Fetched | FeedError, float], None] | None = None,
) -> list[Fetched | FeedError]:
    """Fetch every feed on one client; each result is the bytes or the feed's error, also
    handed to `on_result` as soon as it is known (so work on it can start), with the seconds
    its fetch took (not counting the wait for a connection slot)."""
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    policy = None if settings.allow_private_networks else address_kind
    overall = asyncio.Semaphore(settings.concurrency)
    per_host: dict[str, asyncio.Semaphore] = {}
    async with httpx.AsyncClient(
        transport=make_transport(limits, policy),
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
    ) as client:

        async def one(feed: FeedConfig) -> Fetched | FeedError:
            result, seconds = await attempt(feed)
            if on_result is not None:
                on_result(feed, result, seconds)
            return result

        async def attempt(feed: FeedConfig) -> tuple[Fetched | FeedError, float]:
            started = time.monotonic()
            result: Fetched | FeedError
            try:
                if feed.is_local:
                    result = await asyncio.to_thread(read_local, feed, settings)
                else:
                    state = states.get(feed.name) or FeedState(feed.name)
                    try:
                        host = httpx.URL(request_url(feed.url, state)).host
                    except httpx.InvalidURL as exc:
                        reason = f"invalid URL ({one_line(str(exc))})"
                        raise FetchError(feed.name, reason) from None
                    slot = per_host.setdefault(host, asyncio.Semaphore(settings.per_host))
                    async with slot, overall:
                        started = time.monotonic()  # the wait for a slot is not the feed's
                        result = await fetch_one(client, feed, settings, state)
            except FeedError as exc:
                result = exc
            except Exception as exc:  # an unforeseen failure of one feed must not stop the rest
                detail = one_line(f"{type(exc).__name__}: {exc}")
                result = FetchError(feed.name, f"unexpected error: {detail}")
            return result, time.monotonic() - started

        return list(await asyncio.gather(*(one(f) for f in feeds)))
