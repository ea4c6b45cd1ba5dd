"""Per-feed filters and entry categories: `include` / `exclude` regular expressions over title,
content, link, author and categories; `entry_categories` adds an entry's own categories as
slugged tags."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import FeedConfig, FrontMatterDefaults, load_config
from aggregator.convert import convert_entry
from aggregator.defaults import MAX_ENTRY_CATEGORIES
from aggregator.filters import newest, wanted
from aggregator.models import EntryData, FeedData
from aggregator.pipeline import run_cycle
from tests.entrycheck import check_entry_file

SOURCE = FeedConfig(
    name="f", url="https://f.example/", lang=None, tags=(), front=FrontMatterDefaults()
)
ENTRY = EntryData(
    guid="1",
    link="https://f.example/posts/rust-release",
    title="Rust 1.90 <b>released</b>",
    title_html=True,
    content_html="<p>The compiler got faster.</p><script>sponsored()</script>",
    published=None,
    updated=None,
    authors=("Ferris Crab",),
    categories=("Programming", "News"),
)


@pytest.mark.parametrize(
    ("include", "exclude", "kept"),
    [
        ((), (), True),
        (("rust",), (), True),
        (("^Rust 1\\.90 released$",), (), True),
        (("FASTER",), (), True),
        (("/posts/rust-",), (), True),
        (("ferris",), (), True),
        (("^news$",), (), True),
        (("python",), (), False),
        (("python", "compiler"), (), True),
        ((), ("programming",), False),
        ((), ("sponsored",), True),
        ((), ("<b>",), True),
        (("rust",), ("crab",), False),
        ((), ("golang",), True),
    ],
)
def test_include_and_exclude_search_every_field(
    include: tuple[str, ...], exclude: tuple[str, ...], kept: bool
) -> None:
    assert wanted(ENTRY, replace(SOURCE, include=include, exclude=exclude)) is kept


def test_a_filter_reads_absurdly_deep_content_quickly() -> None:
    """Its plain text is found without parsing (quadratic in the depth: 262 s for this)."""
    deep = replace(ENTRY, content_html="<div>" * 100_000 + "Visit the casino")
    started = time.monotonic()
    assert not wanted(deep, replace(SOURCE, exclude=("casino",)))
    assert time.monotonic() - started < 5


def test_filters_and_entry_categories_through_the_pipeline(tmp_path: Path) -> None:
    items = [
        ("Rust news", "Rust", "<p>a</p>"),
        ("Go news", "Golang", "<p>b</p>"),
        ("Rust ad", "Rust", "<p>Sponsored content</p>"),
        ("Weekly", "科技 新闻", "<p>c</p>"),
    ]
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        "<link>https://f.example/</link>"
        + "".join(
            f"<item><title>{t}</title><link>https://f.example/{n}</link><guid>{n}</guid>"
            f"<category>{c}</category><category>Machine Learning</category>"
            f"<description><![CDATA[{b}]]></description></item>"
            for n, (t, c, b) in enumerate(items)
        )
        + "</channel></rss>"
    )
    (tmp_path / "f.xml").write_text(feed, encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        '[[feeds]]\nname = "f"\nurl = "f.xml"\ntags = ["t"]\nentry_categories = true\n'
        'include = ["rust", "weekly"]\nexclude = ["(?-i:Sponsored)"]\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "config.toml")
    assert not run_cycle(config, config.feeds).failed
    metas = [check_entry_file(p) for p in sorted((tmp_path / "feeds").rglob("*.md"))]
    by_title = {str(m["title"]): m["tags"] for m in metas}
    assert by_title == {
        "Rust news": ["f", "t", "rust", "machine-learning"],
        "Weekly": ["f", "t", "科技-新闻", "machine-learning"],
    }
    published = {p.name for p in (tmp_path / "output" / "tags").glob("*.xml")}
    assert {"rust.xml", "machine-learning.xml"} <= published


def test_an_entry_adds_a_bounded_number_of_its_own_categories() -> None:
    """Each tag is a published feed: a feed whose entries carry hundreds of categories must not
    make hundreds of feeds out of each. Repeats, empty slugs and tags the entry has already do
    not count."""
    categories = ("News", "news", "", "Programming", *(f"topic {n}" for n in range(300)))
    entry = replace(ENTRY, categories=categories)
    source = replace(SOURCE, tags=("programming",), entry_categories=True)
    feed = FeedData(title="F", link="https://f.example/", language=None, entries=(entry,))
    post = convert_entry(entry, feed, source, ZoneInfo("UTC"), datetime(2026, 11, 28, tzinfo=UTC))
    own = [f"topic-{n}" for n in range(MAX_ENTRY_CATEGORIES - 1)]
    assert post.tags == ("f", "programming", "news", *own)
    last = MAX_ENTRY_CATEGORIES - 2
    assert f'  - "topic-{last}"\n' in post.text and f'  - "topic-{last + 1}"' not in post.text


def test_newest_keeps_the_latest_dated_then_undated_entries_in_document_order() -> None:
    def at(hour: int | None) -> EntryData:
        when = datetime(2026, 1, 1, hour, tzinfo=UTC) if hour is not None else None
        return replace(ENTRY, published=when, updated=None)

    listed = [at(3), at(None), at(9), at(1), at(None), at(7)]
    assert newest(listed, 6) == newest(listed, 100) == list(range(6))
    assert newest(listed, 3) == [0, 2, 5]
    assert newest(listed, 5) == [0, 1, 2, 3, 5]  # undated ones rank after every dated one
    updated_only = replace(ENTRY, published=None, updated=datetime(2026, 1, 1, 8, tzinfo=UTC))
    assert newest([*listed, updated_only], 2) == [2, 6]
