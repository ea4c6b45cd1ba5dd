"""Feed discovery for `add`: a URL that is a feed is taken as is; a web page is searched for
`<link rel="alternate">` to RSS, Atom or JSON Feed, and the first one that parses wins."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from urllib.parse import urljoin

from aggregator.config import Config
from aggregator.errors import FeedError, ParseError
from aggregator.models import Fetched
from aggregator.parse import parse_feed
from aggregator.probe import probe_url

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
    }
)


@dataclass(frozen=True)
class Discovered:
    """A feed found for `add`: its URL, its own title and language."""

    url: str
    title: str
    language: str | None


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"].strip()
        elif (
            tag == "link"
            and "alternate" in values.get("rel", "").lower().split()
            and values.get("type", "").split(";")[0].strip().lower() in FEED_TYPES
            and values.get("href", "").strip()
        ):
            self.links.append(values["href"].strip())


def feed_links(html: str, page_url: str) -> list[str]:
    """The absolute URLs of the page's feed links, in document order, without repeats."""
    finder = _LinkFinder()
    finder.feed(html)
    finder.close()
    base = urljoin(page_url, finder.base) if finder.base else page_url
    return list(dict.fromkeys(urljoin(base, href) for href in finder.links))


def _text(fetched: Fetched) -> str:
    message = Message()
    message["content-type"] = fetched.content_type or "text/html"
    charset = message.get_content_charset() or "utf-8"
    try:
        return (fetched.body or b"").decode(charset, "replace")
    except LookupError:
        return (fetched.body or b"").decode("utf-8", "replace")


def _as_feed(url: str, fetched: Fetched) -> Discovered:
    feed = parse_feed(fetched.body or b"", fetched.content_type, fetched.url)
    return Discovered(url=url, title=feed.title.strip(), language=feed.language)


def discover(config: Config, url: str) -> Discovered:
    """The feed at `url`, or the first feed its page links to; FeedError says why there is none."""
    page = probe_url(config, url)
    try:
        return _as_feed(url, page)
    except ParseError as exc:
        not_a_feed = str(exc)
    links = feed_links(_text(page), page.url or url)
    if not links:
        raise FeedError(
            url, f"no feed found: {not_a_feed}, and the page links to no RSS, Atom or JSON Feed"
        )
    reasons = []
    for link in links:
        try:
            return _as_feed(link, probe_url(config, link))
        except (FeedError, ParseError) as exc:
            reasons.append(f"{link}: {exc.reason if isinstance(exc, FeedError) else exc}")
    raise FeedError(url, "no feed found: " + "; ".join(reasons))
