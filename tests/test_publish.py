"""Publishing from the state db: valid feeds by the schema and the W3C validator's rules in every
format, stable ids, `updated` that moves only with the content, only the touched feeds rewritten,
stale feeds removed, discovery files, the HTML cache."""

from __future__ import annotations

import html
import json
import os
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator import defaults, feeditems
from aggregator.atom import atom_entry
from aggregator.config import Config
from aggregator.feeditems import (
    _ID_NAMESPACE,
    Item,
    SourceInfo,
    _clean_text,
    absolute_uri,
    clean_line,
    clean_text,
    encode_uri,
    escape_attr,
    escape_text,
    rfc3339,
    urn,
)
from aggregator.opml import parse_opml
from aggregator.pool import worker_pool
from aggregator.publish import feed_path, publish, tag_slug
from aggregator.state import State, StoredEntry
from aggregator.text import drop_controls, fold
from tests.feedcheck import ATOM, XML_LANG, check_atom, check_json_feed, check_rss
from tests.feedgen_entry import feedgen_entry
from tests.helpers import snapshot, validate_atom
from tests.seed import BASE_TIME, add_entries, add_entry, edit_entry, project

BASE = "http://127.0.0.1:8080/"
CHECKS = {".xml": check_atom, ".rss": check_rss, ".json": check_json_feed}


def check_output(config: Config) -> None:
    """Every published feed validates and breaks none of the validator's rules."""
    output = config.site.output_dir
    for path in sorted(output.rglob("*")):
        check = CHECKS.get(path.suffix)
        if check:
            url = config.site.base_url + path.relative_to(output).as_posix()
            assert check(path.read_bytes(), url) == [], path
    validate_atom(sorted(output.rglob("*.xml")))


def entries_of(path: Path) -> dict[str, tuple[str, str]]:
    """Entry id ⇒ (updated, title) of an Atom feed, in document order."""
    root = ET.parse(path).getroot()
    return {
        e.findtext(f"{ATOM}id") or "": (
            e.findtext(f"{ATOM}updated") or "",
            e.findtext(f"{ATOM}title") or "",
        )
        for e in root.findall(f"{ATOM}entry")
    }


def changed_files(before: dict[Path, tuple[bytes, int]], root: Path) -> set[str]:
    after = snapshot(root)
    return {p.relative_to(root).as_posix() for p in after.keys() | before.keys()} - {
        p.relative_to(root).as_posix() for p in after if after[p] == before.get(p)
    }


def test_hostile_entries_publish_clean_feeds_in_every_format(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "rss", "json"]\n')
    now = BASE_TIME + 86400
    with State(config.state_path) as state:
        add_entry(
            config,
            state,
            "a1",
            title="<b>Bold</b> claims & AT&T &amp; more \x01\x85\ufffd",
            body="Text\x02 with [a relative link](/rel) and ![an image](img.png) \ufdd0\n\n"
            "| a | b |\n|---|--:|\n| 1 | 2 |\n\n<script>alert(1)</script>",
            tags=("Tech News", "C++", "c"),
            authors=("Ann \x07Author",),
        )
        add_entry(config, state, "a2", lang="english", tags=("c",), title="&copy 2026 Q&A")
        add_entry(config, state, "a3", date=BASE_TIME + 999999, first_seen=BASE_TIME)
        add_entry(config, state, "a4", date=315532800.0, first_seen=BASE_TIME)  # 1980
        add_entry(config, state, "a5", source="zh", lang="zh-CN", title="中文标题")
        add_entry(config, state, "a6", link="https://例え.jp/パス?q=ü v", body="")
        add_entry(config, state, "a7", source="zh", lang="zh-CN", updated=now)
        result = publish(config, state, now)
    assert result.problems == []
    check_output(config)
    all_feed = config.site.output_dir / "all.xml"
    parsed = feedparser.parse(all_feed.read_bytes())
    titles = {
        e.id: html.unescape(e.title) if e.title_detail.type == "text/html" else e.title
        for e in parsed.entries
    }
    assert len(titles) == 7
    assert "<b>Bold</b> claims & AT&T &amp; more" in titles.values()
    assert "&copy 2026 Q&A" in titles.values()
    assert "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%C3%BC%20v" in all_feed.read_text()
    assert "<script" not in all_feed.read_text().replace("&lt;script&gt;", "")
    tags = {p.name for p in (config.site.output_dir / "tags").glob("*.xml")}
    assert {"src.xml", "zh.xml", "c.xml", f"{tag_slug('C++')}.xml"} <= tags
    assert tag_slug("C++") != "c" and tag_slug("Tech News").startswith("tech-news-")
    for tag in ("C++", "科技"):  # a tag spelled as another's hashed stem gets a file of its own
        assert tag_slug(tag_slug(tag)) != tag_slug(tag)


def test_feed_metadata_and_newest_entries_first(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, "entries_per_feed = 3\n")
    with State(config.state_path) as state:
        for n in range(5):
            add_entry(config, state, f"e{n}", date=BASE_TIME + n * 60, tags=("news",))
        publish(config, state)
    root = ET.parse(config.site.output_dir / "tags" / "news.xml").getroot()
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Entry e4", "Entry e3", "Entry e2"]
    assert root.findtext(f"{ATOM}updated") == entries[0].findtext(f"{ATOM}updated")
    assert root.findtext(f"{ATOM}updated", "").startswith("2026-09-21T")
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {"self": BASE + "tags/news.xml", "alternate": BASE}
    assert root.findtext(f"{ATOM}title") == "Test digest — news"
    check_output(config)


def test_each_entry_is_built_once_however_many_feeds_carry_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry is kept built until the last feed that carries it, even past many feeds that do
    not (here the newest two: in all.xml first, in `zz` last)."""
    config = project(tmp_path, BASE, "entries_per_feed = 2\n")
    with State(config.state_path) as state:
        for n in range(16):
            add_entry(config, state, f"e{n}", source=f"s{n % 8}", date=BASE_TIME - n, tags=("zz",))
        built: list[str] = []

        def make_item(entry: StoredEntry, *rest: Any) -> Item:
            built.append(entry.id)
            return feeditems.make_item(entry, *rest)

        monkeypatch.setattr("aggregator.publish.make_item", make_item)
        monkeypatch.setattr(defaults, "PUBLISH_ITEMS_KEPT", 4)
        publish(config, state)
    assert sorted(built) == sorted(f"e{n}" for n in range(16))
    assert [e[1] for e in entries_of(config.site.output_dir / "tags" / "zz.xml").values()] == [
        "Entry e0",
        "Entry e1",
    ]


def test_second_publish_touches_nothing(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "rss", "json"]\n')
    with State(config.state_path) as state:
        for n in range(6):
            add_entry(config, state, f"e{n}", source=f"s{n % 2}", tags=(f"t{n % 3}",))
        publish(config, state)
        before = snapshot(config.site.output_dir)
        time.sleep(0.02)
        result = publish(config, state)
    assert result.written == [] and result.removed == []
    assert snapshot(config.site.output_dir) == before


def test_changed_entry_rewrites_only_its_feeds_and_keeps_its_id(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    output = config.site.output_dir
    with State(config.state_path) as state:
        entries = [
            add_entry(config, state, f"e{n}", source=f"s{n}", date=BASE_TIME + n, tags=("t",))
            for n in range(3)
        ]
        add_entry(config, state, "other", source="lone", date=BASE_TIME)
        publish(config, state)
        old = entries_of(output / "all.xml")
        before = snapshot(output)
        edit_entry(config, state, entries[1], "A corrected body.", BASE_TIME + 3600)
        publish(config, state)
    assert changed_files(before, output) == {"all.xml", "tags/s1.xml", "tags/t.xml"}
    new = entries_of(output / "all.xml")
    assert new.keys() == old.keys()
    moved = {key for key in new if new[key] != old[key]}
    assert len(moved) == 1 and new[moved.pop()][0].startswith("2026-09-21T15:13:20.")
    assert "A corrected body." in (output / "tags" / "s1.xml").read_text()


def test_new_source_rewrites_only_the_feeds_it_touches(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    output = config.site.output_dir
    with State(config.state_path) as state:
        add_entry(config, state, "a", source="alpha", tags=("science",))
        add_entry(config, state, "b", source="beta", tags=("tech",))
        publish(config, state)
        before = snapshot(output)
        add_entry(config, state, "g", source="gamma", tags=("science",), date=BASE_TIME + 60)
        publish(config, state)
    assert changed_files(before, output) == {
        "all.xml",
        "tags/gamma.xml",
        "tags/science.xml",
        "index.html",
        "feeds.opml",
    }


def test_html_is_rendered_once_and_reused(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        entry = add_entry(config, state, "e", body="First words.")
        publish(config, state)
        path = config.site.feeds_dir / entry.path
        path.write_text(path.read_text().replace("First words.", "Sneaky words."))
        for feed in config.site.output_dir.rglob("*.xml"):
            feed.unlink()
        publish(config, state)
        assert "First words." in (config.site.output_dir / "all.xml").read_text()
        edit_entry(config, state, entry, "Second words.", BASE_TIME + 60)
        publish(config, state)
    assert "Second words." in (config.site.output_dir / "all.xml").read_text()


def test_cached_html_with_characters_xml_forbids_still_publishes_well_formed(
    tmp_path: Path,
) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "rss", "json"]\n')
    with State(config.state_path) as state:
        entry = add_entry(config, state, "e")
        with state.transaction():
            state.save_html([(entry.id, entry.hash, "<p>bell\x07 and \ufffe nonchar</p>")])
        assert publish(config, state).problems == []
    check_output(config)
    assert "<p>bell and  nonchar</p>" in html.unescape(
        (config.site.output_dir / "all.xml").read_text()
    )


def test_feeds_of_vanished_tags_and_formats_are_removed(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "json"]\n')
    output = config.site.output_dir
    with State(config.state_path) as state:
        add_entry(config, state, "keep", source="keep")
        add_entry(config, state, "gone", source="gone")
        publish(config, state)
        assert (output / "tags" / "gone.json").exists()
        with state.transaction():
            state.delete_entry("gone", BASE_TIME)
        result = publish(config, state)
        assert not (output / "tags" / "gone.xml").exists()
        assert not (output / "tags" / "gone.json").exists()
        assert len(result.removed) == 2
        assert "gone" not in (output / "index.html").read_text()
        atom_only = project(tmp_path, BASE)
        publish(atom_only, state)
    assert sorted(p.name for p in output.rglob("*.json")) == []
    assert (output / "tags" / "keep.xml").exists()


def test_feeds_a_lost_database_forgot_are_removed_once_their_tag_is_gone(tmp_path: Path) -> None:
    """The database records what was published; with it lost, the first publish also looks at
    the feed files themselves, so a tag whose entries went with it leaves no feed behind."""
    config = project(tmp_path, BASE, 'formats = ["atom", "rss"]\n')
    output = config.site.output_dir
    with State(config.state_path) as state:
        add_entry(config, state, "keep", source="keep")
        add_entry(config, state, "solo", source="keep", tags=("solo",))
        publish(config, state)
    assert (output / "tags" / "solo.rss").exists()
    for lost in tmp_path.glob("*.sqlite*"):
        lost.unlink()
    with State(config.state_path) as state:
        add_entry(config, state, "keep", source="keep")
        result = publish(config, state)
    assert sorted(p.name for p in (output / "tags").iterdir()) == ["keep.rss", "keep.xml"]
    assert {p.name for p in result.removed} == {"solo.xml", "solo.rss"}


def test_discovery_lists_every_feed(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "rss"]\n')
    with State(config.state_path) as state:
        add_entry(config, state, "a", source="alpha", tags=("x y",))
        publish(config, state)
    output = config.site.output_dir
    feeds = {BASE + p.relative_to(output).as_posix() for p in output.rglob("*.xml")}
    outlines = parse_opml((output / "feeds.opml").read_bytes())
    assert {o.xml_url for o in outlines} == feeds
    titles = {o.title for o in outlines}
    assert titles == {"Test digest", "Test digest — alpha", "Test digest — x y"}
    page = (output / "index.html").read_text()
    for tag in (None, "alpha", "x y"):
        assert f'href="{feed_path(tag)}"' in page and f'href="{feed_path(tag, "rss")}"' in page
    assert '<link rel="alternate" type="application/atom+xml"' in page


def test_empty_state_still_publishes_a_valid_feed(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "json"]\n')
    with State(config.state_path) as state:
        publish(config, state, BASE_TIME)
    check_output(config)
    assert json.loads((config.site.output_dir / "all.json").read_bytes())["items"] == []


def test_any_writer_of_the_entry_index_is_noticed(tmp_path: Path) -> None:
    """Feeds are rechecked from the tags the state db's triggers mark, whoever wrote."""
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        add_entry(config, state, "a", source="alpha", tags=("x",))
        add_entry(config, state, "b", source="beta")
        publish(config, state)
        before = snapshot(config.site.output_dir)
        with state.transaction():
            state.db.execute("UPDATE entries SET title = 'Retitled' WHERE id = 'a'")
        publish(config, state)
        assert changed_files(before, config.site.output_dir) == {
            "all.xml",
            "tags/alpha.xml",
            "tags/x.xml",
        }
        assert state.dirty_tags() == set()


def test_site_settings_change_rechecks_every_feed(tmp_path: Path) -> None:
    config = project(tmp_path, BASE)
    with State(config.state_path) as state:
        add_entry(config, state, "a", source="alpha")
        add_entry(config, state, "b", source="beta")
        publish(config, state)
        renamed = project(tmp_path, BASE.replace("8080", "9090"))
        result = publish(renamed, state)
    assert len(result.written) == 4  # all, alpha, beta and feeds.opml (index.html is relative)
    check_output(renamed)


def _forbidden(char: str) -> bool:
    code = ord(char)
    return (
        code in (0xB, 0xC)
        or code <= 0x8
        or 0xE <= code <= 0x1F
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or 0xFFFD <= code <= 0xFFFF
        or (code > 0xFFFF and code & 0xFFFE == 0xFFFE)
    )


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_clean_text_drops_exactly_what_xml_forbids_or_validators_flag(text: str) -> None:
    assert clean_text(text) == "".join(c for c in text if not _forbidden(c))
    assert clean_text("a\U0001fffeb\ufffe\U0010ffffc\x85") == "abc"


_SHORTCUT_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from([*" \n\r\t\x85\xa0\u3000\u2028\ufffd\ufdd0\U0001fffe&<>\"'", "中"]),
    ),
    max_size=40,
)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(_SHORTCUT_TEXT)
def test_the_text_shortcuts_change_nothing(text: str) -> None:
    assert clean_text(text) == _clean_text(text)
    assert clean_line(text) == _clean_text(fold(text))
    assert escape_text(text) == html.escape(text, quote=False)
    assert escape_attr(text) == html.escape(text, quote=True)


def test_printable_characters_are_all_kept_by_clean_text_and_fold() -> None:
    """What the shortcuts of clean_text() and clean_line() rest on, for every code point."""
    printable = "".join(c for c in map(chr, range(0x110000)) if c.isprintable() and c != "\ufffd")
    assert _clean_text(printable) == printable
    assert drop_controls(printable) == printable
    assert [c for c in printable if c.isspace()] == [" "]


_URI = st.tuples(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "http://user@"]),
    st.sampled_from(["x.example", "X.example", "x.example:80", "", "[::1]", "bücher.example"]),
    st.sampled_from(["", "/"]),
    st.one_of(
        st.lists(st.sampled_from([*"aZ9/;:@&=+$,!*'()~_.-", "?q", "#f", ".."])),
        st.lists(st.sampled_from([*"a/;:@&=+$,!*'()~_.-%?# [|", "%2F", "%zz", "ü", ".."])),
    ).map("".join),
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(url=_URI)
def test_the_plain_uri_shortcut_changes_nothing(url: str) -> None:
    assert absolute_uri(url) == encode_uri(url.strip())


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(["entry", "feed", "source"]), key=st.text())
def test_urns_are_uuid5_of_the_kind_and_key(kind: str, key: str) -> None:
    try:
        expected = f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{kind}:{key}')}"
    except UnicodeEncodeError:  # a lone surrogate: neither can say it
        with pytest.raises(UnicodeEncodeError):
            urn(kind, key)
        return
    assert urn(kind, key) == expected


_PIECES = [*"ab <>&;'\"\n\t\r#/=\x01", "&amp;", "<b>", "</b>", "&copy", "中文"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join).map(clean_text)
_SOME_TEXT = _TEXT.filter(bool)
_MAYBE_URL = st.sampled_from(
    [None, "", "https://x.example/a?b=1&c=2", 'https://x.example/"q"', "https://x.example/<\t\n\r>"]
)
_STAMP = st.floats(min_value=0, max_value=4e9)


@st.composite
def _items(draw: st.DrawFn) -> Item:
    updated = draw(_STAMP)
    return Item(
        atom_id=draw(st.sampled_from(["urn:uuid:1", "urn:uuid:2"])),
        title=draw(_SOME_TEXT),
        link=draw(_MAYBE_URL) or None,
        published=draw(st.none() | _STAMP),
        updated=updated,
        updated_text=rfc3339(updated, draw(st.integers(0, 999_999_999))),
        authors=tuple(draw(st.lists(_SOME_TEXT, max_size=3))),
        tags=tuple(draw(st.lists(_SOME_TEXT, max_size=3))),
        summary=draw(_TEXT),
        html=draw(_SOME_TEXT),
        lang=draw(st.sampled_from([None, "en", "fr"])),
        source=SourceInfo(draw(_SOME_TEXT), draw(_SOME_TEXT), draw(_MAYBE_URL), draw(_MAYBE_URL)),
    )


@settings(max_examples=1000, deadline=None)
@given(item=_items(), feed_lang=st.sampled_from([None, "en"]))
def test_entries_are_written_as_lxml_writes_feedgens(item: Item, feed_lang: str | None) -> None:
    """Byte for byte what lxml writes for feedgen's entry (completed) at a feed's entry depth."""
    reference = feedgen_entry(item)
    if item.lang and item.lang != feed_lang:
        reference.set(XML_LANG, item.lang)
    feed = etree.Element("feed")
    feed.append(reference)
    written = etree.tostring(feed, encoding="utf-8", pretty_print=True)
    assert b"<feed>\n" + atom_entry(item, feed_lang).encode("utf-8") + b"</feed>\n" == written


def _many_tags(root: Path) -> Config:
    root.mkdir()
    config = project(root, BASE, 'formats = ["atom", "rss", "json"]\n')
    with State(config.state_path) as state:
        tags = [f"t{n}" for n in range(11)]
        add_entries(config, state, 60, 7, tags, langs=("en", "fr", "qq-bogus"))
    return config


def _state_rows(config: Config) -> dict[str, list[tuple[object, ...]]]:
    with State(config.state_path) as state:
        return {
            "outputs": sorted(state.db.execute("SELECT path, digest FROM outputs").fetchall()),
            "html": sorted(state.db.execute("SELECT * FROM entry_html").fetchall()),
            "meta": sorted(state.db.execute("SELECT * FROM meta").fetchall()),
        }


@pytest.mark.parametrize("lost", [False, True], ids=["workers", "a worker died"])
def test_a_publish_shared_with_worker_processes_writes_the_same(tmp_path: Path, lost: bool) -> None:
    """Also when a worker died before the publish (killed, or out of memory): the main process
    builds its share."""
    alone, shared = _many_tags(tmp_path / "alone"), _many_tags(tmp_path / "shared")
    with State(alone.state_path) as state:
        by_itself = publish(alone, state, BASE_TIME)
    pool = worker_pool(defaults.PARALLEL_MIN_PUBLISH)
    assert pool is not None
    try:
        if lost:
            with pytest.raises(BrokenProcessPool):
                pool.executor.submit(os._exit, 1).result()
        with State(shared.state_path) as state:
            with_workers = publish(shared, state, BASE_TIME, pool)
    finally:
        pool.shutdown()
    assert (with_workers.by_workers > 0) is not lost and by_itself.by_workers == 0
    assert len(with_workers.written) == len(by_itself.written) == 3 * (1 + 7 + 11) + 2
    files = [
        {
            p.relative_to(c.site.output_dir): data
            for p, (data, _) in snapshot(c.site.output_dir).items()
        }
        for c in (alone, shared)
    ]
    assert files[0] == files[1]
    assert _state_rows(alone) == _state_rows(shared)
    check_output(shared)
