"""Stable identity through the real pipeline (local feed files, a real SQLite state, real
folders): one file per article across guid changes and cross-posting, first-seen dates kept,
unchanged files untouched, titles unique for Hugo, paths that feed data cannot steer."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import load_config
from aggregator.frontmatter import read
from aggregator.identity import (
    _canonical,
    _key,
    canonical_link,
    entry_id,
    entry_identity,
    link_key,
    slug,
    tag_slug,
)
from aggregator.pipeline import run_cycle
from aggregator.state import State
from aggregator.store import entry_path
from tests.entrycheck import check_entry_file
from tests.helpers import http_server, run_cli, serve_bytes, snapshot

HEADER = '[site]\ntimezone = "UTC"\n'


def rss(*items: str, link: str = "https://blog.example/") -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{link}</link>{''.join(items)}</channel></rss>"
    )


def item(
    title: str,
    link: str | None = None,
    guid: str | None = None,
    date: str | None = "Mon, 02 Nov 2026 10:00:00 GMT",
    body: str = "Body text.",
    extra: str = "",
) -> str:
    parts = [f"<title>{title}</title>"]
    if link:
        parts.append(f"<link>{link}</link>")
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>&lt;p&gt;{body}&lt;/p&gt;</description>{extra}")
    return f"<item>{''.join(parts)}</item>"


class Project:
    """A folder with a config and feed files; `fetch()` runs one real cycle."""

    def __init__(self, root: Path, feeds: dict[str, str], settings: str = "") -> None:
        self.root = root
        self.config_path = root / "config.toml"
        tables = "".join(
            f'\n[[feeds]]\nname = "{name}"\nurl = "{name}.xml"\n{setting}'
            for name, setting in self._settings(feeds, settings)
        )
        self.config_path.write_text(HEADER + tables, encoding="utf-8")
        for name, text in feeds.items():
            self.write(name, text)

    @staticmethod
    def _settings(feeds: dict[str, str], settings: str) -> list[tuple[str, str]]:
        lines = dict(line.split(":", 1) for line in settings.splitlines() if line)
        return [(name, lines.get(name, "").replace("; ", "\n") + "\n") for name in feeds]

    def write(self, name: str, text: str) -> None:
        (self.root / f"{name}.xml").write_text(text, encoding="utf-8")

    def fetch(self) -> None:
        config = load_config(self.config_path)
        report = run_cycle(config, config.feeds)
        assert not report.failed, report.failed

    def files(self) -> list[Path]:
        return sorted((self.root / "feeds").rglob("*.md"))

    def meta(self) -> list[dict[str, object]]:
        return [check_entry_file(path) for path in self.files()]


def test_guid_change_with_the_same_link_updates_the_same_file(tmp_path: Path) -> None:
    project = Project(tmp_path, {"blog": rss(item("First", "https://blog.example/a", "g1"))})
    project.fetch()
    [path] = project.files()
    project.write("blog", rss(item("First, edited", "https://blog.example/a?utm_source=x", "g2")))
    project.fetch()
    assert project.files() == [path]
    assert read(path.read_text(encoding="utf-8"))[0]["title"] == "First, edited"


def test_cross_posted_article_is_stored_once_with_both_sources_tags(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        {
            "alpha": rss(item("Shared story", "https://news.example/story?utm_source=a", "a1")),
            "beta": rss(
                item(
                    "Shared story", "http://www.news.example/story/?fbclid=x&utm_medium=rss", "b7"
                ),
                link="https://beta.example/",
            ),
        },
        'alpha:tags = ["one"]\nbeta:tags = ["two"]',
    )
    project.fetch()
    [path] = project.files()
    assert path.parent.name == "alpha"
    assert project.meta()[0]["tags"] == ["alpha", "one", "beta", "two"]
    with State(tmp_path / "aggregator-state.sqlite") as state:
        assert set(state.tags()) == {"alpha", "one", "beta", "two"}
        assert [e.path for e in state.newest("two", 10)] == [
            path.relative_to(tmp_path / "feeds").as_posix()
        ]
    assert (tmp_path / "output" / "tags" / "two.xml").read_text(encoding="utf-8").count(
        "Shared story"
    ) == 1

    before = snapshot(tmp_path / "feeds")
    project.write(
        "alpha", rss(item("Shared story", "https://news.example/story", "a1", body="New."))
    )
    project.fetch()
    meta, body = read(path.read_text(encoding="utf-8"))
    assert meta["tags"] == ["alpha", "one", "beta", "two"] and "New." in body
    assert snapshot(tmp_path / "feeds").keys() == before.keys()


def test_unchanged_entries_are_never_touched(tmp_path: Path) -> None:
    items = [item(f"Post {n}", f"https://blog.example/{n}", f"g{n}") for n in range(3)]
    project = Project(tmp_path, {"blog": rss(*items)})
    project.fetch()
    before = snapshot(tmp_path / "feeds")
    time.sleep(0.05)
    project.write("blog", rss(*reversed(items), link="https://blog.example/home"))
    project.fetch()
    assert snapshot(tmp_path / "feeds") == before


def test_an_entry_without_a_date_keeps_its_first_seen_time(tmp_path: Path) -> None:
    project = Project(
        tmp_path, {"blog": rss(item("Undated", "https://blog.example/u", "u1", date=None))}
    )
    project.fetch()
    [path] = project.files()
    first = read(path.read_text(encoding="utf-8"))[0]["date"]
    time.sleep(1.1)
    project.write(
        "blog",
        rss(
            item("Undated", "https://blog.example/u", "u2", date=None, body="Changed body."),
            item("Another", "https://blog.example/v", "v1", date=None),
        ),
    )
    project.fetch()
    assert path in project.files() and len(project.files()) == 2
    meta, body = read(path.read_text(encoding="utf-8"))
    assert "Changed body." in body and meta["date"] == first


def test_entries_sharing_a_link_in_one_feed_stay_apart(tmp_path: Path) -> None:
    home = "https://blog.example/"
    project = Project(
        tmp_path,
        {
            "blog": rss(
                item("One", home, "g1"),
                item("Two", home, "g2"),
                item("Three", "https://blog.example/same", "g3"),
                item("Four", "https://blog.example/same", "g4"),
                item("Five", "https://blog.example/nolink-a"),
                item("Six", "https://blog.example/nolink-a"),
            )
        },
    )
    project.fetch()
    assert sorted(str(m["title"]) for m in project.meta()) == [
        "Five",
        "Four",
        "One",
        "Six",
        "Three",
        "Two",
    ]


def test_entries_without_a_guid_are_told_apart_by_their_links(tmp_path: Path) -> None:
    """No guid: the link is the identity (not the title and date, which several episodes, or
    a daily digest, share), so neither is lost and a later one never overwrites an earlier."""
    episodes = [item("Podcast", f"https://blog.example/ep{n}", date=None) for n in (1, 2)]
    project = Project(tmp_path, {"blog": rss(*episodes, item("Digest", "https://blog.example/d1"))})
    project.fetch()
    assert len(project.files()) == 3
    monday = {path: path.read_bytes() for path in project.files()}
    tuesday = item("Digest", "https://blog.example/d2", body="Tuesday")
    project.write("blog", rss(*episodes, tuesday, item("Digest", "https://blog.example/d1")))
    project.fetch()
    assert len(project.files()) == 4
    assert {path: path.read_bytes() for path in monday} == monday


@pytest.mark.parametrize("dated", [True, False])
def test_an_article_keeps_its_file_while_another_shares_its_link(
    tmp_path: Path, dated: bool
) -> None:
    """No guid, and a second item comes to link to the same page (a live blog): the first keeps
    its file untouched, and so does each once the other drops off, dated by the feed or by when
    first seen. The link alone no longer tells them apart, their title and date do."""
    live = "https://blog.example/live"

    def update(title: str) -> str:
        return item(title, live, date="Mon, 02 Nov 2026 10:00:00 GMT" if dated else None)

    other = item("Other", "https://blog.example/other", date=None)
    project = Project(tmp_path, {"blog": rss(update("Update one"), other)})
    project.fetch()
    stored = snapshot(tmp_path / "feeds")
    time.sleep(1.1)  # an undated entry first seen now would get another date
    for items in (
        [update("Update two"), update("Update one"), other],
        [update("Update two"), other],
        [update("Update one"), update("Update two"), other],
    ):
        project.write("blog", rss(*items))
        project.fetch()
        files = snapshot(tmp_path / "feeds")
        assert {path: files[path] for path in stored} == stored
        assert sorted(str(m["title"]) for m in project.meta()) == [
            "Other",
            "Update one",
            "Update two",
        ]
        stored = files


def test_an_article_deleted_by_hand_stays_deleted_once_another_shares_its_link(
    tmp_path: Path,
) -> None:
    live = "https://blog.example/live"
    project = Project(tmp_path, {"blog": rss(item("Update one", live))})
    project.fetch()
    [path] = project.files()
    path.unlink()
    assert run_cli("publish", "-c", str(project.config_path)).returncode == 0
    project.write("blog", rss(item("Update two", live), item("Update one", live)))
    project.fetch()
    assert [m["title"] for m in project.meta()] == ["Update two"]


def test_a_guid_shared_by_two_articles_of_a_feed_identifies_neither(tmp_path: Path) -> None:
    """Two articles under one guid (a broken generator): both are kept, told apart by their
    links, and putting them in another order changes nothing."""
    first = item("Post one", "https://blog.example/p1", "dup", body="One")
    second = item("Post two", "https://blog.example/p2", "dup", body="Two")
    project = Project(tmp_path, {"blog": rss(first, second)})
    project.fetch()
    stored = {path: path.read_bytes() for path in project.files()}
    assert sorted(str(m["title"]) for m in project.meta()) == ["Post one", "Post two"]
    project.write("blog", rss(second, first))
    project.fetch()
    assert {path: path.read_bytes() for path in project.files()} == stored


def test_identical_titles_are_told_apart_for_hugo(tmp_path: Path) -> None:
    same = [item("Weekly links", f"https://blog.example/{n}", f"g{n}") for n in range(3)]
    project = Project(
        tmp_path,
        {"blog": rss(*same), "other": rss(item("Weekly links", "https://other.example/1", "o1"))},
    )
    project.fetch()
    assert sorted(str(m["title"]) for m in project.meta()) == [
        "Weekly links",
        "Weekly links (2026-11-02)",
        "Weekly links (blog)",
        "Weekly links (other)",
    ]
    before = snapshot(tmp_path / "feeds")
    project.write("blog", rss(*same, item("New", "https://blog.example/new", "gn")))
    project.fetch()
    after = snapshot(tmp_path / "feeds")
    assert {p: after[p] for p in before} == before


def test_a_twin_retitled_by_its_source_leaves_the_other_twin_alone(tmp_path: Path) -> None:
    """Two entries titled alike, the second stored with its day: when the source retitles the
    first, the second, unchanged at its source, keeps its title, file and mtime."""
    second = item("Daily", "https://blog.example/2", "g2")
    project = Project(
        tmp_path, {"blog": rss(item("Daily", "https://blog.example/1", "g1"), second)}
    )
    project.fetch()
    (path,) = [p for p in project.files() if "Daily (2026-11-02)" in p.read_text("utf-8")]
    before = path.read_bytes(), path.stat().st_mtime_ns
    project.write("blog", rss(item("Daily: Monday", "https://blog.example/1", "g1"), second))
    project.fetch()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(str(m["title"]) for m in project.meta()) == [
        "Daily (2026-11-02)",
        "Daily: Monday",
    ]


def test_feed_data_cannot_steer_paths(tmp_path: Path) -> None:
    evil = [
        item("a", "https://x.example/../../etc/passwd", "../../../../etc/passwd"),
        item("b", None, "/absolute/path\\..\\x"),
        item("c", None, None),
    ]
    project = Project(tmp_path, {"blog": rss(*evil)})
    project.fetch()
    files = project.files()
    assert len(files) == 3
    for path in files:
        assert path.parent == tmp_path / "feeds" / "blog"
        assert re.fullmatch(r"[a-z0-9-]+", path.stem)
    assert entry_path("../../x y", entry_id("guid\x00../\x00..")).startswith("x-y/")
    for name in ("..", "../..", "/etc", "a\\b", "C:", "新闻", "", "-"):
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug(name)), name


def test_identity_prefers_guid_then_link_then_title_and_date() -> None:
    with_guid = entry_identity("src", "tag:g", "https://x.example/a", "T", "2026")
    assert with_guid == entry_identity("src", "tag:g", "https://x.example/other", "U", None)
    assert with_guid != entry_identity("other", "tag:g", "https://x.example/a", "T", "2026")
    by_link = entry_identity("src", None, "https://www.x.example/a/?utm_campaign=z", "T", None)
    assert by_link == entry_identity("elsewhere", None, "http://x.example/a", "U", "2020")
    by_title = entry_identity("src", None, None, "T", "2026")
    assert by_title != entry_identity("src", None, None, "T", "2025")
    assert link_key("https://X.example:443/p?b=2&a=1&gclid=9#frag") == "//x.example/p?a=1&b=2"
    assert link_key("javascript:alert(1)") is None


def test_an_article_of_three_sources_keeps_its_tags_in_order(tmp_path: Path) -> None:
    """Sources that first list an article in one run add their tags in config order, which a
    later run keeps (not the order of their names): the file is not rewritten, and the
    article, new in that run, keeps its date as its updated time and counts as new once."""
    names = ("a-one", "zz-two", "b-three")
    shared = item("Shared story", "https://news.example/story", "s")
    project = Project(
        tmp_path, {name: rss(shared, link=f"https://{name}.example/") for name in names}
    )
    config = load_config(project.config_path)
    report = run_cycle(config, config.feeds)
    assert [(o.new, o.updated) for o in report.outcomes] == [(1, 0), (0, 0), (0, 0)]
    assert len(project.files()) == 1
    assert project.meta()[0]["tags"] == list(names)
    with State(tmp_path / "aggregator-state.sqlite") as state:
        [entry] = state.all_entries()
    assert entry.updated == entry.date
    before = snapshot(tmp_path / "feeds")
    time.sleep(0.05)
    project.write("a-one", rss(shared, link="https://a-one.example/") + "<!-- changed -->")
    project.fetch()
    assert snapshot(tmp_path / "feeds") == before


def test_a_link_whose_tracking_parameters_change_leaves_its_file_alone(tmp_path: Path) -> None:
    """A source that stamps its links with each day's campaign does not change its articles:
    their files keep their bytes (and the link they have) until the article itself changes."""

    def items(campaign: str, body: str = "Body text.") -> str:
        return rss(
            *(
                item(
                    f"Post {n}",
                    f"https://blog.example/{n}?utm_campaign={campaign}",
                    f"g{n}",
                    body=body,
                )
                for n in (1, 2)
            )
        )

    project = Project(tmp_path, {"blog": items("2026-11-28")})
    project.fetch()
    before = snapshot(tmp_path / "feeds")
    time.sleep(0.05)
    project.write("blog", items("2026-11-29"))
    project.fetch()
    assert snapshot(tmp_path / "feeds") == before
    project.write("blog", items("2026-11-30", body="Revised."))
    project.fetch()
    for path in project.files():
        text = path.read_text(encoding="utf-8")
        assert "Revised." in text and "utm_campaign=2026-11-30)" in text


@pytest.mark.parametrize("dated", [True, False])
def test_a_guid_reused_for_another_article_keeps_both(tmp_path: Path, dated: bool) -> None:
    """Guids that are positions (`item-0` the newest): as the window moves, each guid names
    another article, which is stored as a new one, told apart by its link; no article is
    overwritten or lost, with dates of their own or all the same."""

    def window(newest: int) -> str:
        return rss(
            *(
                item(
                    f"Story {n}",
                    f"https://blog.example/story/{n}",
                    f"item-{newest - n}",
                    f"Mon, 02 Nov 2026 {n if dated else 0:02d}:00:00 GMT",
                    body=f"Text of story {n}.",
                )
                for n in range(newest, newest - 3, -1)
            )
        )

    project = Project(tmp_path, {"blog": window(3)})
    project.fetch()
    first = snapshot(tmp_path / "feeds")
    for newest in (4, 6):  # one step, then two: story 4 moves from item-0 to item-2
        project.write("blog", window(newest))
        project.fetch()
    titles = sorted(str(meta["title"]) for meta in project.meta())
    assert titles == [f"Story {n}" for n in range(1, 7)]
    assert {path: snapshot(tmp_path / "feeds")[path] for path in first} == first


def test_an_article_whose_link_moved_keeps_its_file(tmp_path: Path) -> None:
    """The same guid, title and date at another link, the old one no longer listed: the site
    moved the article, which keeps its file."""
    project = Project(tmp_path, {"blog": rss(item("Story", "https://blog.example/p?id=1", "g1"))})
    project.fetch()
    [path] = project.files()
    project.write("blog", rss(item("Story", "https://blog.example/2026/story", "g1")))
    project.fetch()
    assert project.files() == [path]
    assert "(https://blog.example/2026/story)" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("category", "tag"),
    [
        ("Machine Learning", "machine-learning"),
        ("科技", "科技"),
        # vowel signs and viramas are part of their words
        ("हिन्दी", "हिन्दी"),
        ("தமிழ்", "தமிழ்"),
        ("Cafe\u0301 crème", "café-crème"),  # decomposed: the same tag as the composed form
        ("C++", "c++"),
        ("C#", "c-sharp"),
        ("C", "c"),
        ("Issue #5", "issue-5"),
        ("__init__", "init"),
    ],
)
def test_category_tags_keep_whole_words_and_distinct_names(category: str, tag: str) -> None:
    assert tag_slug(category) == tag


def _content_of(root: Path) -> list[str | None]:
    atom = "{http://www.w3.org/2005/Atom}"
    tree = ET.parse(root / "output" / "all.xml")
    return [entry.findtext(f"{atom}content") for entry in tree.getroot().iter(f"{atom}entry")]


def test_a_second_source_leaves_the_published_content_as_the_feed_gave_it(tmp_path: Path) -> None:
    """The published content is the feed's sanitized HTML; a second source that adds only its
    tags to the file keeps it so, and an entry rendered from its Markdown (a lost database)
    does not end with the source line written for the Hugo page."""
    shared = item(
        "Shared story",
        "https://news.example/story",
        "s1",
        body="Body text.&lt;/p&gt;&lt;dl&gt;&lt;dt&gt;Term&lt;/dt&gt;&lt;dd&gt;Meaning&lt;/dd&gt;"
        "&lt;/dl&gt;&lt;p&gt;End.",
    )
    Project(tmp_path, {"first": rss(shared)}).fetch()
    [published] = _content_of(tmp_path)
    assert published is not None and "<dl>" in published
    Project(tmp_path, {"first": rss(shared), "second": rss(shared)}).fetch()
    assert _content_of(tmp_path) == [published]

    (tmp_path / "aggregator-state.sqlite").unlink()
    assert run_cli("publish", "-c", str(tmp_path / "config.toml")).returncode == 0
    [rendered] = _content_of(tmp_path)
    assert rendered is not None and rendered.endswith("<p>End.</p>"), rendered


def _moved(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def test_relative_links_resolve_against_the_url_the_feed_was_fetched_from(tmp_path: Path) -> None:
    """A feed whose own link is relative (or missing) has its relative links resolved against
    the URL its document came from, after redirects (RFC 3986), not replaced by that URL."""
    rel = rss(
        item(
            "First", "/posts/first", body='&lt;img src="cover.png"&gt; see &lt;a href="other"&gt;x'
        ),
        item("No link", None, "n1"),
        link="/",
    )
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        "<id>urn:a</id><updated>2026-11-02T10:00:00Z</updated><entry><title>Atom post</title>"
        '<id>urn:a1</id><link href="a/1"/><updated>2026-11-02T10:00:00Z</updated>'
        '<content type="html">text</content></entry></feed>'
    )
    routes = {
        "/old/blog.rss": _moved("/feeds/blog.rss"),
        "/old/blog.atom": _moved("/feeds/blog.atom"),
        "/feeds/blog.rss": serve_bytes(rel.encode()),
        "/feeds/blog.atom": serve_bytes(atom.encode(), "application/atom+xml"),
    }
    with http_server(routes) as base:
        (tmp_path / "config.toml").write_text(
            f"{HEADER}[fetch]\nallow_private_networks = true\n"
            f'[[feeds]]\nname = "rel"\nurl = "{base}/old/blog.rss"\n'
            f'[[feeds]]\nname = "atom"\nurl = "{base}/old/blog.atom"\n',
            encoding="utf-8",
        )
        config = load_config(tmp_path / "config.toml")
        assert not run_cycle(config, config.feeds).failed
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "feeds").rglob("*.md")]
    by_title = {read(text)[0]["title"]: text for text in texts}
    first = by_title["First"]
    assert first.endswith(f"see [x]({base}/posts/other)\n\n[rel]({base}/posts/first)\n")
    assert f'thumbnail: "{base}/posts/cover.png"' in first
    assert by_title["No link"].endswith(f"[rel]({base}/)\n")
    assert by_title["Atom post"].endswith(f"[atom]({base}/feeds/a/1)\n")
    atom_ns = "{http://www.w3.org/2005/Atom}"
    tree = ET.parse(tmp_path / "output" / "all.xml").getroot()
    hrefs = {x.get("href") for x in tree.iter(f"{atom_ns}link") if x.get("rel") == "alternate"}
    assert {f"{base}/posts/first", f"{base}/feeds/a/1", f"{base}/"} <= hrefs  # the source's site


_LINKS = st.one_of(
    st.builds(
        "{}://{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp", "http:", " https"]),
        st.text(alphabet=st.sampled_from("ab0.-_:@[]%éW"), max_size=12),
        st.text(alphabet=st.sampled_from("/aZ9.~%@:;?#&=_ é\t\n-"), max_size=16),
    ),
    st.text(max_size=30),
)


@settings(max_examples=800, deadline=None, derandomize=True)
@given(_LINKS)
def test_a_plain_link_reads_as_the_general_reading_reads_it(link: str) -> None:
    """The shortcut for a plain link (lowercase http(s) scheme and host, no port, user, query
    or fragment) gives what urlsplit, parse_qsl and urlunsplit give."""
    canonical = _canonical(link.strip()) if link else None
    assert canonical_link(link) == canonical
    assert link_key(link) == (_key(canonical) if canonical else None)
