"""Stored entries for publishing tests, written without fetching: an entry file in FORMAT.md's
layout plus its row in the state db, as the store would leave them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aggregator.atomic import write_atomic
from aggregator.config import Config, load_config
from aggregator.frontmatter import quote
from aggregator.state import State, StoredEntry
from aggregator.store import text_hash

BASE_TIME = 1790000000.0  # 2026-09-21, safely in the past


def entry_text(
    title: str, date: str, tags: Sequence[str], body: str, link: str, lang: str = "en"
) -> str:
    lines = [
        "---",
        f"title: {quote(title)}",
        f"date: {quote(date)}",
        f"summary: {quote(body[:50])}",
        "categories:",
        f"  - {quote(tags[0])}",
        "lang:",
        f"  - {quote(lang)}",
        "translations:",
        f"  - {quote(lang)}",
        "tags:",
        *(f"  - {quote(t)}" for t in tags),
        'menu: ""',
        'thumbnail: ""',
        'lead: ""',
        "comments: false",
        "---",
        "",
        body,
        "",
        f"[{tags[0]}]({link})",
        "",
    ]
    return "\n".join(lines)


def add_entry(
    config: Config,
    state: State,
    key: str,
    *,
    source: str = "src",
    title: str | None = None,
    body: str = "Some **body** text.",
    tags: Sequence[str] = (),
    date: float = BASE_TIME,
    updated: float | None = None,
    first_seen: float | None = None,
    lang: str = "en",
    authors: Sequence[str] = (),
    link: str | None = None,
) -> StoredEntry:
    """Write the entry `key` (its id) of `source`; `tags` come after the source's name."""
    all_tags = (source, *tags)
    link = link if link is not None else f"https://example.org/{source}/{key}"
    title = title if title is not None else f"Entry {key}"
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(date))
    text = entry_text(title, local, all_tags, body, link, lang)
    path = f"{source}/{key}.md"
    target = config.site.feeds_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    entry = StoredEntry(
        id=key,
        source=source,
        path=path,
        link_key=link,
        title=title,
        link=link,
        date=date,
        updated=date if updated is None else updated,
        first_seen=date if first_seen is None else first_seen,
        summary=body[:50],
        lang=lang,
        authors=tuple(authors),
        tags=all_tags,
        hash=text_hash(text),
    )
    with state.transaction():
        state.save_entry(entry, f"test\0{source}\0{key}")
    return entry


def add_entries(
    config: Config,
    state: State,
    count: int,
    sources: int,
    tags: Sequence[str],
    spacing: float = 60,
    body: str = "Body {n}.",
    langs: Sequence[str] = ("en",),
) -> None:
    """`count` entries `spacing` seconds apart, the n-th from source `s<n % sources>` with the
    n-th of `tags` (cycling) and of `langs`; `body` is formatted with n."""
    for n in range(count):
        add_entry(
            config,
            state,
            f"e{n}",
            source=f"s{n % sources}",
            tags=(tags[n % len(tags)],),
            date=BASE_TIME + n * spacing,
            body=body.format(n=n),
            lang=langs[n % len(langs)],
        )


def project(tmp: Path, base_url: str = "http://127.0.0.1:8080/", extra: str = "") -> Config:
    """A config with no sources, publishing under `base_url`; `extra` is more TOML for [site]."""
    path = tmp / "config.toml"
    path.write_text(
        f'[site]\ntitle = "Test digest"\nbase_url = "{base_url}"\n{extra}', encoding="utf-8"
    )
    return load_config(path)


def edit_entry(
    config: Config, state: State, entry: StoredEntry, body: str, when: float
) -> StoredEntry:
    """Change an entry's body as a fetch of a changed article would: new file, new hash, `updated`
    set to `when`."""
    path = config.site.feeds_dir / entry.path
    text = path.read_text(encoding="utf-8")
    head, _, _ = text.partition("\n---\n")
    text = f"{head}\n---\n\n{body}\n\n[{entry.source}]({entry.link})\n"
    write_atomic(path, text.encode("utf-8"))  # as the store does: a kill leaves old or new
    changed = replace(entry, hash=text_hash(text), updated=when)
    with state.transaction():
        state.save_entry(changed, f"test\0{entry.source}\0{entry.id}")
    return changed
