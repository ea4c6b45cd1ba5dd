"""Pure conversion of one parsed entry into a Post: front matter plus a Markdown body."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aggregator import markdown
from aggregator.config import FeedConfig
from aggregator.frontmatter import FrontMatter, render
from aggregator.identity import canonical_link, entry_id, entry_identity, slug
from aggregator.models import EntryData, FeedData, Post
from aggregator.text import fold, html_to_text, truncate

EARLIEST_DATE = datetime(1970, 1, 2, tzinfo=ZoneInfo("UTC"))
FUTURE_SLACK = timedelta(days=2)
UNTITLED_LENGTH = 60
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")


def normalize_lang(tag: str | None) -> str | None:
    """A BCP 47 tag in its conventional case (`zh-cn` → `zh-CN`), or None if malformed."""
    if not tag or not _LANG_RE.match(tag.strip()):
        return None
    parts = re.split(r"[-_]", tag.strip())
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def entry_date(entry: EntryData, first_seen: datetime) -> datetime:
    """The entry's published (else updated) time when plausible, else when it was first seen."""
    for candidate in (entry.published, entry.updated):
        if candidate is not None and EARLIEST_DATE <= candidate <= first_seen + FUTURE_SLACK:
            return candidate
    return first_seen


def format_date(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def source_link(name: str, url: str) -> str:
    """The closing `[name](url)` line, with the name's brackets escaped."""
    label = re.sub(r"([\\\[\]])", r"\\\1", fold(name))
    target = f"<{url}>" if re.search(r"[\s()<>]", url) else url
    return f"[{label}]({target})"


def identify(entry: EntryData, feed: FeedData, source: FeedConfig) -> tuple[str, str | None]:
    """The entry's stable identity and its own absolute link (None when it has none)."""
    own_link = markdown.absolute_url(entry.link or "", feed.link, markdown.LINK_SCHEMES)
    published = entry.published.isoformat() if entry.published else None
    return entry_identity(source.name, entry.guid, own_link, fold(entry.title), published), own_link


def convert_entry(
    entry: EntryData, feed: FeedData, source: FeedConfig, tz: ZoneInfo, first_seen: datetime
) -> Post:
    """Build the Post for one entry; `first_seen` stands in for a missing or absurd date."""
    identity, own_link = identify(entry, feed, source)
    link = own_link or feed.link or (source.url if not source.is_local else "")
    base = entry.base_url or link or feed.link
    clean = markdown.sanitize(entry.content_html, base)

    thumbnail = ""
    for candidate in entry.images:
        absolute = markdown.absolute_url(candidate, base, markdown.IMAGE_SCHEMES)
        if absolute:
            thumbnail = absolute
            break
    if not thumbnail:
        thumbnail = markdown.first_image(clean) or ""
    if thumbnail and markdown.leading_image(clean) == thumbnail:
        clean = markdown.drop_leading_image(clean)

    body = markdown.to_markdown(clean)
    plain = html_to_text(clean)
    title = (
        fold(html_to_text(entry.title))
        if "<" in entry.title or "&" in entry.title
        else fold(entry.title)
    )
    if not title:
        title = truncate(plain, UNTITLED_LENGTH) or fold(link) or source.name

    when = entry_date(entry, first_seen)
    lang = (
        normalize_lang(source.lang)
        or normalize_lang(feed.language)
        or normalize_lang(source.front.lang)
        or "en"
    )
    tags = [source.name, *source.tags]
    if source.entry_categories:
        tags.extend(slug(c, "tag") for c in entry.categories if fold(c))
    tags = list(dict.fromkeys(tags))

    front = FrontMatter(
        title=title,
        date=format_date(when, tz),
        summary=truncate(plain, source.front.summary_length),
        categories=(source.name,),
        lang=lang,
        tags=tuple(tags),
        thumbnail=thumbnail,
        comments=source.front.comments,
        authorbox=source.front.authorbox,
        pager=source.front.pager,
        toc=source.front.toc,
        mathjax=source.front.mathjax,
        sidebar=source.front.sidebar,
        widgets=source.front.widgets,
    )
    closing = source_link(source.name, link) if link else ""
    parts = [p for p in (body, closing) if p]
    text = render(front) + "\n\n".join(parts) + "\n"
    return Post(
        source=source.name,
        entry_id=entry_id(identity),
        identity=identity,
        link_key=canonical_link(own_link),
        title=title,
        link=link,
        date=when,
        summary=front.summary,
        lang=lang,
        tags=front.tags,
        authors=tuple(fold(a) for a in entry.authors if fold(a)),
        text=text,
    )
