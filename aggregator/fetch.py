"""Get each feed's bytes: httpx for http(s) URLs (async, many at once), disk for local paths."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import httpx

from aggregator import __version__
from aggregator.config import FeedConfig, FetchConfig
from aggregator.errors import FeedError
from aggregator.models import Fetched
from aggregator.state import FeedState


def default_user_agent(base_url: str) -> str:
    return f"aggregator/{__version__} (+{base_url})"


def read_local(feed: FeedConfig, settings: FetchConfig) -> Fetched:
    """A local source file named in the config (never one named by a feed or a redirect)."""
    assert feed.local_path is not None
    try:
        with feed.local_path.open("rb") as handle:
            body = handle.read(settings.max_bytes + 1)
    except OSError as exc:
        raise FeedError(feed.name, f"cannot read {feed.local_path}: {exc.strerror}") from None
    if len(body) > settings.max_bytes:
        raise FeedError(feed.name, f"larger than max_bytes ({settings.max_bytes})")
    return Fetched(feed=feed.name, body=body, url=str(feed.local_path))


async def fetch_one(
    client: httpx.AsyncClient, feed: FeedConfig, settings: FetchConfig, state: FeedState
) -> Fetched:
    headers: dict[str, str] = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with client.stream("GET", feed.url, headers=headers) as response:
            if response.status_code == 304:
                return Fetched(
                    feed=feed.name,
                    not_modified=True,
                    url=str(response.url),
                    etag=state.etag,
                    last_modified=state.last_modified,
                )
            if response.status_code >= 400:
                raise FeedError(feed.name, f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > settings.max_bytes:
                    raise FeedError(feed.name, f"larger than max_bytes ({settings.max_bytes})")
                chunks.append(chunk)
            return Fetched(
                feed=feed.name,
                body=b"".join(chunks),
                url=str(response.url),
                content_type=response.headers.get("content-type", ""),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    except httpx.HTTPError as exc:
        raise FeedError(
            feed.name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ) from None


async def fetch_all(
    feeds: Sequence[FeedConfig],
    settings: FetchConfig,
    states: Mapping[str, FeedState],
    user_agent: str,
) -> list[Fetched | FeedError]:
    """Fetch every feed concurrently; each result is the bytes or the feed's error."""
    timeout = httpx.Timeout(settings.timeout, connect=settings.connect_timeout)
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    semaphore = asyncio.Semaphore(settings.concurrency)
    async with httpx.AsyncClient(
        timeout=timeout, limits=limits, follow_redirects=True, headers={"User-Agent": user_agent}
    ) as client:

        async def one(feed: FeedConfig) -> Fetched | FeedError:
            try:
                if feed.is_local:
                    return read_local(feed, settings)
                async with semaphore:
                    return await fetch_one(
                        client, feed, settings, states.get(feed.name, FeedState(feed.name))
                    )
            except FeedError as exc:
                return exc

        return list(await asyncio.gather(*(one(f) for f in feeds)))
