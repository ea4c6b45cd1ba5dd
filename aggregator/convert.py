"""Pure conversion of parsed entries into Posts: identity, front matter, Markdown body. No disk
or database access: what the state knows (first-seen times) is passed in."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import NamedTuple
from urllib.parse import unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from aggregator import markdown
from aggregator.config import FeedConfig
from aggregator.defaults import MAX_ENTRY_CATEGORIES
from aggregator.feeditems import clean_text, escape_attr
from aggregator.frontmatter import FrontMatter, render
from aggregator.identity import (
    entry_alias,
    entry_id,
    entry_identity,
    link_key,
    tag_slug,
    without_credentials,
)
from aggregator.language import normalize_lang, registered_lang
from aggregator.models import EntryData, FeedData, Post
from aggregator.text import (
    drop_controls,
    fold,
    html_to_text,
    summary_text,
    truncate,
    truncate_words,
)

EARLIEST_DATE = datetime(1970, 1, 2, tzinfo=ZoneInfo("UTC"))
FUTURE_SLACK = timedelta(days=2)
UNTITLED_LENGTH = 60
MAX_TITLE_UNWRAP = 3  # rounds of markup removal for titles escaped more than once
_SCRIPT_LIKE = re.compile(
    r"<\s*+(?:/\s*+)?(?:script|style|iframe|object|embed|form|svg|math|link|meta|base)\b"
    r"|\bon[a-z]+\s*=|(?:java|vb)script\s*:",
    re.IGNORECASE,
)
_LABEL_ESCAPES = re.compile(r"([\\\[\]*_`{}!~|&])")


class Identity(NamedTuple):
    """Who an entry is: its stable identity, its own absolute link, the key that finds it
    again across guid changes and sources (None when its link cannot tell entries apart), and
    without a guid, the alias that finds it while another entry shares its link and after."""

    key: str
    link: str | None
    link_key: str | None
    alias: str | None


def identify_entries(
    entries: Sequence[EntryData], feed: FeedData, source: FeedConfig
) -> list[Identity]:
    """Identities for a feed's entries. A link shared by different entries of the feed, or the
    feed's own home page, identifies none of them: they fall back to guid or title and date; a
    guid shared by different articles (other links, or other titles and dates) identifies none
    of them either: they fall back to link or title and date."""
    links = [_entry_link(e.link or "", feed) for e in entries]
    keys = [link_key(link) for link in links]
    home = link_key(feed.link)
    guids = [e.guid for e in entries]
    dated = [f"{e.title}\x00{e.published}" for e in entries]
    by_guid = [g or d for g, d in zip(guids, dated, strict=True)]
    by_link = [k or d for k, d in zip(keys, dated, strict=True)]
    shared_links = _shared(zip(keys, by_guid, strict=True))
    shared_guids = _shared(zip(guids, by_link, strict=True))
    out = []
    for entry, link, key in zip(entries, links, keys, strict=True):
        usable = key if key and key != home and key not in shared_links else None
        guid = entry.guid if entry.guid not in shared_guids else None
        published = entry.published.isoformat() if entry.published else None
        title = fold(entry.title)
        identity = entry_identity(source.name, guid, link if usable else None, title, published)
        paired = key if key and key != home and not guid else None
        alias = entry_alias(source.name, paired, title, published) if paired else None
        out.append(Identity(identity, link, usable, alias))
    return out


def _entry_link(link: str, feed: FeedData) -> str | None:
    """The entry's link made absolute against the feed's own link, else (a feed without one
    that can serve as a base) against the URL the document was fetched from."""
    absolute = markdown.absolute_url(link, feed.link, markdown.LINK_SCHEMES)
    if absolute is None and feed.url:
        return markdown.absolute_url(link, feed.url, markdown.LINK_SCHEMES)
    return absolute


def _shared(pairs: Iterable[tuple[str | None, str]]) -> set[str]:
    """The keys that stand for more than one distinct thing (a missing key stands for none)."""
    seen: dict[str, set[str]] = {}
    for key, thing in pairs:
        if key:
            seen.setdefault(key, set()).add(thing)
    return {key for key, things in seen.items() if len(things) > 1}


def entry_date(entry: EntryData, first_seen: datetime) -> datetime:
    """The entry's published (else updated) time when plausible, else when it was first seen;
    never later than that (Hugo leaves a page dated in the future out of the site)."""
    for candidate in (entry.published, entry.updated):
        if candidate is not None and EARLIEST_DATE <= candidate <= first_seen + FUTURE_SLACK:
            return min(candidate, first_seen)
    return first_seen


def format_date(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def source_link(name: str, url: str) -> str:
    """The closing `[name](url)` line, the name escaped so that it shows as written."""
    target = f"<{url}>" if re.search(r"[\s()<>]", url) else url
    return markdown.defuse_hugo(f"[{_label(name)}]({target})")


@lru_cache(maxsize=1024)
def _label(name: str) -> str:
    """A source's name as link text (the same for every entry of the source)."""
    return _LABEL_ESCAPES.sub(r"\\\1", fold(name)).replace("<", "&lt;").replace(">", "&gt;")


def entry_title(entry: EntryData, plain: str, link: str, fallback: str) -> str:
    """Plain one-line title; an untitled entry is named by its first words, else its link."""
    title = markdown.plain_text(entry.title) if entry.title_html else entry.title
    defused = _defused_title(title)
    if defused:
        return defused
    words = truncate_words(plain, UNTITLED_LENGTH)
    return (words and _defused_title(words)) or link or fallback


def _defused_title(title: str) -> str:
    """A title with script-like text loses its markup, again when decoding entities made more
    of it: nothing executable-looking reaches the front matter."""
    for _ in range(MAX_TITLE_UNWRAP):
        if not _SCRIPT_LIKE.search(title):
            break
        title = markdown.plain_text(title)
    return fold(_SCRIPT_LIKE.sub("", title))


def entry_lang(entry: EntryData, feed: FeedData, source: FeedConfig) -> str:
    """The configured language, else the entry's, else the feed's (each when it is a registered
    language), else `[defaults] lang`."""
    for lang in (
        normalize_lang(source.lang),
        registered_lang(entry.language),
        registered_lang(feed.language),
        normalize_lang(source.front.lang),
    ):
        if lang:
            return lang
    return "en"


def feed_html(clean: str, thumbnail: str) -> str:
    """The content the published feeds carry: the sanitized HTML the Markdown body is made
    from (no lossy round trip through Markdown), led by the thumbnail when it does not show it."""
    if thumbnail and escape_attr(thumbnail) not in clean:
        clean = f'<p><img src="{escape_attr(thumbnail)}" alt=""></p>\n{clean}'
    return clean_text(clean).strip()


def media_links(enclosures: Sequence[str], clean: str, base: str) -> str:
    """Sanitized HTML: a paragraph with a link to each enclosure (a podcast's audio, a video)
    that the content does not link or show already, named by its file."""
    links = []
    for enclosure in enclosures:
        url = markdown.absolute_url(enclosure, base or None, markdown.LINK_SCHEMES)
        if url and escape_attr(url) not in clean:
            name = unquote(posixpath.basename(urlsplit(url).path)) or url
            links.append(f'<p><a href="{escape_attr(url)}">{escape_attr(name)}</a></p>')
    return "".join(links)


def convert_entry(
    entry: EntryData,
    feed: FeedData,
    source: FeedConfig,
    tz: ZoneInfo,
    first_seen: datetime,
    identity: Identity | None = None,
) -> Post:
    """Build the Post for one entry; `first_seen` stands in for a missing or absurd date."""
    if identity is None:
        identity = identify_entries([entry], feed, source)[0]
    home = markdown.absolute_url(feed.link or "", None, markdown.LINK_SCHEMES)
    link = identity.link or home or ("" if source.is_local else without_credentials(source.url))
    base = urljoin(link, entry.base_url) if entry.base_url else link
    clean = markdown.sanitize(drop_controls(entry.content_html), base or None)

    thumbnail = ""
    for candidate in entry.images:
        thumbnail = markdown.absolute_url(candidate, base, markdown.IMAGE_SCHEMES) or ""
        if thumbnail:
            break
    if not thumbnail:
        thumbnail = markdown.first_image(clean) or ""
    media = media_links(entry.enclosures, clean, base)
    html = feed_html(clean + media, thumbnail)
    shown = clean
    if thumbnail and markdown.leading_image(clean) == thumbnail:
        clean = markdown.drop_leading_image(clean)

    body = markdown.to_markdown(clean + media)
    plain = html_to_text(clean) or html_to_text(media) or markdown.image_text(shown)
    when = entry_date(entry, first_seen)
    date = format_date(when, tz)
    title = entry_title(entry, plain, link, f"{source.name} {date}")
    lang = entry_lang(entry, feed, source)
    summary = truncate(plain, source.front.summary_length)
    tags = [source.name, *source.tags]
    if source.entry_categories:
        own = dict.fromkeys(slug for slug in map(tag_slug, entry.categories) if slug)
        tags.extend(islice((slug for slug in own if slug not in tags), MAX_ENTRY_CATEGORIES))
    front = FrontMatter(
        title=title,
        date=date,
        summary=summary_text(summary),
        categories=(source.name,),
        lang=lang,
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        thumbnail=thumbnail,
        comments=source.front.comments,
        authorbox=source.front.authorbox,
        pager=source.front.pager,
        toc=source.front.toc,
        mathjax=source.front.mathjax,
        sidebar=source.front.sidebar,
        widgets=source.front.widgets,
    )
    parts = [p for p in (body, source_link(source.name, link) if link else "") if p]
    return Post(
        source=source.name,
        entry_id=entry_id(identity.key),
        identity=identity.key,
        link_key=identity.link_key,
        alias=identity.alias,
        title=title,
        link=link,
        date=when,
        summary=summary,
        lang=lang,
        tags=front.tags,
        authors=tuple(a for a in map(fold, entry.authors) if a),
        text=render(front) + "\n\n".join(parts) + ("\n" if parts else ""),
        html=html,
    )
