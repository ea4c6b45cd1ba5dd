"""Fetch feeds or pages once through the fetcher and its guards, without validators and without
touching the state: for `add` discovery and `check --online`."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator import eventloop
from aggregator.config import Config, FeedConfig
from aggregator.errors import FeedError
from aggregator.fetch import default_user_agent, fetch_all
from aggregator.models import Fetched


def probe(config: Config, feeds: Sequence[FeedConfig]) -> list[Fetched | FeedError]:
    """Each feed's bytes or its error, fetched concurrently with one client."""
    user_agent = config.fetch.user_agent or default_user_agent(config.site.base_url)
    return eventloop.run(fetch_all(feeds, config.fetch, {}, user_agent))


def probe_url(config: Config, url: str) -> Fetched:
    """One URL (or a path relative to the config's folder); FeedError names the URL."""
    local = None if "://" in url else (config.root / url).resolve()
    target = FeedConfig(
        name=url, url=url, lang=None, tags=(), front=config.defaults, local_path=local
    )
    result = probe(config, [target])[0]
    if isinstance(result, FeedError):
        raise result
    return result
